"""The sequencer: patterns over several observations, run over events in time order.

The index engine runs patterns of one observation; this runs the rest: observations
joined by AND, OR and FOLLOWEDBY, qualified by WITHIN, REPEATS and START/STOP (STIX
2.1 Part 5, §9.5, §9.6). An event is an observation whose ``first_observed`` and
``last_observed`` are its time (``number_observed`` 1). A pattern matches when its
observation expressions can be bound to events, no event twice in one match, so that:
``A AND B`` both are bound, ``A OR B`` either is; ``A FOLLOWEDBY B`` both are, no
event of A later than one of B (the same instant may follow itself); ``A REPEATS n
TIMES`` A is bound n times to disjoint events; ``A WITHIN n SECONDS`` A's events are
at most n seconds apart (n included); ``A START t1 STOP t2`` each of A's events is at
or after t1 and before t2. These are the OASIS reference matcher's verdicts for the
same events as observed-data objects (the tests compare thousands of cases).

Each event that satisfies one of a pattern's observations (by the index engine's own
rules) is offered to the pattern, which looks for a match holding it and the events
it keeps; other events are never kept. A match is reported at once and its events
are used up, so one pattern's matches share no event: ``Tally.count`` counts them,
found greedily in stream order. Events without a time may fill only observations no
WITHIN, START/STOP or FOLLOWEDBY constrains (``[a] AND [b]``, ``[a] REPEATS 3 TIMES``).

Memory is bounded. A kept event is dropped once no later event could join it in a
match (its WITHIN windows have passed; what it could pair with is behind a STOP, or
must come before it in a FOLLOWEDBY). At most ``keep`` events are kept per observation
of a pattern, the oldest dropped beyond that and counted in ``dropped`` (matches
needing them are missed). A search tries at most ``budget`` events; one cut short (or
nesting too deep for Python) is counted in ``exhausted``. A match holds at most
``temporal_plan.MAX_EVENTS`` events. Pruning assumes time order: an event earlier
than one fed before it is counted in ``late``, and matched against what is still kept.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from communique.detect.engine import Engine, Unsupported
from communique.detect.events import Event
from communique.detect.pattern_ast import parse as parse_pattern
from communique.detect.temporal_plan import (
    FAR,
    Exhausted,
    Held,
    Plan,
    Search,
    Step,
    plan,
)
from communique.errors import BadRequest

KEEP = 1000
BUDGET = 100_000
EXAMPLES = 5
_PRUNE_FROM = 64


@dataclass(frozen=True, slots=True)
class Match:
    """Events that together satisfy one indicator's pattern, in stream order."""

    indicator_id: str
    positions: tuple[int, ...]  # in the stream fed: 0 is the first event of the first batch
    events: tuple[Event, ...]

    @property
    def first_us(self) -> int | None:
        return min((e.time_us for e in self.events if e.time_us is not None), default=None)

    @property
    def last_us(self) -> int | None:
        return max((e.time_us for e in self.events if e.time_us is not None), default=None)


@dataclass
class Tally:
    """What was found of one indicator: matches, first and last time, a few examples."""

    count: int = 0
    first_us: int | None = None
    last_us: int | None = None
    examples: list[Match] = field(default_factory=list)


