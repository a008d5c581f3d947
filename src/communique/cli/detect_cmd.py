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
    from communique.detect.warninglists import WarningLists

    principal = accounts.principal_for(store, email)
    now = timestamps.now_us()
    since_us = _instant(since) if since else None
    with store.read() as tx:
        every = tx.list_collections()
    chosen = [importer.find_collection(store, c) for c in collection_ids] or every
    active = list(hunting.active_indicators(store, principal, chosen, now_us=now))
    read_report = ReadReport()
    events = logs.read([Path(f) if f != "-" else "-" for f in files], format=log_format,
                       mapping=_mapping(mapping), report=read_report)
    if since_us is not None:
        events = (e for e in events if e.time_us is None or e.time_us >= since_us)
    console = Console(stderr=True)
    with Progress(SpinnerColumn(), TextColumn("{task.completed:,} events"),
                  TextColumn("{task.speed}"), TimeElapsedColumn(), console=console,
                  transient=True) as bar:
        lists = None if include_warninglisted else WarningLists.load()
        task = bar.add_task("hunting")
        found = hunting.run(active, events, warninglists=lists,
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
    if found.suppressed:
        flagged: dict[str, int] = {}
        for names in found.suppressed.values():
            for name in names:
                flagged[name] = flagged.get(name, 0) + 1
        console.print(f"{len(found.suppressed):,} indicators left out, their values on "
                      "warning lists (--include-warninglisted hunts them too): "
                      + "; ".join(f"{name} ({count})" for name, count in sorted(flagged.items())))
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
