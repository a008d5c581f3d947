"""Hunting at the command line: shared indicators run over a member's own logs."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

import click

from communique import accounts, audit, timestamps
from communique.access import Principal
from communique.cli.base import local_provenance, main, with_store
from communique.detect.hunt import Hunt
from communique.errors import BadRequest
from communique.stix.markings import Tlp
from communique.store.base import Store


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(allow_dash=True, dir_okay=False))
@click.option("--as", "email", required=True,
              help="The user hunting: only indicators they may read take part.")
@click.option("--format", "log_format", default="auto", show_default=True,
              type=click.Choice(["auto", "jsonl", "csv", "zeek", "syslog", "cef", "eve"]))
@click.option("--collection", "collection_ids", multiple=True,
              help="Only indicators of this collection (id or alias; repeatable).")
@click.option("--since", default=None, help="Only events at or after this time (RFC 3339).")
@click.option("--mapping", type=click.Path(exists=True, dir_okay=False), default=None,
              help="JSON file {json field: STIX path} for --format jsonl.")
@click.option("--out", type=click.Path(dir_okay=False, allow_dash=True), default=None,
              help="Write the sightings as a STIX bundle here ('-': standard output).")
@click.option("--report", is_flag=True,
              help="Store each sighting in its indicator's collection, where you may write.")
@click.option("--include-warninglisted", is_flag=True,
              help="Hunt also indicators whose values are all on MISP warning lists.")
@with_store
def hunt(store: Store, files: tuple[str, ...], email: str, log_format: str,
         collection_ids: tuple[str, ...], since: str | None, mapping: str | None,
         out: str | None, report: bool, include_warninglisted: bool) -> None:
    """Match log files (gzip too; '-' for standard input) against the shared indicators."""
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from communique import importer
    from communique.detect import hunt as hunting
    from communique.detect import logs
    from communique.detect.events import ReadReport
    from communique.detect import flags

    principal = accounts.principal_for(store, email)
    now = timestamps.now_us()
    console = Console(stderr=True)
    since_us = _instant(since) if since else None
    with store.read() as tx:
        every = tx.list_collections()
    chosen = [importer.find_collection(store, c) for c in collection_ids] or every
    if not include_warninglisted and flags.pending(store):
        with console.status("checking new indicators against the MISP warning lists"):
            flags.check_pending(store)
    left_out: dict[str, str] = {}
    active = list(hunting.active_indicators(store, principal, chosen, now_us=now,
                                            include_warninglisted=include_warninglisted,
                                            left_out=left_out))
    read_report = ReadReport()
    sources = [Path(f) if f != "-" else "-" for f in files]
    if since_us is None:  # the fast path: columns, whole events only for hits
        batches = logs.scan(sources, format=log_format, mapping=_mapping(mapping),
                            report=read_report)
    else:
        events = logs.read(sources, format=log_format, mapping=_mapping(mapping),
                           report=read_report)
        events = (e for e in events if e.time_us is None or e.time_us >= since_us)
    with Progress(SpinnerColumn(), TextColumn("{task.completed:,} events"),
                  TextColumn("{task.speed}"), TimeElapsedColumn(), console=console,
                  transient=True) as bar:
        task = bar.add_task("hunting")
        compiled = hunting.prepare(active)
        if since_us is None:
            found = hunting.run_batches(compiled, batches,
                                        progress=lambda n: bar.advance(task, n))
        else:
            found = hunting.run_compiled(compiled, events,
                                         progress=lambda n: bar.advance(task, n))
    made = hunting.sightings(found, principal, now_us=now)
    table = Table(title=f"{found.events:,} events, {found.indicators:,} indicators, "
                        f"{len(found.seen):,} seen")
    for column in ("indicator", "collection", "TLP", "count", "first seen", "last seen"):
        table.add_column(column)
    for seen in sorted(found.seen.values(), key=lambda s: -s.count):
        table.add_row(seen.indicator.id, seen.indicator.collection.alias or
                      seen.indicator.collection.id, seen.indicator.level.label, f"{seen.count:,}",
                      _when(seen.first_us), _when(seen.last_us))
    console.print(table)
    for reason, count in read_report.skipped.items():
        what = "fields left out" if "record kept" in reason else "records skipped"
        console.print(f"{count:,} {what}: {reason} "
                      f"(first at {read_report.examples.get(reason, '?')})")
    if left_out:
        _print_left_out(console, left_out)
    if found.late or found.dropped:
        console.print(f"sequence patterns: {found.late:,} events came out of time order and "
                      f"{found.dropped:,} could not be kept; matches needing them may be missed")
    if found.unsupported:
        reasons: dict[str, int] = {}
        for reason in found.unsupported.values():
            reasons[reason] = reasons.get(reason, 0) + 1
        for reason, count in reasons.items():
            console.print(f"{count:,} indicators not run: {reason}")
    if out:
        bundle = {"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": made}
        text = json.dumps(bundle, indent=2) + "\n"
        if out == "-":
            sys.stdout.write(text)
        else:
            Path(out).write_text(text)
    if report and made:
        _report(store, principal, found, made)


def _report(store: Store, principal: Principal, found: Hunt, made: list[dict]) -> None:
    """Store each sighting where its indicator is, if the hunter may write there.

    The sighting carries its indicator's TLP level, so it reaches the audience the
    indicator had. A TLP:RED indicator's sighting is not written back: marked RED it
    would reach the hunter alone, not the indicator's producer.
    """
    from communique import access, importer

    by_collection: dict[str, list[dict]] = {}
    targets = {}
    for sighting in made:
        seen = found.seen[sighting["sighting_of_ref"]]
        if seen.indicator.level == Tlp.RED:
            click.echo(f"the sighting of {seen.indicator.id} (TLP:RED) is not written back",
                       err=True)
            continue
        target = seen.indicator.collection
        targets[target.id] = target
        by_collection.setdefault(target.id, []).append(sighting)
    with store.read() as tx:
        grants = tx.grants_of(principal.org_id)
    for collection_id, sightings in by_collection.items():
        target = targets[collection_id]
        if not access.access_to(principal, grants.get(collection_id)).can_write:
            click.echo(f"{len(sightings)} sightings not written back to "
                       f"{target.alias or target.id}: you may not write there", err=True)
            continue
        summary = importer.import_objects(
            store, target, sightings, "2.1", provenance=local_provenance(store),
            producer_org=principal.org_id, actor=audit.Actor.of(principal, "cli"))
        click.echo(f"{summary.counts['added']} sightings written to "
                   f"{target.alias or target.id}", err=True)


def _print_left_out(console, left_out: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    """Say how many indicators did not run, and why (decayed, on warning lists…)."""
    reasons: dict[str, int] = {}
    for reason in left_out.values():
        kind = reason.split(":")[0]
        if reason.startswith("on warning lists: "):
            for name in reason.removeprefix("on warning lists: ").split(", "):
                reasons[f"on the warning list {name}"] = reasons.get(
                    f"on the warning list {name}", 0) + 1
            continue
        reasons[kind] = reasons.get(kind, 0) + 1
    console.print(f"{len(left_out):,} indicators left out (kept in the store; "
                  "--include-warninglisted hunts the warning-listed ones too): "
                  + "; ".join(f"{reason} ({count:,})" for reason, count in sorted(reasons.items())))


def _mapping(path: str | None) -> dict[str, str] | None:
    if path is None:
        return None
    try:
        mapping = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BadRequest(f"the mapping file cannot be read: {exc}") from None
    if not isinstance(mapping, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                for k, v in mapping.items()):
        raise BadRequest("the mapping file must be a JSON object of field: STIX path")
    return mapping


def _instant(text: str) -> int:
    try:
        return timestamps.parse(text)
    except ValueError as exc:
        raise BadRequest(f"--since: {exc}") from None


def _when(micros: int | None) -> str:
    return "" if micros is None else timestamps.format_ms(micros)


def export_for_sensors(store: Store, collection_ids: tuple[str, ...], email: str,
                       types: tuple[str, ...], sensor_format: str, min_score: float | None,
                       include_warninglisted: bool) -> None:
    """Write the indicators that run now, for sensors, to standard output (audited)."""
    from communique import importer
    from communique.detect import flags, sensors

    principal = accounts.principal_for(store, email)
    with store.read() as tx:
        every = tx.list_collections()
    chosen = [importer.find_collection(store, c) for c in collection_ids] or every
    if not include_warninglisted and flags.pending(store):
        flags.check_pending(store)
    now = timestamps.now_us()
    selection = sensors.Selection(chosen, now, min_score=min_score,
                                  types=tuple(t.strip().lower() for t in types),
                                  include_warninglisted=include_warninglisted)
    written, level = sensors.export(store, principal, selection, sys.stdout.buffer,
                                    format=sensor_format, source=principal.org_name)
    sys.stdout.buffer.flush()
    with store.write() as tx:
        tx.append_audit(audit.Actor.of(principal, "cli").event(
            "indicators.export", target=",".join(c.id for c in chosen), format=sensor_format,
            entries=written, tlp=level.label, min_score=min_score, types=sorted(types)), now=now)
    click.echo(f"{written:,} entries exported at {level.label}", err=True)
