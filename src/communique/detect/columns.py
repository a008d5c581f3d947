"""Batches of events in columns: per field, the values of many records at once.

A hunt matches logs a batch at a time. Instead of one ``Event`` per record, a
``Batch`` holds *columns*: one field's values over the batch's *slots* (a slot per
record read), so that the engine meets the distinct values of a field with its
index in a few set operations, and goes back to whole events only for the few
slots that may match (``Batch.event``).

A column's ``Field`` says what its values are. The field of an event path
(``Field.of_path``) holds values as events do. A field a reader fills straight
from a log (Suricata's ``src_ip``, a Zeek ``id.orig_h`` cell) holds the value as
logged, and ``Field.derived`` turns one into what a record would make of it: the
(path, value) pairs it adds, and the notes it takes ("record kept without …").
That is worked out once per distinct value and cached, since logs repeat
themselves. A value that derives the same pairs is the same to the engine, so a
field's ``key`` names its derivation: fields with equal keys derive alike.

Columns come in three shapes: *dense* (``values[slot]``, None where the record has
none), *dense lists* (``values[slot]`` a tuple of values, empty where the record
has none) and *sparse* (``values[i]`` belongs to slot ``slots[i]``; a slot may
appear several times).
"""

from __future__ import annotations

import re
from itertools import chain, repeat
from typing import Callable, Hashable, Iterable, Iterator, Sequence

from communique.detect import normalise
from communique.detect.events import Event

Pairs = tuple[tuple[str, object], ...]
Derived = tuple[Pairs, tuple[str, ...]]  # the (path, value) pairs a value adds, the notes it takes
NOTHING: Derived = ((), ())
_CLEAN = 1 << 18  # values a field remembers as clean
_ODD = 1 << 14  # values a field remembers as adding nothing or taking a note


class Field:
    """What a column holds: the paths its values may be added under, and how they are derived."""

    __slots__ = ("key", "paths", "plain_paths", "notes", "_derive", "_plain", "_bulk", "_odd", "_clean")

    def __init__(self, key: Hashable, paths: Iterable[str],
                 derive: Callable[[object], Derived] | None = None,
                 plain: Callable[[set], set] | None = None, plain_paths: Iterable[str] = (),
                 bulk: Callable[[list], bool] | None = None, notes: bool = True) -> None:
        self.key = key
        self.notes = notes and derive is not None  # False: no value of the field ever takes a note
        self.paths = frozenset(paths)
        self._derive = derive
        self._plain = plain
        self.plain_paths = tuple(plain_paths)
        self._bulk = bulk
        self._odd: dict[object, Derived] = {}  # values that add nothing or take a note
        self._clean: set = set()  # values that add something and take no note

    def plain(self, values: set) -> set:
        """Return, of some values, those known (quickly) to be *plain*: each adds itself, in
        normal form, under some of ``plain_paths``, and nothing else, and takes no note."""
        return self._plain(values) if self._plain is not None else set()

    @classmethod
    def of_path(cls, path: str) -> Field:
        """Return the field of an event path: its values are added under it as they are."""
        return cls(("path", path), (path,), plain=_normal_already(path), plain_paths=(path,))

    def all_clean(self, values: list) -> bool:
        """Tell, at C speed when it can, that every value of a dense column (None: no value)
        adds something and takes no note (False: not known)."""
        return self._derive is None or (self._bulk is not None and self._bulk(values))

    def derived(self, value: object) -> Derived:
        """Return the (path, value) pairs and the notes a record makes of one logged value."""
        if self._derive is None:
            (path,) = self.paths
            return ((path, value),), ()
        return self._odd.get(value) or self._derive(value)

    def unclean(self, distinct: set) -> dict[object, Derived]:
        """Return, of some distinct values, those that add nothing or take a note, with their derivation."""
        if self._derive is None:
            return {}
        odd: dict[object, Derived] = {}
        rest = distinct - self._clean
        if self._plain is not None and rest:
            plain = self._plain(rest)
            self._clean |= plain
            rest -= plain
        for value in rest:
            found = self._odd.get(value) or self._derive(value)
            if found[0] and not found[1]:
                self._clean.add(value)
                continue
            odd[value] = found
            if len(self._odd) >= _ODD:
                self._odd.clear()
            self._odd[value] = found
        if len(self._clean) > _CLEAN:
            self._clean.clear()
        return odd


