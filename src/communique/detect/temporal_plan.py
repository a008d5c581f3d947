"""One pattern of the sequencer (``temporal``): its plan, and the search for a match.

The syntax tree becomes a tree of ``Step`` values whose leaves are the observations,
each written back as a pattern of its own for the index engine (so an event meets an
observation by the engine's rules: normal forms, ``holds``, what it cannot run, AND
across object types dropped). Observations that can never match are cut out. Each
leaf also learns how long an event kept for it stays useful (``Leaf.partners``).
``Search`` looks for a match that holds the newest event, as ``temporal`` defines one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import NamedTuple

from communique import timestamps
from communique.detect.engine import Engine, Unsupported
from communique.detect.events import Event
from communique.detect.pattern_ast import Joined, Observation, PatternNode, Qualified
from communique.detect.pattern_text import expression_text

MAX_OBSERVATIONS = 128  # the reference parser fails from about 200 on (recursion)
MAX_EVENTS = 100  # events one match may need (REPEATS multiplies)
FAR = 1 << 62  # a gap in microseconds that no WITHIN limits
_ONE_US = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Step:
    """A node of a plan: ``kind`` is "leaf", "AND", "OR", "FOLLOWEDBY", "REPEATS",
    "WITHIN" or "STARTSTOP"; ``amount`` the REPEATS count or WITHIN span in µs; ``window``
    START (included) and STOP (excluded) in µs."""

    kind: str
    parts: tuple[Step, ...] = ()
    leaf: int = -1
    amount: int = 0
    window: tuple[int, int] = (0, 0)
    leaves: frozenset[int] = frozenset()
    size: int = 1  # the fewest events a match of this step holds


@dataclass(frozen=True, slots=True)
class Leaf:
    """An observation of the pattern, and what an event kept for it must respect."""

    text: str  # the observation as a pattern of its own, for the engine
    timed: bool  # under WITHIN, START/STOP or FOLLOWEDBY: an event needs a time
    windows: tuple[tuple[int, int], ...]  # START/STOP windows above it
    partners: tuple[tuple[int, int], ...]  # (leaf, widest gap in µs), widest first

    def admits(self, time: int | None) -> bool:
        """Return whether an event at ``time`` (None: unknown) may fill this observation."""
        if time is None:
            return not self.timed
        return all(start <= time < stop for start, stop in self.windows)


@dataclass(frozen=True, slots=True)
class Plan:
    root: Step
    leaves: tuple[Leaf, ...]


def plan(tree: PatternNode) -> Plan:
    """Return the plan of a parsed pattern, or raise Unsupported saying why it cannot run."""
    texts: list[str] = []
    root = _step(tree, texts)
    if root is None:
        raise Unsupported("the pattern can never match: each way to satisfy it needs an "
                          "observation whose comparisons joined by AND name different object "
                          "types, or a START that is not before its STOP")
    chains: dict[int, list[tuple[Step, int]]] = {}
    _chains(root, [], chains)
    leaves = tuple(_leaf(texts[n], chains[n], chains) for n in range(len(texts)))
    return Plan(root, leaves)


def _step(node: PatternNode, texts: list[str]) -> Step | None:
    """Return the step of ``node`` (None if it can never match); number its leaves."""
    mark = len(texts)
    if isinstance(node, Observation):
        return _observation(node, texts)
    if isinstance(node, Joined):
        parts = [_step(part, texts) for part in node.parts]
        live = tuple(part for part in parts if part is not None)
        if node.op == "OR" and live:
            made = live[0] if len(live) == 1 else _joined("OR", live, min(p.size for p in live))
        elif node.op != "OR" and len(live) == len(parts):
            made = _joined(node.op, live, sum(p.size for p in live))
        else:
            del texts[mark:]
            return None
    else:
        made = _qualified(node, texts, mark)
    if made is not None and made.size > MAX_EVENTS:
        raise Unsupported(f"a match would need more than {MAX_EVENTS} events")
    return made


def _observation(node: Observation, texts: list[str]) -> Step | None:
    text = f"[{expression_text(node.expression)}]"
    probe = Engine()
    if not probe.add("probe", text):
        reason = probe.unsupported["probe"]
        if "can never match" in reason:
            return None
        raise Unsupported(reason)
    if len(texts) >= MAX_OBSERVATIONS:
        raise Unsupported(f"patterns of more than {MAX_OBSERVATIONS} observations are not run")
    texts.append(text)
    return Step("leaf", leaf=len(texts) - 1, leaves=frozenset({len(texts) - 1}))


def _joined(op: str, parts: tuple[Step, ...], size: int) -> Step:
    return Step(op, parts, leaves=frozenset().union(*(p.leaves for p in parts)), size=size)


def _qualified(node: Qualified, texts: list[str], mark: int) -> Step | None:
    if node.kind == "REPEATS" and (not isinstance(node.value, int) or node.value < 1):
        raise Unsupported("REPEATS needs a count of at least 1")
    if node.kind == "WITHIN" and not (isinstance(node.value, (int, float)) and node.value > 0):
        raise Unsupported("WITHIN needs a positive number of seconds")
    window = (0, 0)
    if node.kind == "STARTSTOP":
        try:
            start, stop = node.value  # type: ignore[misc]
            window = (timestamps.parse(start), timestamps.parse(stop))
        except ValueError as exc:
            raise Unsupported(f"START/STOP: {exc}") from None
    inner = _step(node.inner, texts)
    if inner is None or (node.kind == "STARTSTOP" and window[0] >= window[1]):
        del texts[mark:]
        return None
    amount, size = 0, inner.size
    if node.kind == "REPEATS":
        amount, size = int(node.value), inner.size * int(node.value)  # type: ignore[call-overload]
    elif node.kind == "WITHIN":
        try:  # microseconds as the reference matcher rounds them (a timedelta)
            amount = timedelta(seconds=float(node.value)) // _ONE_US  # type: ignore[arg-type]
        except OverflowError:
            amount = FAR
    return Step(node.kind, (inner,), amount=amount, window=window, leaves=inner.leaves, size=size)


def _chains(step: Step, above: list[tuple[Step, int]],
            found: dict[int, list[tuple[Step, int]]]) -> None:
    """Record, for each leaf, the steps above it from the root and the branch taken."""
    if step.kind == "leaf":
        found[step.leaf] = list(above)
    for index, part in enumerate(step.parts):
        _chains(part, above + [(step, index)], found)


def _leaf(text: str, chain: list[tuple[Step, int]],
          chains: dict[int, list[tuple[Step, int]]]) -> Leaf:
    timed = any(step.kind in ("WITHIN", "STARTSTOP", "FOLLOWEDBY") for step, _ in chain)
    windows = tuple(step.window for step, _ in chain if step.kind == "STARTSTOP")
    partners = [(other, gap) for other, theirs in chains.items()
                if (gap := _gap(chain, theirs)) is not None]
    partners.sort(key=lambda pair: -pair[1])
    return Leaf(text, timed, windows, tuple(partners))


def _gap(mine: list[tuple[Step, int]], theirs: list[tuple[Step, int]]) -> int | None:
    """Return the widest time between an event at one leaf and a later one at another
    in one match (None: never in one match with the later one).

    The two meet at the step where their chains part; under a REPEATS they may also sit
    in different repetitions, which frees them from what joins them below it.
    """
    shared = 0
    while shared < min(len(mine), len(theirs)) and mine[shared][1] == theirs[shared][1]:
        shared += 1
    same = shared == len(mine) == len(theirs)
    above = [step for step, _ in mine[:shared + 1]]
    repeats = [n for n, step in enumerate(above) if step.kind == "REPEATS"]
    if repeats:
        return _tightest(above[:repeats[0]])
    if same:
        return None
    meeting = above[-1]
    if meeting.kind == "OR":
        return None  # an OR is satisfied by one side only
    if meeting.kind == "FOLLOWEDBY" and theirs[shared][1] < mine[shared][1]:
        return None  # the later event would have to come first
    return _tightest(above)


def _tightest(steps: list[Step]) -> int:
    return min((step.amount for step in steps if step.kind == "WITHIN"), default=FAR)


@dataclass(slots=True)
class Held:
    seq: int  # position in the stream
    time: int | None
    event: Event


class _Part(NamedTuple):
    """A binding in the making: events used, open WITHIN spans, times, lowest position."""

    used: frozenset[int]
    spans: tuple[tuple[int, int | None, int | None], ...]  # (limit, earliest, latest)
    first: int | None
    last: int | None
    low: int


class Exhausted(Exception):
    """A search ran out of its budget."""


class Search:
    """One depth-first search for a match that holds the newest event (``need``).

    Each step yields the ways to bind it given what is already used; WITHIN spans and
    time bounds (from FOLLOWEDBY and START/STOP) prune as events are chosen. The
    repetitions of a REPEATS other than the one holding the newest event are taken in
    increasing order of their lowest position, so that each set is tried once.
    """

    def __init__(self, kept: list[dict[int, Held]], newest: Held, fits: frozenset[int],
                 budget: int) -> None:
        self.kept, self.newest, self.fits, self.left = kept, newest, fits, budget

    def run(self, root: Step) -> frozenset[int] | None:
        start = frozenset({self.newest.seq})
        for part in self.solve(root, True, -FAR, FAR, -1, start, ()):
            return part.used
        return None

    def solve(self, step: Step, need: bool, lo: int, hi: int, floor: int,
              used: frozenset[int], spans: tuple) -> Iterator[_Part]:
        """Yield the bindings of ``step`` (holding the newest event if ``need``) within
        [lo, hi], of events past position ``floor`` and not ``used``."""
        kind = step.kind
        if kind == "leaf":
            yield from self._leaf(step.leaf, need, lo, hi, floor, used, spans)
        elif kind == "OR":
            for part in step.parts:
                if not need or part.leaves & self.fits:
                    yield from self.solve(part, need, lo, hi, floor, used, spans)
        elif kind == "AND":
            yield from self._all(step.parts, need, lo, hi, floor, used, spans)
        elif kind == "FOLLOWEDBY":
            yield from self._then(step.parts, need, lo, hi, floor, used, spans)
        elif kind == "REPEATS":
            yield from self._repeats(step, need, lo, hi, floor, used, spans)
        elif kind == "WITHIN":
            for part in self.solve(step.parts[0], need, lo, hi, floor, used,
                                   spans + ((step.amount, None, None),)):
                yield part._replace(spans=part.spans[:-1])
        else:  # START (included) / STOP (excluded)
            yield from self.solve(step.parts[0], need, max(lo, step.window[0]),
                                  min(hi, step.window[1] - 1), floor, used, spans)

    def _leaf(self, leaf: int, need: bool, lo: int, hi: int, floor: int,
              used: frozenset[int], spans: tuple) -> Iterator[_Part]:
        pool = ((self.newest,) if leaf in self.fits else ()) if need else self.kept[leaf].values()
        for held in pool:
            self.left -= 1
            if self.left < 0:
                raise Exhausted
            if held.seq <= floor or (not need and held.seq in used):
                continue
            time = held.time  # None only where nothing constrains time (Leaf.admits)
            if time is not None and not lo <= time <= hi:
                continue
            widened = spans if time is None else _widen(spans, time)
            if widened is not None:
                yield _Part(used | {held.seq}, widened, time, time, held.seq)

    def _all(self, parts: tuple[Step, ...], need: bool, lo: int, hi: int, floor: int,
             used: frozenset[int], spans: tuple) -> Iterator[_Part]:
        """AND: the part holding the newest event first (it narrows the spans most)."""
        orders = [[(part, True, lo, hi)] + [(p, False, lo, hi) for p in parts if p is not part]
                  for part in parts if part.leaves & self.fits] if need \
            else [[(part, False, lo, hi) for part in parts]]
        for order in orders:
            yield from self._chain(order, 0, False, floor, _Part(used, spans, None, None, FAR))

    def _then(self, parts: tuple[Step, ...], need: bool, lo: int, hi: int, floor: int,
              used: frozenset[int], spans: tuple) -> Iterator[_Part]:
        """FOLLOWEDBY: parts before the one holding the newest event end by its time,
        parts after it start there."""
        moment = self.newest.time if self.newest.time is not None else lo
        for pin in [n for n, part in enumerate(parts) if part.leaves & self.fits] if need else [-1]:
            order = [(part, n == pin, lo if n <= pin or pin < 0 else max(lo, moment),
                      min(hi, moment) if n < pin else hi) for n, part in enumerate(parts)]
            yield from self._chain(order, 0, True, floor, _Part(used, spans, None, None, FAR))

    def _chain(self, order: list[tuple[Step, bool, int, int]], n: int, ordered: bool,
               floor: int, sofar: _Part) -> Iterator[_Part]:
        """Bind the parts in ``order`` one after another; if ``ordered``, each no earlier
        than the latest event of the parts before it."""
        if n == len(order):
            yield sofar
            return
        step, need, lo, hi = order[n]
        if ordered and sofar.last is not None:
            lo = max(lo, sofar.last)
        for part in self.solve(step, need, lo, hi, floor, sofar.used, sofar.spans):
            yield from self._chain(order, n + 1, ordered, floor, _join(sofar, part))

    def _repeats(self, step: Step, need: bool, lo: int, hi: int, floor: int,
                 used: frozenset[int], spans: tuple) -> Iterator[_Part]:
        inner = step.parts[0]
        firsts = self.solve(inner, True, lo, hi, floor, used, spans) if need \
            else iter([_Part(used, spans, None, None, FAR)])
        for part in firsts:  # the repetition holding the newest event, if it is wanted
            yield from self._again(inner, step.amount - int(need), lo, hi, floor, part)

    def _again(self, inner: Step, left: int, lo: int, hi: int, after: int,
               sofar: _Part) -> Iterator[_Part]:
        """Bind ``left`` more repetitions, each starting past the one before (``after``)."""
        if left == 0:
            yield sofar
            return
        if inner.kind == "leaf" and not self._enough(inner.leaf, left, lo, hi, after, sofar):
            return
        for part in self.solve(inner, False, lo, hi, after, sofar.used, sofar.spans):
            yield from self._again(inner, left - 1, lo, hi, part.low, _join(sofar, part))

    def _enough(self, leaf: int, wanted: int, lo: int, hi: int, after: int, sofar: _Part) -> bool:
        """Return whether ``wanted`` events could still fill a repeated observation."""
        count = 0
        for held in self.kept[leaf].values():
            self.left -= 1
            if held.seq > after and held.seq not in sofar.used and (
                    held.time is None or (lo <= held.time <= hi
                                          and _widen(sofar.spans, held.time) is not None)):
                count += 1
                if count >= wanted:
                    return True
        if self.left < 0:
            raise Exhausted
        return False


def _widen(spans: tuple, time: int) -> tuple | None:
    """Return the open WITHIN spans with ``time`` added, or None if one grows too wide."""
    widened = []
    for limit, first, last in spans:
        first = time if first is None or time < first else first
        last = time if last is None or time > last else last
        if last - first > limit:
            return None
        widened.append((limit, first, last))
    return tuple(widened)


def _join(sofar: _Part, part: _Part) -> _Part:
    """Return the binding of two parts side by side (``part`` chosen after ``sofar``)."""
    firsts = [t for t in (sofar.first, part.first) if t is not None]
    lasts = [t for t in (sofar.last, part.last) if t is not None]
    return _Part(part.used, part.spans, min(firsts, default=None), max(lasts, default=None),
                 min(sofar.low, part.low))
