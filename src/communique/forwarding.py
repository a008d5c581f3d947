"""Forwarding: copying objects a user can read into another collection, under TLP 2.0.

Each object goes onward only if ``access.refusal_to_forward`` finds no rule
against it; a refused object is reported with the rule that refused it, and the
rest are stored as if the user had posted them (validated again, deduplicated).
Each batch is recorded in the audit log in the transaction that stores it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import orjson

from communique import access, audit, ingest, timestamps
from communique.access import Principal
from communique.errors import BadRequest
from communique.stix.markings import Tlp
from communique.store.base import Collection, Store
from communique.taxii import filters
from communique.taxii.filters import Query

BATCH = 500


@dataclass
class Report:
    """What became of each object offered for forwarding."""

    forwarded: int = 0
    duplicate: int = 0
    refused: list[tuple[str, str]] = field(default_factory=list)  # (object id, rule)


def forward(store: Store, principal: Principal, *, source: Collection, destination: Collection,
            provenance: ingest.Provenance, ids: Sequence[str] = (), types: Sequence[str] = (),
            actor: audit.Actor | None = None) -> Report:
    """Copy the last versions ``principal`` can see in ``source`` (or only ``ids``) onward."""
    if source.id == destination.id:
        raise BadRequest("the source and the destination are the same collection")
    who = actor or audit.Actor.of(principal, "")
    with store.read() as tx:
        source_grants = tx.grants_on(source.id)
        destination_grants = tx.grants_on(destination.id)
    mine = {g.collection_id: g for g in source_grants + destination_grants
            if g.org_id == principal.org_id}
    access.require_read(access.access_to(principal, mine.get(source.id), public=source.public))
    access.require_write(access.access_to(principal, mine.get(destination.id)))
    source_readers = access.readers(source_grants)
    destination_readers = access.readers(destination_grants)
    seen = access.visibility(principal, source)
    report = Report()
    query = Query(ids=tuple(ids), types=tuple(sorted(set(types))), limit=BATCH,
                  versions=filters.LAST_VERSION)
    after = None
    while True:
        with store.read() as tx:
            page = tx.list_objects(source.id, query, visibility=seen, after=after)
        bodies, refused = [], []
        for record in page.records:
            level = Tlp(source.default_tlp if record.tlp is None else record.tlp)
            rule = access.refusal_to_forward(
                level, stored_level=record.tlp, forwarder_org=principal.org_id,
                source_readers=source_readers, destination=destination,
                destination_readers=destination_readers)
            if rule:
                refused.append((record.stix_id, rule))
            else:
                bodies.append(record.body)
        _store(store, principal, source, destination, bodies, refused, who, report, provenance)
        if not page.more:
            break
        after = page.last_added
    return report


def _store(store: Store, principal: Principal, source: Collection, destination: Collection,
           bodies: list, refused: list[tuple[str, str]], who: audit.Actor, report: Report,
           provenance: ingest.Provenance) -> None:
    """Store one batch and record it, in one transaction."""
    checked = ingest.check([orjson.loads(body) for body in bodies], provenance)
    with store.write() as tx:
        results = ingest.store_checked(tx, checked, collection=destination, actor=who,
                                       producer_org=principal.org_id, now=timestamps.now_us())
        added = sum(r.outcome == ingest.ADDED for r in results)
        duplicate = sum(r.outcome == ingest.DUPLICATE for r in results)
        refused = refused + [(r.id, r.message) for r in results if not r.ok]
        tx.append_audit(who.event(
            "objects.forward", target=f"{destination.api_root}/{destination.id}",
            outcome=audit.REFUSED if refused else audit.OK,
            source=f"{source.api_root}/{source.id}", forwarded=added, duplicate=duplicate,
            refused=len(refused)), now=timestamps.now_us())
    report.forwarded += added
    report.duplicate += duplicate
    report.refused.extend(refused)
