"""The audit log: verify the chain, show entries."""

from __future__ import annotations

import json
import sys

import click

from communique import audit, timestamps
from communique.cli.base import main, with_store
from communique.errors import BadRequest
from communique.store.base import Store


# -- the audit log -----------------------------------------------------------------------
@main.group("audit")
def audit_group() -> None:
    """The tamper-evident audit log."""


@audit_group.command("verify")
@with_store
def audit_verify(store: Store) -> None:
    """Walk the hash chain; exit 0 only if every entry is intact and in place."""
    from communique.store.sql_audit import walk

    with store.read() as tx:
        verdict = audit.verify(walk(tx), head=tx.audit_head())  # type: ignore[arg-type]
    if not verdict.intact:
        click.echo(f"audit log BROKEN: {verdict.problem}", err=True)
        click.echo(f"intact up to entry {verdict.head_seq} ({verdict.head_hash})", err=True)
        sys.exit(1)
    click.echo(f"audit log intact: {verdict.entries} entries; head {verdict.head_seq} "
               f"{verdict.head_hash}")


@audit_group.command("show")
@click.option("--user", "actor", default=None, help="Only entries of this actor (e-mail, or 'operator').")
@click.option("--org", default=None, help="Only entries of this organisation.")
@click.option("--action", default=None, help="Only this action, e.g. objects.add or auth.failure.")
@click.option("--since", default=None, help="Only entries at or after this time (RFC 3339).")
@click.option("--limit", type=click.IntRange(1, 1_000_000), default=None, help="At most this many.")
@with_store
def audit_show(store: Store, actor: str | None, org: str | None, action: str | None,
               since: str | None, limit: int | None) -> None:
    """Print audit entries as JSON lines, oldest first."""
    start = None
    if since is not None:
        try:
            start = timestamps.parse(since)
        except ValueError as exc:
            raise BadRequest(f"--since: {exc}") from None
    after, shown = 0, 0
    while True:
        with store.read() as tx:
            entries = tx.audit_entries(after_seq=after, limit=1000, actor=actor, org=org,
                                       action=action, since=start)
        for entry in entries:
            if limit is not None and shown >= limit:
                return
            click.echo(json.dumps(entry.as_json(), ensure_ascii=False, sort_keys=True))
            shown += 1
        if len(entries) < 1000:
            return
        after = entries[-1].seq
