"""The indicator engine: many STIX patterns compiled into one index, events matched at once.

A pattern of one observation (``[ … ]``, comparisons joined by AND and OR) is put in
disjunctive normal form; as in STIX, the comparisons of one conjunction are about
one object, so a conjunction across object types is dropped (it never matches). Each
conjunction is filed under one *anchor* comparison
that an event can be looked up by: an equality or IN on a value (a dictionary
lookup per event value), or ISSUBSET on an address (one lookup per prefix length
in use). Conjunctions without such an anchor (only LIKE, MATCHES, !=, <, …) are
kept apart and tried on every event that carries their paths. An event's lookups
give candidates; each candidate's whole conjunction is then checked. Values are
normalised by ``normalise`` on both sides.

Patterns the engine cannot run are reported once with the reason, never dropped
silently (``Engine.unsupported``).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from communique.detect import normalise
from communique.detect.events import Event
from communique.detect.pattern_ast import AnyOf, Comparison, Expression, Observation
from communique.detect.pattern_ast import parse as parse_pattern
from communique.errors import BadRequest

MAX_CONJUNCTIONS = 64
_CACHE_SIZE = 200_000  # normalised values kept per path
_REGEX_LIMIT = 4096


@dataclass(frozen=True, slots=True)
class Rule:
    """One conjunction of one indicator's pattern."""

    indicator_id: str
    comparisons: tuple[Comparison, ...]


@dataclass
class Engine:
    """Compiled indicators: ``add`` them, then ``match`` events."""

    by_value: dict[str, dict[object, list[Rule]]] = field(default_factory=dict)
    by_network: dict[str, dict[int, dict[int, list[Rule]]]] = field(default_factory=dict)
    scanned: list[Rule] = field(default_factory=list)
    unsupported: dict[str, str] = field(default_factory=dict)
    count: int = 0
    _plain: dict[str, set] = field(default_factory=dict, repr=False)  # values already normal
    _mapped: dict[str, dict] = field(default_factory=dict, repr=False)  # value -> normal form

    def add(self, indicator_id: str, pattern: str) -> bool:
        """Compile one indicator's pattern; False (with the reason kept) if it cannot run."""
        try:
            rules = _rules(indicator_id, pattern)
        except Unsupported as exc:
            self.unsupported[indicator_id] = exc.reason
            return False
        for rule in rules:
            self._file(rule)
        self.count += 1
        return True

    def match_many(self, events: Sequence[Event]) -> list[tuple[int, str]]:
        """Return (position in ``events``, indicator id) for every match, in event order.

        The hot loop of a hunt, done path by path over the whole batch so that most of
        the work happens inside set operations: the distinct values of a path meet the
        index keys at once; a value not found as written is normalised (once, then
        cached: logs repeat themselves) and looked up again. Only events holding a value
        found, or that address ranges or scanned rules may fit, get the full check.
        """
        touched: set[int] = set()
        for path, index in self.by_value.items():
            seen = [v for event in events for v in event.values.get(path, ())]
            if not seen:
                continue
            distinct = set(seen)
            found = distinct & index.keys()
            plain, mapped = self._plain.setdefault(path, set()), self._mapped.setdefault(path, {})
            rest = distinct - found - plain  # values already known to be in normal form go
            for value in rest & mapped.keys():
                if mapped[value] in index:
                    found.add(value)
            for value in rest - mapped.keys():  # seen for the first time: normalise once
                key = normalise.value(path, value)
                if len(plain) + len(mapped) > _CACHE_SIZE:
                    plain.clear()
                    mapped.clear()
                if key == value:
                    plain.add(value)
                else:
                    mapped[value] = key
                    if key in index:
                        found.add(value)
            if found:
                touched.update(position for position, event in enumerate(events)
                               if not found.isdisjoint(event.values.get(path, ())))
        if self.by_network or self.scanned:
            touched.update(range(len(events)))
        return [(position, indicator_id) for position in sorted(touched)
                for indicator_id in sorted(self.match(events[position]))]

    def match(self, event: Event) -> set[str]:
        """Return the ids of the indicators whose pattern this event satisfies."""
        values = {path: [normalise.value(path, v) for v in seen]
                  for path, seen in event.values.items()}
        candidates: list[Rule] = []
        for path, seen in values.items():
            index = self.by_value.get(path)
            if index:
                for value in seen:
                    found = index.get(value)
                    if found:
                        candidates.extend(found)
            networks = self.by_network.get(path)
            if networks:
                candidates.extend(_in_networks(networks, seen))
        candidates.extend(self.scanned)
        return {rule.indicator_id for rule in candidates
                if all(holds(c, values.get(c.path, ())) for c in rule.comparisons)}

    def _file(self, rule: Rule) -> None:
        anchor = _anchor(rule.comparisons)
        if anchor is None:
            self.scanned.append(rule)
        elif anchor.op == "ISSUBSET":
            network = ipaddress.ip_network(anchor.value, strict=False)
            by_length = self.by_network.setdefault(anchor.path, {})
            bucket = by_length.setdefault(network.prefixlen + (0 if network.version == 4 else 1000), {})
            bucket.setdefault(int(network.network_address), []).append(rule)
        else:
            index = self.by_value.setdefault(anchor.path, {})
            for value in (anchor.value if anchor.op == "IN" else (anchor.value,)):
                index.setdefault(normalise.value(anchor.path, value), []).append(rule)


