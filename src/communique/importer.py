"""Bulk import and export of STIX bundles (``communique import`` / ``export``)."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import BinaryIO, Callable, Iterator, Sequence

import orjson

from communique import access, audit, ingest, timestamps
from communique.access import Principal
from communique.errors import BadRequest, NotFound
from communique.stix import upgrade
from communique.store.base import Collection, Store, Visibility
from communique.taxii import filters
from communique.taxii.filters import Query

BATCH = 1000


@dataclass
class Summary:
    """Counts of an import, and the first reasons objects were refused."""

    counts: Counter = field(default_factory=Counter)
    refusals: list[ingest.Result] = field(default_factory=list)


def find_collection(store: Store, id_or_alias: str | None) -> Collection:
    """Return the collection with this id or alias, or the only one when none is named."""
    with store.read() as tx:
        every = tx.list_collections()
    if id_or_alias is None:
        if len(every) == 1:
            return every[0]
        raise BadRequest("name the collection with --collection ID "
                         f"({len(every)} collections exist; `communique collection list` shows them)")
    for item in every:
        if id_or_alias in (item.id, item.alias):
            return item
    raise NotFound(f"no collection {id_or_alias!r}")


def read_document(data: bytes) -> tuple[list, str | None]:
    """Parse a bundle, envelope or list; return its objects and the bundle's spec_version."""
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the file is not valid JSON: {exc}") from None
    return upgrade.objects_of(document)


def import_objects(store: Store, collection: Collection, objects: Sequence[object],
                   bundle_version: str | None, *, provenance: ingest.Provenance,
                   producer_org: int | None = None, actor: audit.Actor = audit.OPERATOR,
                   progress: Callable[[int], None] = lambda n: None) -> Summary:
    """Upgrade 2.0 objects, validate and store everything, one transaction per batch.

    ``producer_org`` is recorded as the producer (who may always read back its TLP:RED
    objects); without it, a RED object reaches only the recipients it names.
    """
    summary = Summary()
    upgraded = list(upgrade.upgrade(objects, bundle_version))
    for start in range(0, len(upgraded), BATCH):
        batch = upgraded[start:start + BATCH]
        checked = ingest.check(batch, provenance)
        with store.write() as tx:
            results = ingest.store_checked(tx, checked, collection=collection, actor=actor,
                                           producer_org=producer_org, now=timestamps.now_us())
            tx.append_audit(actor.event(
                "objects.import", target=f"{collection.api_root}/{collection.id}",
                added=sum(r.outcome == ingest.ADDED for r in results),
                duplicate=sum(r.outcome == ingest.DUPLICATE for r in results),
                refused=sum(not r.ok for r in results)), now=timestamps.now_us())
        for result in results:
            summary.counts[result.outcome] += 1
            if not result.ok and len(summary.refusals) < 20:
                summary.refusals.append(result)
        progress(len(batch))
    return summary


def export_bundle(store: Store, collection: Collection, out: BinaryIO, *, principal: Principal,
                  types: Sequence[str] = (), all_versions: bool = False) -> int:
    """Write what ``principal`` may take out of the collection as a STIX 2.1 bundle.

    An export leaves the node, so TLP:RED objects are never in it (``access.export_view``).
    Written page by page; returns the object count.
    """
    seen = access.export_view(principal, collection)
    out.write(b'{"type":"bundle","id":"bundle--' + str(uuid.uuid4()).encode() + b'","objects":[')
    count = 0
    for body in _bodies(store, collection, seen, types, all_versions):
        out.write(b"," + body if count else body)
        count += 1
    out.write(b"]}\n")
    return count


def _bodies(store: Store, collection: Collection, seen: Visibility, types: Sequence[str],
            all_versions: bool) -> Iterator[bytes]:
    query = Query(types=tuple(sorted(set(types))), limit=BATCH,
                  versions=filters.ALL_VERSIONS if all_versions else filters.LAST_VERSION)
    after = None
    while True:
        with store.read() as tx:
            page = tx.list_objects(collection.id, query, visibility=seen, after=after)
        for record in page.records:
            assert record.body is not None
            yield record.body
        if not page.more:
            return
        after = page.last_added
