"""Filing detection facts when indicator and sighting versions are stored.

``file_stored`` runs in the transaction that stores the versions, so facts and
versions never disagree; ``backfill`` files what a node stored before it kept
facts (once, after the upgrade that added them).
"""

from __future__ import annotations

from typing import Sequence

import orjson

from communique.detect import catalogue
from communique.store.base import Store, Tx

BACKFILLED = "detection.facts_filed"
_BATCH = 2000


def file_stored(tx: Tx, collection_id: str, stored: Sequence[tuple[dict, int]]) -> None:
    """File the facts of newly stored versions: (raw STIX object, stored version) pairs."""
    wanted = [(raw, version) for raw, version in stored
              if raw.get("type") in ("indicator", "sighting")]
    if not wanted:
        return
    pks = tx.version_pks(collection_id, [(raw["id"], version) for raw, version in wanted])
    indicators, sightings = [], []
    for raw, version in wanted:
        pk = pks.get((raw["id"], version))
        if pk is not None:
            _sort(pk, raw, version, indicators, sightings)
    tx.file_facts(indicators, sightings)


def backfill(store: Store) -> int:
    """File the facts of every version stored before facts were kept; return how many."""
    with store.read() as tx:
        if tx.get_setting(BACKFILLED) == "1":
            return 0
    filed, after = 0, 0
    while True:
        with store.write() as tx:
            rows = tx.unfiled(after_pk=after, limit=_BATCH)
            indicators: list = []
            sightings: list = []
            for pk, _kind, version, body in rows:
                try:
                    raw = orjson.loads(body)
                except orjson.JSONDecodeError:
                    continue
                _sort(pk, raw, version, indicators, sightings)
            tx.file_facts(indicators, sightings)
            filed += len(indicators) + len(sightings)
            if len(rows) < _BATCH:
                tx.put_setting(BACKFILLED, "1")
                return filed
            after = rows[-1][0]


def _sort(pk: int, raw: dict, version: int, indicators: list, sightings: list) -> None:
    if raw.get("type") == "indicator":
        facts = catalogue.indicator_facts(raw, version)
        if facts is not None:
            indicators.append((pk, facts))
    elif raw.get("type") == "sighting":
        sighting = catalogue.sighting_facts(raw, version)
        if sighting is not None:
            sightings.append((pk, sighting))
