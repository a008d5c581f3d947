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

from communique import timestamps
from communique.access import Principal
from communique.detect import flags, standing
from communique.detect.engine import Engine, anchor_values
from communique.detect.columns import Batch
from communique.detect.events import Event
from communique.detect.temporal import Sequencer
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

    def add(self, event: Event, *, count: bool = True) -> None:
        self.count += count
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
    keep_matches: int = 0
    matches: list[tuple[int, str]] = field(default_factory=list)  # (event position, indicator)
    more_matches: bool = False  # some matches past ``keep_matches`` are not listed
    late: int = 0  # events older than one read before them (sequences may miss them)
    dropped: int = 0  # events the sequencer could not keep (its bound was reached)


def active_indicators(store: Store, principal: Principal, collections: Sequence[Collection],
                      *, now_us: int, include_warninglisted: bool = False,
                      left_out: dict[str, str] | None = None) -> Iterator[Indicator]:
    """Yield the indicators ``principal`` may read in ``collections`` that run now.

    An indicator runs when it is valid now, not revoked, not decayed below its
    model's threshold, and not flagged by warning lists (unless an analyst let it
    through, or ``include_warninglisted``). Those left out go into ``left_out`` with
    the reason; they are kept in the store.
    """
    with store.read() as tx:
        everywhere = tx.list_collections()
    seen = standing.views(store, principal, collections, leaving=False)
    sightings_seen = standing.views(store, principal, everywhere, leaving=False)
    per_type = standing.models(store)
    for collection in collections:
        view = seen.get(collection.id)
        if view is None:
            continue
        query = Query(types=("indicator",), limit=1000, versions=filters.LAST_VERSION)
        after = None
        while True:
            with store.read() as tx:
                page = tx.list_objects(collection.id, query, visibility=view, after=after)
            judged = {s.row.stix_id: s for s in standing.standings(
                store, {collection.id: view}, now_us=now_us, per_type=per_type,
                stix_ids=[r.stix_id for r in page.records], sightings_seen=sightings_seen,
                include_warninglisted=include_warninglisted)} if page.records else {}
            for record in page.records:
                raw = orjson.loads(record.body or b"{}")
                if not (_valid(raw, now_us) and raw.get("pattern_type") == "stix"):
                    continue
                verdict = judged.get(raw["id"])
                if verdict is not None and verdict.excluded:
                    if left_out is not None:
                        left_out[raw["id"]] = verdict.excluded
                    continue
                level = Tlp(collection.default_tlp if record.tlp is None else record.tlp)
                yield Indicator(raw["id"], raw["pattern"], level, collection)
            if not page.more:
                break
            after = page.last_added


@dataclass
class Compiled:
    """Indicators compiled for matching, with those left out and why.

    The index engine runs patterns of one observation; the sequencer runs the rest
    (several observations, WITHIN, REPEATS, FOLLOWEDBY, START/STOP) over the stream.
    """

    engine: Engine
    known: dict[str, Indicator]
    sequencer: Sequencer = field(default_factory=Sequencer)
    suppressed: dict[str, list[str]] = field(default_factory=dict)  # id -> warning lists
    sequenced: list[str] = field(default_factory=list)  # ids the sequencer runs

    @property
    def unsupported(self) -> dict[str, str]:
        """Return the indicators neither matcher runs, with the reason."""
        return dict(self.sequencer.unsupported)

    def fresh(self) -> Compiled:
        """Return these indicators with a sequencer of their own: the index is shared (it
        keeps no state), the sequencer is not (it holds the events of one stream)."""
        sequencer = Sequencer()
        sequencer.unsupported.update(self.sequencer.unsupported)
        for indicator_id in self.sequenced:
            sequencer.add(indicator_id, self.known[indicator_id].pattern)
        return Compiled(self.engine, self.known, sequencer, self.suppressed, self.sequenced)


