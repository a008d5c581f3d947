"""Correlation: who else reported a value, and which values several members reported.

A value is looked up by its digest (``catalogue``), so an address found through
``ipv4-addr:value`` or ``network-traffic:dst_ref.value`` is one value, and so is a
hash in either case. Each indicator that looks for the value is one report; the
reports are counted per reporter (the indicator's ``created_by_ref``, else the
organisation that added it here). Only what the reader may see counts, and never
TLP:RED: correlation puts a report beside other members' reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from communique.access import Principal
from communique.detect import catalogue, standing
from communique.stix.markings import Tlp
from communique.store.base import Store


@dataclass(frozen=True, slots=True)
class Report:
    """One indicator, visible to the reader, that looks for the value."""

    path: str
    value: str
    indicator_id: str
    collection: str  # alias, else id
    reporter: str  # created_by_ref, else 'org:NAME'
    organisation: str  # the organisation that added it to this node ('' unknown)
    level: Tlp
    valid_from: int
    score: float
    sightings: int
    last_seen: int | None
    excluded: str | None  # why it is not hunted or exported now (None: it is)


@dataclass(frozen=True, slots=True)
class Shared:
    """A value more than one reporter looks for."""

    path: str
    value: str
    reporters: int
    indicators: int


def correlate(store: Store, principal: Principal, untrusted_value: str, *, now_us: int,
              path: str | None = None) -> list[Report]:
    """Return every report of a value the reader may see, oldest first."""
    keys = catalogue.lookup_keys(untrusted_value, path)
    if not keys:
        return []
    with store.read() as tx:
        collections = tx.list_collections()
        names = {org.id: org.name for org in tx.list_organisations()}
    seen = standing.views(store, principal, collections, leaving=True)
    labels = {c.id: c.alias or c.id for c in collections}
    wanted = {key: (p, v) for p, v, key in keys}
    reports = []
    for found in standing.standings(store, seen, now_us=now_us, per_type=standing.models(store),
                                    digests=list(wanted)):
        organisation = names.get(found.row.producer_org, "") if found.row.producer_org else ""
        for value_path, value in found.values:
            if catalogue.digest(value_path, value) not in wanted:
                continue
            reports.append(Report(
                value_path, value, found.row.stix_id, labels[found.row.collection_id],
                found.row.created_by or f"org:{organisation}", organisation, found.level,
                found.row.valid_from, found.score, found.sightings, found.last_seen,
                found.excluded))
    return sorted(reports, key=lambda r: (r.valid_from, r.indicator_id))


def shared(store: Store, principal: Principal, *, min_reporters: int = 2,
           limit: int = 100) -> list[Shared]:
    """Return the values at least ``min_reporters`` reporters look for, most reported first."""
    with store.read() as tx:
        collections = tx.list_collections()
    seen = standing.views(store, principal, collections, leaving=True)
    with store.read() as tx:
        rows = tx.shared_values(seen, min_reporters=max(1, min_reporters), limit=limit)
    return [Shared(path, value, reporters, count) for _, path, value, reporters, count in rows]


def reporters(reports: Sequence[Report]) -> int:
    """Return how many distinct reporters the reports come from."""
    return len({r.reporter for r in reports})