class Column:
    """One field's values over the slots of a batch (dense, dense lists, or sparse)."""

    __slots__ = ("field", "values", "slots", "many", "_distinct")

    def __init__(self, field: Field, values: list, slots: list[int] | None = None,
                 many: bool = False) -> None:
        self.field = field
        self.values = values
        self.slots = slots
        self.many = many
        self._distinct: set | None = None

    def distinct(self) -> set:
        """Return the set of the column's values (None left out)."""
        if self._distinct is None:
            if self.many:
                found = set(chain.from_iterable(self.values))
            else:
                found = set(self.values)
                found.discard(None)
            self._distinct = found
        return self._distinct

    def slots_of(self, wanted: set) -> list[int]:
        """Return the slots holding one of the wanted values (with repeats, in no set order)."""
        if self.slots is not None:
            return [slot for slot, value in zip(self.slots, self.values) if value in wanted]
        if self.many:  # flags made and searched at C speed: hits are few
            return positions(list(map(wanted.isdisjoint, self.values)), False)
        if len(wanted) <= 8:  # list.index walks the list at C speed, once per value
            return [slot for value in wanted for slot in positions(self.values, value)]
        return [slot for slot, value in enumerate(self.values) if value in wanted]

    def items(self) -> Iterator[tuple[int, object]]:
        """Yield (slot, value) for every value of the column."""
        if self.slots is not None:
            yield from zip(self.slots, self.values)
        elif self.many:
            for slot, seen in enumerate(self.values):
                for value in seen:
                    yield slot, value
        else:
            for slot, value in enumerate(self.values):
                if value is not None:
                    yield slot, value


# An IPv4 address as ``normalise`` writes it: four decimal numbers, no leading zero.
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
DOTTED_QUAD = re.compile(rf"(?:{_OCTET}\.){{3}}{_OCTET}\Z")


# A host name as ``normalise`` writes it: lower-case ASCII labels, a letter somewhere, no end dot.
PLAIN_NAME = re.compile(r"(?=[^a-z]*[a-z])(?=.{1,253}\Z)[a-z0-9-]+(?:\.[a-z0-9-]+)*\Z")
_PLAIN_HOST = re.compile(rf"(?:(?:{_OCTET}\.){{3}}{_OCTET}|{PLAIN_NAME.pattern[:-2]})\Z")


def dotted_quads(values: set) -> set:
    """Return the values that are IPv4 addresses in standard form (picked at C speed)."""
    return _matching(DOTTED_QUAD, values)


def plain_hosts(values: set) -> set:
    """Return the values that are IPv4 addresses or host names in standard form."""
    return _matching(_PLAIN_HOST, values)


def _matching(pattern: re.Pattern, values: set) -> set:
    """Return the strings among values that a pattern matches."""
    try:
        return set(filter(pattern.match, values))
    except TypeError:  # not all strings
        return set(filter(pattern.match, [value for value in values if type(value) is str]))


def _normal_already(path: str) -> Callable[[set], set] | None:
    """Return how to pick, quickly, values ``normalise`` leaves as they are at ``path``."""
    if path in normalise.IP_PATHS:
        return dotted_quads
    if path == "domain-name:value":
        return _plain_names
    if ":hashes." in path or path.endswith(("-addr:value", "_ref.value")):
        return _lower_texts
    if path == "url:value" or "[" in path:  # URLs are rewritten; protocol names lose their case
        return None
    return set


def _plain_names(values: set) -> set:
    return {value for value in values if type(value) is str and value.isascii() and value.islower()
            and not value.endswith((".", " ")) and not value.startswith(" ")}


def _lower_texts(values: set) -> set:
    return {value for value in values
            if type(value) is str and value.islower() and value == value.strip()}


def positions(values: list, wanted: object) -> list[int]:
    """Return the positions of one value in a list (list.index walks it at C speed)."""
    found, position = [], -1
    try:
        while True:
            position = values.index(wanted, position + 1)
            found.append(position)
    except ValueError:
        return found


class Batch:
    """Records read together: columns over their slots, and each slot's whole event on demand."""

    __slots__ = ("size", "columns", "kept", "_resolve")

    def __init__(self, size: int, columns: list[Column], resolve: Callable[[int], Event | None],
                 kept: Sequence[int] | None = None) -> None:
        self.size = size
        self.columns = columns
        self.kept = range(size) if kept is None else kept  # slots that hold an event, ascending
        self._resolve = resolve

    @classmethod
    def of(cls, events: Sequence[Event], paths: Iterable[str] | None = None) -> Batch:
        """Return the batch of some events: a dense-list column per path (only ``paths``, if given)."""
        if paths is None:
            paths = set().union(*(event.values.keys() for event in events))
        columns, held = [], [event.values for event in events]
        for path in paths:
            values = list(map(dict.get, held, repeat(path), repeat(())))
            if values.count(()) < len(values):
                columns.append(Column(Field.of_path(path), values, many=True))
        return cls(len(events), columns, events.__getitem__)

    @property
    def count(self) -> int:
        """Return the number of events in the batch."""
        return len(self.kept)

    def event(self, slot: int) -> Event | None:
        """Return the whole event of a slot, as ``logs.read`` gives it (None for a slot without one)."""
        return self._resolve(slot)

    def events(self) -> Iterator[tuple[int, Event]]:
        """Yield (slot, event) for every event of the batch, in order (slow: for checks and fallbacks)."""
        for slot in self.kept:
            event = self._resolve(slot)
            if event is not None:
                yield slot, event
