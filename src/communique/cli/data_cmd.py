"""Moving STIX in and out: import, export, forward, and the published definitions."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

import click

from communique import access, accounts, audit, importer, timestamps
from communique.cli.base import local_provenance, main, with_store
from communique.errors import BadRequest, CommuniqueError
from communique.store.base import Store


# -- import and export -----------------------------------------------------------------
@main.command("import")
@click.argument("file", type=click.Path(allow_dash=True, dir_okay=False))
@click.option("--collection", "collection_id", default=None, help="Collection id or alias.")
@click.option("--as", "email", default=None,
              help="The user whose organisation produced the objects (may read back its RED ones).")
@with_store
def import_(store: Store, file: str, collection_id: str | None, email: str | None) -> None:
    """Import a STIX 2.0 or 2.1 bundle (or a JSON list of objects) into a collection."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    target = importer.find_collection(store, collection_id)
    who = accounts.principal_for(store, email) if email else None
    producer = who.org_id if who else None
    actor = audit.Actor.of(who, "cli") if who else audit.OPERATOR
    data = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    objects, bundle_version = importer.read_document(data)
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=_console(), transient=True) as bar:
        task = bar.add_task("importing", total=len(objects))
        summary = importer.import_objects(store, target, objects, bundle_version,
                                          provenance=local_provenance(store),
                                          producer_org=producer, actor=actor,
                                          progress=lambda n: bar.advance(task, n))
    counts = summary.counts
    click.echo(f"{len(objects)} objects read: {counts['added']} added, "
               f"{counts['duplicate']} duplicate, {counts['refused']} refused")
    for result in summary.refusals:
        click.echo(f"  refused {result.id or '(no id)'}: {result.message}", err=True)
    if counts["refused"]:
        sys.exit(2)


@main.command()
@click.option("--collection", "collection_ids", multiple=True,
              help="Collection id or alias (repeatable with --format: default every one you read).")
@click.option("--as", "email", required=True,
              help="The user the export is for: it holds what they may read, never TLP:RED.")
@click.option("--type", "types", multiple=True,
              help="Only objects of this STIX type; with --format, only values of this "
                   "observable type (ipv4-addr, domain-name, url, file…). Repeatable.")
@click.option("--all-versions", is_flag=True, help="Every version, not only the latest.")
@click.option("--format", "sensor_format", default=None,
              type=click.Choice(["suricata", "zeek-intel", "csv", "stix", "misp", "plain"]),
              help="Export the indicators that run now, for sensors and SIEMs, in this form.")
@click.option("--min-score", type=click.FloatRange(0, 100), default=None,
              help="With --format: only indicators whose decayed score is at least this.")
@click.option("--include-warninglisted", is_flag=True,
              help="With --format: also indicators whose values are all on warning lists.")
@with_store
def export(store: Store, collection_ids: tuple[str, ...], email: str, types: tuple[str, ...],
           all_versions: bool, sensor_format: str | None, min_score: float | None,
           include_warninglisted: bool) -> None:
    """Write what a user may read of a collection as a STIX 2.1 bundle, or (--format) the
    indicators that run now as rules or lists for sensors."""
    if sensor_format is not None:
        from communique.cli.detect_cmd import export_for_sensors

        export_for_sensors(store, collection_ids, email, types, sensor_format, min_score,
                           include_warninglisted)
        return
    if len(collection_ids) != 1:
        raise BadRequest("give one --collection (several only with --format)")
    collection_id = collection_ids[0]
    target = importer.find_collection(store, collection_id)
    principal = accounts.principal_for(store, email)
    with store.read() as tx:
        grant = tx.grants_of(principal.org_id).get(target.id)
    who = audit.Actor.of(principal, "cli")
    where = f"{target.api_root}/{target.id}"
    try:
        access.require_read(access.access_to(principal, grant, public=target.public))
    except CommuniqueError as exc:
        with store.write() as tx:
            tx.append_audit(who.event("objects.export", target=where, outcome=audit.REFUSED,
                                      reason=exc.description), now=timestamps.now_us())
        raise
    count = importer.export_bundle(store, target, sys.stdout.buffer, principal=principal,
                                   types=types, all_versions=all_versions)
    with store.write() as tx:
        tx.append_audit(who.event("objects.export", target=where, objects=count,
                                  types=sorted(types), all_versions=all_versions),
                        now=timestamps.now_us())
    sys.stdout.buffer.flush()


@main.command()
@click.option("--from", "source_id", required=True, help="Source collection id or alias.")
@click.option("--to", "destination_id", required=True, help="Destination collection id or alias.")
@click.option("--as", "email", required=True, help="The user forwarding (reads the source, writes the destination).")
@click.option("--id", "ids", multiple=True, help="Only this object (repeatable).")
@click.option("--type", "types", multiple=True, help="Only objects of this STIX type (repeatable).")
@with_store
def forward(store: Store, source_id: str, destination_id: str, email: str,
            ids: tuple[str, ...], types: tuple[str, ...]) -> None:
    """Copy objects onward to another collection, as far as TLP 2.0 allows."""
    from communique import forwarding

    source = importer.find_collection(store, source_id)
    destination = importer.find_collection(store, destination_id)
    principal = accounts.principal_for(store, email)
    who = audit.Actor.of(principal, "cli")
    try:
        report = forwarding.forward(store, principal, source=source, destination=destination,
                                    provenance=local_provenance(store), ids=ids,
                                    types=types, actor=who)
    except CommuniqueError as exc:
        with store.write() as tx:
            tx.append_audit(who.event("objects.forward", outcome=audit.REFUSED,
                                      target=f"{destination.api_root}/{destination.id}",
                                      source=f"{source.api_root}/{source.id}",
                                      reason=exc.description), now=timestamps.now_us())
        raise
    click.echo(f"{report.forwarded} forwarded, {report.duplicate} already there, "
               f"{len(report.refused)} refused")
    for object_id, rule in report.refused:
        click.echo(f"  refused {object_id}: {rule}", err=True)
    if report.refused:
        sys.exit(2)


@main.command()
def definitions() -> None:
    """Print the STIX definitions nodes publish (TLP 2.0 markings, the Communiqué extensions)."""
    from communique.provenance.publish import definitions as published

    bundle = {"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": published()}
    click.echo(json.dumps(bundle, indent=2, ensure_ascii=False))


def _console():  # type: ignore[no-untyped-def]
    from rich.console import Console

    return Console(stderr=True)
