"""The indicator engine: many STIX patterns compiled into one index, events matched at once.

Each rule (one conjunction of a pattern, see ``rules``) is filed under one *anchor*
comparison an event can be looked up by:

- an equality or IN on a value: a dictionary lookup per event value;
- ISSUBSET on an address: one lookup per prefix length in use;
- LIKE ``'%.suffix'`` (subdomains, say): one lookup per label suffix of a value;
- otherwise one of its comparisons is its *gate* (LIKE, MATCHES, an ordering,
  EXISTS…), tried on the values of the gate's path.

A rule that is its anchor alone is filed as its indicator id (the lookup decides);
any other is filed whole, and checked whole once its anchor is met.

Batches (``match_batch``) are matched column by column: the distinct values of a
field meet the index keys in one set operation; values not found as written go
through the slow checks above once, and the verdict is cached (logs repeat
themselves). Only slots holding a value that may match are rebuilt into events and
checked in full, so the work grows with the distinct values and the hits, not with
every value of every record.

Patterns the engine cannot run are reported once with the reason, never dropped
silently (``Engine.unsupported``).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Hashable, Sequence, Union

from communique.detect.columns import Batch, Column
from communique.detect.columns import Field as ColumnField
from communique.detect.events import Event
from communique.detect.pattern_ast import Comparison
from communique.detect.rules import (Rule, Unsupported, compile_rules, holds, index_path,
                                     normal, seen_at, value_holds)

__all__ = ["Engine", "Rule", "Unsupported", "anchor_values", "holds"]

_CACHE_SIZE = 200_000  # verdicts on values kept per field
_IPV6_LENGTHS = 1000  # network buckets of IPv6 prefix lengths are keyed length + this

Entry = Union[str, Rule]  # an indicator id (its anchor decides alone), or a rule to check whole
Entries = Union[Entry, tuple[Entry, ...]]


@dataclass
class Engine:
    """Compiled indicators: ``add`` them, then ``match`` events or batches of them."""

    by_value: dict[str, dict[object, Entries]] = field(default_factory=dict)
    by_network: dict[str, dict[int, dict[int, Entries]]] = field(default_factory=dict)
    by_suffix: dict[str, dict[str, Entries]] = field(default_factory=dict)
    scanned: dict[str, list[tuple[Comparison, Entry]]] = field(default_factory=dict)  # path -> gates
    unsupported: dict[str, str] = field(default_factory=dict)
    count: int = 0
    paths: set[str] = field(default_factory=set)  # paths some rule is filed under
    _ranged: set[str] = field(default_factory=set, repr=False)  # paths of ranges, suffixes or gates
    _verdicts: dict[Hashable, tuple[set, set]] = field(default_factory=dict, repr=False)

    def add(self, indicator_id: str, pattern: str) -> bool:
        """Compile one indicator's pattern; False (with the reason kept) if it cannot run."""
        try:
            rules = compile_rules(indicator_id, pattern)
        except Unsupported as exc:
            self.unsupported[indicator_id] = exc.reason
            return False
        for rule in rules:
            self._file(rule)
        self.count += 1
        if self._verdicts:
            self.forget()
        return True

    def forget(self) -> None:
        """Drop the verdicts cached on values seen (they change when indicators are added)."""
        self._verdicts.clear()

    def match(self, event: Event) -> set[str]:
        """Return the ids of the indicators whose pattern this event satisfies."""
        values = {path: [normal(path, v) for v in seen] for path, seen in event.values.items()}
        entries: list[Entry] = []
        for path, seen in values.items():
            if path in self.paths:
                for value in seen:
                    entries.extend(self._entries(path, value))
        found: set[str] = set()
        for entry in entries:
            if type(entry) is str:
                found.add(entry)
            elif entry.indicator_id not in found and all(  # type: ignore[union-attr]
                    holds(c, seen_at(values, c.path)) for c in entry.comparisons):  # type: ignore[union-attr]
                found.add(entry.indicator_id)  # type: ignore[union-attr]
        return found

    def match_many(self, events: Sequence[Event]) -> list[tuple[int, str]]:
        """Return (position in ``events``, indicator id) for every match, in event order."""
        return self.match_batch(Batch.of(events, self.paths))

    def match_batch(self, batch: Batch) -> list[tuple[int, str]]:
        """Return (slot, indicator id) for every match in a batch, in slot order."""
        slots: set[int] = set()
        for column in batch.columns:
            if not self.paths.isdisjoint(column.field.paths):
                found = self._found(column)
                if found:
                    slots.update(column.slots_of(found))
        matches = []
        for slot in sorted(slots):
            event = batch.event(slot)
            if event is not None:
                matches.extend((slot, indicator_id) for indicator_id in sorted(self.match(event)))
        return matches

    def _found(self, column: Column) -> set:
        """Return the column's values that may lead to a match (a superset, never fewer)."""
        verdicts = self._verdicts.get(column.field.key)
        if verdicts is None:
            verdicts = self._verdicts[column.field.key] = (set(), set())
        hits, misses = verdicts
        rest = column.distinct() - misses  # after a while, mostly the values that do match
        if not rest:
            return rest
        found = rest & hits
        rest -= found
        column_field = column.field
        for path in column_field.paths:
            index = self.by_value.get(path)
            if index and rest:
                direct = index.keys() & rest
                found |= direct
                rest -= direct
        if rest and column_field.plain_paths and self._looked_up(column_field.plain_paths):
            plain = column_field.plain(rest)  # not found as they are: nothing else can match them
            misses |= plain
            rest -= plain
        for value in rest:  # seen for the first time
            if self._may_match(column.field, value):
                hits.add(value)
                found.add(value)
            else:
                misses.add(value)
        if len(hits) + len(misses) > _CACHE_SIZE:
            hits.clear()
            misses.clear()
        return found

    def _looked_up(self, paths: Sequence[str]) -> bool:
        """Tell whether values at these paths meet anchors only by value (no range, suffix or gate)."""
        return self._ranged.isdisjoint(paths)

    def _may_match(self, column_field: ColumnField, value: object) -> bool:
        """Tell whether a logged value adds a value some rule's anchor is met by."""
        for path, added in column_field.derived(value)[0]:
            if path not in self.paths:
                continue
            key = normal(path, added)
            if path not in self._ranged:
                if key in self.by_value[path]:
                    return True
            elif self._entries(path, key):
                return True
        return False

    def _entries(self, path: str, value: object) -> list[Entry]:
        """Return the entries whose anchor a value (in normal form) at ``path`` meets."""
        entries: list[Entry] = []
        index = self.by_value.get(path)
        if index:
            _extend(entries, index.get(value))
        networks = self.by_network.get(path)
        if networks:
            for found in _in_networks(networks, value):
                _extend(entries, found)
        suffixes = self.by_suffix.get(path)
        if suffixes and isinstance(value, str):
            dot = value.find(".")
            while dot >= 0:
                _extend(entries, suffixes.get(value[dot:]))
                dot = value.find(".", dot + 1)
        for gate, entry in self.scanned.get(path, ()):
            if value_holds(gate, value):
                entries.append(entry)
        return entries

    def _file(self, rule: Rule) -> None:
        anchor, kind = _anchor(rule.comparisons)
        path = index_path(anchor.path)
        entry: Entry = rule.indicator_id if len(rule.comparisons) == 1 and path == anchor.path \
            else rule
        self.paths.add(path)
        if kind != "value":
            self._ranged.add(path)
        if kind == "value":
            index = self.by_value.setdefault(path, {})
            for value in (anchor.value if anchor.op == "IN" else (anchor.value,)):  # type: ignore[union-attr]
                _put(index, normal(anchor.path, value), entry)
        elif kind == "network":
            network = ipaddress.ip_network(str(anchor.value), strict=False)
            buckets = self.by_network.setdefault(path, {})
            length = network.prefixlen + (0 if network.version == 4 else _IPV6_LENGTHS)
            _put(buckets.setdefault(length, {}), int(network.network_address), entry)
        elif kind == "suffix":
            _put(self.by_suffix.setdefault(path, {}), str(anchor.value)[1:], entry)
        else:
            self.scanned.setdefault(path, []).append((anchor, entry))