class Sequencer:
    """Patterns over several observations: ``add`` them, ``feed`` events in time order.

    ``feed`` returns the matches each batch completes; ``found`` sums them up by
    indicator. Patterns that cannot run are listed in ``unsupported`` with the reason.
    A pattern of one unqualified observation runs too (each event satisfying it is a
    match), though the index engine runs those faster.
    """

    def __init__(self, *, keep: int = KEEP, budget: int = BUDGET, examples: int = EXAMPLES) -> None:
        self.keep, self.budget, self.examples = keep, budget, examples
        self.unsupported: dict[str, str] = {}
        self.found: dict[str, Tally] = {}
        self.late = 0
        self._engine = Engine()
        self._runs: list[_Run] = []
        self._routes: dict[str, tuple[_Run, int]] = {}
        self._active: set[int] = set()  # runs holding events
        self._fed = 0
        self._latest: int | None = None  # newest time fed so far

    def add(self, indicator_id: str, pattern: str) -> bool:
        """Plan one indicator's pattern; False (with the reason kept) if it cannot run."""
        try:
            made = plan(parse_pattern(pattern))
        except BadRequest as exc:
            self.unsupported[indicator_id] = exc.description
            return False
        except Unsupported as exc:
            self.unsupported[indicator_id] = exc.reason
            return False
        except RecursionError:  # the reference parser recurses once per joined observation
            self.unsupported[indicator_id] = "the pattern nests too deeply to be read"
            return False
        run = _Run(indicator_id, made, len(self._runs))
        self._runs.append(run)
        for leaf, info in enumerate(made.leaves):
            key = f"{run.number}:{leaf}"
            self._engine.add(key, info.text)
            self._routes[key] = (run, leaf)
        return True

    @property
    def patterns(self) -> int:
        """Return how many patterns run here."""
        return len(self._runs)

    def feed(self, events: Sequence[Event]) -> list[Match]:
        """Offer a batch of events (the next in time order); return the matches completed."""
        made: list[Match] = []
        hits: dict[int, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
        if self._runs:
            for position, key in self._engine.match_many(events):
                run, leaf = self._routes[key]
                hits[position][run.number].append(leaf)
        latest, scanned = self._latest, 0
        for position in sorted(hits):
            event, latest = events[position], _newest(latest, events[scanned:position])
            scanned = position + 1
            if event.time_us is not None and latest is not None and event.time_us < latest:
                self.late += 1
            latest = _newest(latest, (event,))
            held = Held(self._fed + position, event.time_us, event)
            for number, leaves in hits[position].items():
                run = self._runs[number]
                binding = run.offer(held, leaves, keep=self.keep, budget=self.budget)
                if binding is not None:
                    made.append(self._record(run.indicator_id, binding))
                run.settle(latest)
                self._active.add(number)
        self._latest = _newest(latest, events[scanned:])
        self._fed += len(events)
        if self._latest is not None:
            for number in list(self._active):
                if not self._runs[number].prune(self._latest):
                    self._active.discard(number)
        return made

    @property
    def kept(self) -> int:
        """Return how many events are kept for later matches, over all patterns."""
        return sum(run.size() for run in self._runs)

    @property
    def peak(self) -> int:
        """Return the most events one pattern has kept at once (once per observation)."""
        return max((run.peak for run in self._runs), default=0)

    @property
    def dropped(self) -> dict[str, int]:
        """Return, by indicator, the events dropped because ``keep`` was reached."""
        return {run.indicator_id: run.dropped for run in self._runs if run.dropped}

    @property
    def exhausted(self) -> dict[str, int]:
        """Return, by indicator, the searches cut short by ``budget``."""
        return {run.indicator_id: run.exhausted for run in self._runs if run.exhausted}

    def _record(self, indicator_id: str, binding: list[Held]) -> Match:
        match = Match(indicator_id, tuple(h.seq for h in binding), tuple(h.event for h in binding))
        tally = self.found.setdefault(indicator_id, Tally())
        tally.count += 1
        for moment in (match.first_us, match.last_us):
            if moment is not None:
                tally.first_us = moment if tally.first_us is None else min(tally.first_us, moment)
                tally.last_us = moment if tally.last_us is None else max(tally.last_us, moment)
        if len(tally.examples) < self.examples:
            tally.examples.append(match)
        return match


class _Run:
    """One pattern being run: its plan and the events kept for each of its observations."""

    def __init__(self, indicator_id: str, made: Plan, number: int) -> None:
        self.indicator_id, self.plan, self.number = indicator_id, made, number
        self.kept: list[dict[int, Held]] = [{} for _ in made.leaves]
        self.dropped = self.exhausted = self.entries = self.peak = 0
        self.due = _PRUNE_FROM  # entries at which to prune before the batch ends

    def offer(self, held: Held, leaves: list[int], *, keep: int,
              budget: int) -> list[Held] | None:
        """Keep an event for the observations it may fill; return a match it completes."""
        fits = [leaf for leaf in leaves if self.plan.leaves[leaf].admits(held.time)]
        for leaf in fits:
            kept = self.kept[leaf]
            kept[held.seq] = held
            if len(kept) > keep:
                del kept[next(iter(kept))]
                self.dropped += 1
            else:
                self.entries += 1
        self.peak = max(self.peak, self.entries)
        if not fits or not self._viable(self.plan.root):
            return None
        try:
            used = Search(self.kept, held, frozenset(fits), budget).run(self.plan.root)
        except (Exhausted, RecursionError):
            self.exhausted += 1
            return None
        if used is None:
            return None
        binding = [next(k[seq] for k in self.kept if seq in k) for seq in sorted(used)]
        for kept in self.kept:
            for seq in used:
                self.entries -= kept.pop(seq, None) is not None
        return binding

    def settle(self, now: int | None) -> None:
        """Prune now if the events kept have doubled since the last time (bounds the search)."""
        if now is not None and self.entries >= self.due:
            self.prune(now)

    def prune(self, now: int) -> bool:
        """Drop the events no later event could join in a match; return whether any remain."""
        for leaf, info in enumerate(self.plan.leaves):
            if not self.kept[leaf]:
                continue
            reach = next((gap for other, gap in info.partners
                          if all(stop > now for _, stop in self.plan.leaves[other].windows)), -1)
            if reach < FAR:
                self.kept[leaf] = {seq: h for seq, h in self.kept[leaf].items()
                                   if h.time is None or h.time >= now or now - h.time <= reach}
        self.entries = sum(len(kept) for kept in self.kept)
        self.due = max(_PRUNE_FROM, 2 * self.entries)
        return self.entries > 0

    def size(self) -> int:
        return len({seq for kept in self.kept for seq in kept})

    def _viable(self, step: Step) -> bool:
        """Return whether each observation a match needs has some event kept (cheap check)."""
        if step.kind == "leaf":
            return bool(self.kept[step.leaf])
        if step.kind == "OR":
            return any(self._viable(part) for part in step.parts)
        return all(self._viable(part) for part in step.parts)


def _newest(latest: int | None, events: Sequence[Event]) -> int | None:
    """Return the latest of ``latest`` and the events' times."""
    times = [event.time_us for event in events if event.time_us is not None]
    if latest is not None:
        times.append(latest)
    return max(times, default=None)