def anchor_values(pattern: str) -> list[tuple[str, object]] | None:
    """Return the (path, value) pairs a pattern is looked up by, or None if some part of
    it is not a plain value lookup (a range, LIKE, MATCHES…) or it cannot run."""
    try:
        rules = _rules("", pattern)
    except Unsupported:
        return None
    values: list[tuple[str, object]] = []
    for rule in rules:
        anchor = _anchor(rule.comparisons)
        if anchor is None or anchor.op == "ISSUBSET":
            return None
        values.extend((anchor.path, v) for v in (anchor.value if anchor.op == "IN"
                                                 else (anchor.value,)))
    return values


class Unsupported(Exception):
    """A pattern the engine does not run, and why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _rules(indicator_id: str, pattern: str) -> list[Rule]:
    try:
        tree = parse_pattern(pattern)
    except BadRequest as exc:
        raise Unsupported(exc.description) from None
    if not isinstance(tree, Observation):
        raise Unsupported("patterns over several observations or with qualifiers (WITHIN, "
                          "REPEATS, FOLLOWEDBY, START/STOP) are not run by the engine yet")
    conjunctions = _dnf(tree.expression)
    rules = []
    for terms in conjunctions:
        for comparison in terms:
            _check_supported(comparison)
        # STIX 2.1 (§9.2): comparisons joined by AND in one observation must all hold for
        # one object, so an AND across object types never matches.
        if len({c.path.split(":", 1)[0] for c in terms}) == 1:
            rules.append(Rule(indicator_id, tuple(terms)))
    if not rules:
        raise Unsupported("the pattern can never match: comparisons joined by AND name "
                          "different object types, which one object cannot be")
    return rules


def _dnf(expression: Expression) -> list[tuple[Comparison, ...]]:
    """Return the expression as an OR of ANDs of comparisons (bounded in size)."""
    if isinstance(expression, Comparison):
        return [(expression,)]
    if isinstance(expression, AnyOf):
        result = [c for term in expression.terms for c in _dnf(term)]
    else:
        result = [()]
        for term in expression.terms:
            result = [left + right for left in result for right in _dnf(term)]
            if len(result) > MAX_CONJUNCTIONS:
                break
    if len(result) > MAX_CONJUNCTIONS:
        raise Unsupported(f"the pattern expands to more than {MAX_CONJUNCTIONS} alternatives")
    return result


def _check_supported(comparison: Comparison) -> None:
    if "[" in comparison.path or comparison.path.count(":") != 1:
        raise Unsupported(f"list indexes in object paths ({comparison.path}) are not run yet")
    if comparison.op in ("ISSUPERSET", "EXISTS"):
        raise Unsupported(f"{comparison.op} is not run by the engine yet")
    if comparison.op == "ISSUBSET" and comparison.path not in normalise.IP_PATHS:
        raise Unsupported("ISSUBSET is run on address paths only")
    if comparison.op == "ISSUBSET":
        try:
            ipaddress.ip_network(str(comparison.value), strict=False)
        except ValueError:
            raise Unsupported(f"{comparison.value!r} is not an address range") from None
    if comparison.op == "MATCHES":
        _regex(str(comparison.value))
    if isinstance(comparison.value, tuple) and comparison.op != "IN":
        raise Unsupported("binary, hex and timestamp literals are not run yet")


def _anchor(comparisons: Iterable[Comparison]) -> Comparison | None:
    """Pick the comparison to file a conjunction under: a value lookup, else a range."""
    usable = [c for c in comparisons if not c.negated]
    for comparison in usable:
        if comparison.op == "=" or (comparison.op == "IN" and comparison.value):
            return comparison
    for comparison in usable:
        if comparison.op == "ISSUBSET":
            return comparison
    return None


def _in_networks(by_length: dict[int, dict[int, list[Rule]]], seen: list) -> list[Rule]:
    found: list[Rule] = []
    for value in seen:
        try:
            address = ipaddress.ip_address(value)
        except (ValueError, TypeError):
            continue
        number, bits, offset = int(address), address.max_prefixlen, 0 if address.version == 4 else 1000
        for key, bucket in by_length.items():
            length = key - offset
            if not 0 <= length <= bits:
                continue
            rules = bucket.get(number >> (bits - length) << (bits - length))
            if rules:
                found.extend(rules)
    return found


def holds(comparison: Comparison, seen: list) -> bool:
    """Return whether some value seen at the comparison's path satisfies it."""
    expected = normalise.value(comparison.path, comparison.value) \
        if comparison.op in ("=", "!=") else comparison.value
    return any(_one(comparison.op, value, expected, comparison.path) != comparison.negated
               for value in seen)