def anchor_values(pattern: str) -> list[tuple[str, object]] | None:
    """Return the (path, value) pairs a pattern is looked up by, or None if some part of
    it is not a plain value lookup (a range, LIKE, MATCHES…) or it cannot run."""
    try:
        rules = compile_rules("", pattern)
    except Unsupported:
        return None
    values: list[tuple[str, object]] = []
    for rule in rules:
        anchor, kind = _anchor(rule.comparisons)
        if kind != "value":
            return None
        values.extend((anchor.path, v) for v in (anchor.value if anchor.op == "IN"  # type: ignore[union-attr]
                                                 else (anchor.value,)))
    return values


def _anchor(comparisons: Sequence[Comparison]) -> tuple[Comparison, str]:
    """Pick the comparison to file a conjunction under, and how: by value, network, suffix or gate."""
    usable = [c for c in comparisons if not c.negated]
    for comparison in usable:
        if comparison.op == "=" or (comparison.op == "IN" and comparison.value):
            return comparison, "value"
    for comparison in usable:
        if comparison.op == "ISSUBSET":
            return comparison, "network"
    for comparison in usable:
        if _is_suffix(comparison):
            return comparison, "suffix"
    return min(comparisons, key=_selectivity), "gate"


def _is_suffix(comparison: Comparison) -> bool:
    """Tell a LIKE '%.rest' whose rest holds no wildcard (a match of label suffixes)."""
    text = comparison.value
    return (comparison.op == "LIKE" and isinstance(text, str) and text.startswith("%.")
            and "%" not in text[1:] and "_" not in text)


def _selectivity(comparison: Comparison) -> int:
    """Rank a comparison as a gate: the fewer values it lets through, the better."""
    if comparison.negated or comparison.op == "!=":
        return 3
    return {"LIKE": 0, "MATCHES": 0, "IN": 0, "EXISTS": 2}.get(comparison.op, 1)


def _put(mapping: dict, key: object, entry: Entry) -> None:
    """File an entry under a key: alone, or in a tuple once a key has several."""
    old = mapping.get(key)
    if old is None:
        mapping[key] = entry
    elif type(old) is tuple:
        if entry not in old:
            mapping[key] = old + (entry,)
    elif old != entry:
        mapping[key] = (old, entry)


def _extend(entries: list[Entry], found: Entries | None) -> None:
    if found is None:
        return
    if type(found) is tuple:
        entries.extend(found)
    else:
        entries.append(found)  # type: ignore[arg-type]


def _in_networks(by_length: dict[int, dict[int, Entries]], value: object) -> list[Entries]:
    """Return the entries of the networks an address falls in."""
    try:
        address = ipaddress.ip_address(value)  # type: ignore[arg-type]
    except (ValueError, TypeError):
        return []
    number, bits = int(address), address.max_prefixlen
    offset = 0 if address.version == 4 else _IPV6_LENGTHS
    found = []
    for key, bucket in by_length.items():
        length = key - offset
        if 0 <= length <= bits:
            entries = bucket.get(number >> (bits - length) << (bits - length))
            if entries is not None:
                found.append(entries)
    return found
