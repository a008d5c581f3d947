"""A hunt: the indicators a member may read, run over its events, gathered into sightings.

Only indicators valid now take part (``valid_from`` passed, ``valid_until`` not,
not revoked), read with the caller's TLP view of each collection. Every match is
counted per indicator: how many events, the first and last time seen, a few of
the records. The result becomes one STIX ``sighting`` per indicator, saying that
the caller's organisation saw it (``where_sighted_refs``), marked at the TLP level
of the indicator it reports on (never wider).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Sequence

import orjson

from communique import access, timestamps
from communique.access import Principal
from communique.detect import normalise
from communique.detect.engine import Engine, anchor_values
from communique.detect.events import Event
from communique.detect.warninglists import WarningLists
from communique.stix.markings import TLP2_IDS, Tlp
from communique.store.base import Collection, Store
from communique.taxii import filters
from communique.taxii.filters import Query

BATCH = 10_000
_EXAMPLES = 5
# Identities of organisations, derived from their names under this namespace, so that
# the same organisation has the same identity in every sighting a node makes.
_ORGANISATION_NAMESPACE = uuid.UUID("0f7d5c2e-3b8a-4f4e-9c1d-6a2b8e4f1c3a")


@dataclass(frozen=True, slots=True)
class Indicator:
    """What a hunt needs of one indicator: its id, pattern, TLP level and collection."""

    id: str
    pattern: str
    level: Tlp
    collection: Collection


@dataclass
class Seen:
    """What a hunt found of one indicator."""

    indicator: Indicator
    count: int = 0
    first_us: int | None = None
    last_us: int | None = None
    examples: list[str] = field(default_factory=list)

    def add(self, event: Event) -> None:
        self.count += 1
        if event.time_us is not None:
            self.first_us = event.time_us if self.first_us is None else min(self.first_us,
                                                                             event.time_us)
            self.last_us = event.time_us if self.last_us is None else max(self.last_us,
                                                                          event.time_us)
        if len(self.examples) < _EXAMPLES and event.source:
            self.examples.append(event.source)


@dataclass
class Hunt:
    """The outcome: matches by indicator, events read, and indicators that could not run."""

    events: int = 0
    indicators: int = 0
    seen: dict[str, Seen] = field(default_factory=dict)
    unsupported: dict[str, str] = field(default_factory=dict)
    suppressed: dict[str, list[str]] = field(default_factory=dict)  # id -> warning lists


def active_indicators(store: Store, principal: Principal, collections: Sequence[Collection],
                      *, now_us: int) -> Iterator[Indicator]:
    """Yield the indicators ``principal`` may read in ``collections`` that are valid now."""
    with store.read() as tx:
        grants = tx.grants_of(principal.org_id)
    for collection in collections:
        rights = access.access_to(principal, grants.get(collection.id), public=collection.public)
        if not rights.can_read:
            continue
        seen = access.visibility(principal, collection)
        query = Query(types=("indicator",), limit=1000, versions=filters.LAST_VERSION)
        after = None
        while True:
            with store.read() as tx:
                page = tx.list_objects(collection.id, query, visibility=seen, after=after)
            for record in page.records:
                raw = orjson.loads(record.body or b"{}")
                if _valid(raw, now_us) and raw.get("pattern_type") == "stix":
                    level = Tlp(collection.default_tlp if record.tlp is None else record.tlp)
                    yield Indicator(raw["id"], raw["pattern"], level, collection)
            if not page.more:
                break
            after = page.last_added


def run(indicators: Iterable[Indicator], events: Iterable[Event], *,
        warninglists: WarningLists | None = None,
        progress: Callable[[int], None] = lambda n: None) -> Hunt:
    """Match every event against every indicator; count what was seen.

    With ``warninglists``, an indicator whose every value is on a warning list (a
    public resolver, a top site, a private range) is left out, and the lists named.
    """
    engine, known = Engine(), {}
    hunt = Hunt()
    for indicator in indicators:
        names = warninglisted(indicator.pattern, warninglists) if warninglists else None
        if names:
            hunt.suppressed[indicator.id] = names
        elif engine.add(indicator.id, indicator.pattern):
            known[indicator.id] = indicator
    hunt.indicators, hunt.unsupported = len(known), dict(engine.unsupported)
    batch: list[Event] = []
    for event in events:
        batch.append(event)
        if len(batch) >= BATCH:
            _match(engine, known, batch, hunt)
            progress(len(batch))
            batch = []
    if batch:
        _match(engine, known, batch, hunt)
        progress(len(batch))
    return hunt


def _match(engine: Engine, known: dict[str, Indicator], batch: list[Event], hunt: Hunt) -> None:
    hunt.events += len(batch)
    for position, indicator_id in engine.match_many(batch):
        found = hunt.seen.get(indicator_id)
        if found is None:
            found = hunt.seen[indicator_id] = Seen(known[indicator_id])
        found.add(batch[position])


def warninglisted(pattern: str, lists: WarningLists) -> list[str] | None:
    """Return the warning lists that flag every value a pattern looks for, or None."""
    values = anchor_values(pattern)
    if not values:
        return None
    names: set[str] = set()
    for path, value in values:
        kind = _kind(path, value)
        hits = lists.hits(str(value), kind=kind) if kind and isinstance(value, str) else []
        if not hits:
            return None
        names.update(hit.name for hit in hits)
    return sorted(names)


def _kind(path: str, value: object) -> str | None:
    """Return the warning-list kind of a value seen at ``path`` (None: lists do not apply)."""
    if path in normalise.IP_PATHS:
        return "ipv6" if isinstance(value, str) and ":" in value else "ipv4"
    if path == "domain-name:value":
        return "domain"
    if path == "url:value":
        return "url"
    if ":hashes." in path:
        return "hash"
    if path in ("email-addr:value", "email-message:from_ref.value",
                "email-message:sender_ref.value"):
        return "email"
    return None


def organisation_identity(name: str) -> str:
    """Return the STIX identity id this node gives an organisation (stable, name-derived)."""
    return f"identity--{uuid.uuid5(_ORGANISATION_NAMESPACE, name)}"


def sightings(hunt: Hunt, principal: Principal, *, now_us: int) -> list[dict]:
    """Return one STIX sighting per indicator seen, from ``principal``'s organisation."""
    made = []
    now = timestamps.format_ms(now_us)
    for found in hunt.seen.values():
        sighting = {
            "type": "sighting", "spec_version": "2.1", "id": f"sighting--{uuid.uuid4()}",
            "created": now, "modified": now, "sighting_of_ref": found.indicator.id,
            "count": min(found.count, 999_999_999),
            "where_sighted_refs": [organisation_identity(principal.org_name)],
            "object_marking_refs": [TLP2_IDS[found.indicator.level]],
        }
        if found.first_us is not None and found.last_us is not None:
            sighting["first_seen"] = timestamps.format_ms(found.first_us)
            sighting["last_seen"] = timestamps.format_ms(found.last_us)
        made.append(sighting)
    return made


def _valid(raw: dict, now_us: int) -> bool:
    """Return whether an indicator takes part now: in its validity window, not revoked."""
    if raw.get("revoked") is True or not isinstance(raw.get("pattern"), str):
        return False
    try:
        if timestamps.parse(raw.get("valid_from")) > now_us:
            return False
        until = raw.get("valid_until")
        return until is None or timestamps.parse(until) > now_us
    except ValueError:
        return False