def _one(op: str, value: object, expected: object, path: str) -> bool:
    if op == "=":
        return value == expected
    if op == "!=":
        return value != expected
    if op == "IN":
        return value in {normalise.value(path, v) for v in expected}  # type: ignore[union-attr]
    if op == "LIKE":
        return isinstance(value, str) and _like(str(expected)).fullmatch(value) is not None
    if op == "MATCHES":
        return isinstance(value, str) and _regex(str(expected)).search(value) is not None
    if op == "ISSUBSET":
        try:
            return ipaddress.ip_address(value) in ipaddress.ip_network(str(expected),
                                                                       strict=False)
        except (ValueError, TypeError):
            return False
    try:  # orderings: only between values of one kind
        if isinstance(value, str) != isinstance(expected, str):
            return False
        return {"<": value < expected, "<=": value <= expected,  # type: ignore[operator]
                ">": value > expected, ">=": value >= expected}[op]  # type: ignore[operator]
    except TypeError:
        return False


_LIKE_CACHE: dict[str, re.Pattern] = {}
_REGEX_CACHE: dict[str, re.Pattern] = {}


def _like(pattern: str) -> re.Pattern:
    """Return SQL LIKE (% any run, _ one character) as a compiled regular expression."""
    found = _LIKE_CACHE.get(pattern)
    if found is None:
        text = "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch)
                       for ch in pattern)
        found = _LIKE_CACHE[pattern] = re.compile(text, re.DOTALL)
    return found


def _regex(pattern: str) -> re.Pattern:
    found = _REGEX_CACHE.get(pattern)
    if found is None:
        if len(pattern) > _REGEX_LIMIT:
            raise Unsupported(f"regular expressions longer than {_REGEX_LIMIT} characters")
        try:
            found = _REGEX_CACHE[pattern] = re.compile(pattern)
        except re.error as exc:
            raise Unsupported(f"the regular expression does not compile: {exc}") from None
    return found