def prepare(indicators: Iterable[Indicator], *,
            warninglists: WarningLists | None = None) -> Compiled:
    """Compile indicators once, to match many batches of events against.

    With ``warninglists``, an indicator whose every value is on a warning list (a
    public resolver, a top site, a private range) is left out, and the lists named.
    """
    compiled = Compiled(Engine(), {})
    for indicator in indicators:
        names = warninglisted(indicator.pattern, warninglists) if warninglists else None
        if names:
            compiled.suppressed[indicator.id] = names
        elif compiled.engine.add(indicator.id, indicator.pattern):
            compiled.known[indicator.id] = indicator
        elif compiled.sequencer.add(indicator.id, indicator.pattern):
            compiled.known[indicator.id] = indicator
            compiled.sequenced.append(indicator.id)
    return compiled


def run(indicators: Iterable[Indicator], events: Iterable[Event], *,
        warninglists: WarningLists | None = None,
        progress: Callable[[int], None] = lambda n: None) -> Hunt:
    """Match every event against every indicator; count what was seen."""
    return run_compiled(prepare(indicators, warninglists=warninglists), events, progress=progress)


def run_compiled(compiled: Compiled, events: Iterable[Event], *,
                 progress: Callable[[int], None] = lambda n: None,
                 keep_matches: int = 0) -> Hunt:
    """Match events against compiled indicators; count what was seen.

    ``keep_matches``: also list up to that many (event position, indicator id) pairs.
    """
    hunt = Hunt(indicators=len(compiled.known), unsupported=compiled.unsupported,
                suppressed=dict(compiled.suppressed), keep_matches=keep_matches)
    batch: list[Event] = []
    for event in events:
        batch.append(event)
        if len(batch) >= BATCH:
            _match(compiled, batch, hunt)
            progress(len(batch))
            batch = []
    if batch:
        _match(compiled, batch, hunt)
        progress(len(batch))
    hunt.late, hunt.dropped = compiled.sequencer.late, sum(compiled.sequencer.dropped.values())
    return hunt


def run_batches(compiled: Compiled, batches: Iterable[Batch], *,
                progress: Callable[[int], None] = lambda n: None) -> Hunt:
    """Match columnar batches (``logs.scan``) against compiled indicators: the fast path.

    Only the events that hit are built whole; a sequence pattern needs every event of
    the batch, so with sequences running each batch is built whole for them.
    """
    hunt = Hunt(indicators=len(compiled.known), unsupported=compiled.unsupported,
                suppressed=dict(compiled.suppressed))
    for batch in batches:
        hunt.events += batch.count
        for slot, indicator_id in compiled.engine.match_batch(batch):
            event = batch.event(slot)
            if event is not None:
                _seen(hunt, compiled.known[indicator_id]).add(event)
        if compiled.sequencer.patterns:
            _sequences(compiled, [event for _, event in batch.events()], hunt)
        progress(batch.count)
    hunt.late, hunt.dropped = compiled.sequencer.late, sum(compiled.sequencer.dropped.values())
    return hunt


def _match(compiled: Compiled, batch: list[Event], hunt: Hunt) -> None:
    offset = hunt.events
    hunt.events += len(batch)
    for position, indicator_id in compiled.engine.match_many(batch):
        _seen(hunt, compiled.known[indicator_id]).add(batch[position])
        _keep(hunt, offset + position, indicator_id)
    if compiled.sequencer.patterns:
        _sequences(compiled, batch, hunt)


def _sequences(compiled: Compiled, batch: Sequence[Event], hunt: Hunt) -> None:
    for match in compiled.sequencer.feed(batch):
        found = _seen(hunt, compiled.known[match.indicator_id])
        for event in match.events:  # a match counts once; its events give the times
            found.add(event, count=False)
        found.count += 1
        _keep(hunt, match.positions[-1], match.indicator_id)


def _seen(hunt: Hunt, indicator: Indicator) -> Seen:
    found = hunt.seen.get(indicator.id)
    if found is None:
        found = hunt.seen[indicator.id] = Seen(indicator)
    return found


def _keep(hunt: Hunt, position: int, indicator_id: str) -> None:
    if len(hunt.matches) < hunt.keep_matches:
        hunt.matches.append((position, indicator_id))
    elif hunt.keep_matches:
        hunt.more_matches = True


def warninglisted(pattern: str, lists: WarningLists) -> list[str] | None:
    """Return the warning lists that flag every value a pattern looks for, or None."""
    return flags.listed(anchor_values(pattern) or (), lists)


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
