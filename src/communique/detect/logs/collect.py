"""Gather records into a columnar ``Batch``, counting them exactly as ``read`` would.

The fast readers (``eve_scan``, ``zeek_scan``) hand a ``Collector`` whole columns of
logged values: a dense column per top-level field (a value per slot), and sparse
ones for what a ``Sink`` is given while a document's sections are walked (the calls
a ``Record`` would get, kept as column values). What a record makes of a value is
worked out once per distinct value (``Field.derived``), which is exact because a
record's values are the union of what each of its fields adds. A value of a type
that could be mistaken for another by a cache (anything but ``str`` and ``int``:
``True == 1``, ``1.0 == 1``, unhashable lists) goes into a real ``Record`` of its slot
instead. Lines the fast path does not take (broken JSON, bytes that are not UTF-8…)
are read by the format's own reader and join the batch as whole events.

``finish`` then finds the slots left without any value (skipped as "no
observables") and the notes of the others, and reports them in line order, with
the skips of the lines read one by one, so that the report ends up the one ``read``
would have made.
"""

from __future__ import annotations

from typing import Callable, Hashable, Sequence

from communique.detect.columns import Batch, Column, Field, positions
from communique.detect.events import Event, ReadReport
from communique.detect.logs import observables
from communique.detect.logs.record import NOTHING as NO_OBSERVABLES
from communique.detect.logs.record import Context, Record
from communique.detect.logs.roles import Fields, Role, apply_role

_CACHEABLE = (str, int)  # types a value cache can key by without confusion (bool is not int here)


class _Deferred(ReadReport):
    """A report that keeps every skip, to be reported later in line order."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[tuple[str, str]] = []

    def skip(self, reason: str, where: str) -> None:
        self.log.append((reason, where))


class Collector:
    """One batch being gathered from one source."""

    def __init__(self, ctx: Context, fields: Fields,
                 resolve: Callable[[object, int], Event | None]) -> None:
        self.ctx = ctx
        self.fields = fields
        self.deferred = _Deferred()
        self.slow = Context(ctx.name, self.deferred, ctx.mapping, ctx.now)  # for lines read one by one
        self._resolve = resolve
        self.payloads: list[object] = []  # per slot: what ``resolve`` needs, or the Event
        self.numbers: list[int] = []  # per slot: its line number
        self._dense: dict[Hashable, tuple[Field, list]] = {}
        self._sparse: dict[Hashable, tuple[Field, list, list[int]]] = {}
        self._odd: dict[int, Record] = {}
        self._whole: list[int] = []  # slots of events read one by one
        self._notes: list[tuple[int, str]] = []  # (slot, reason)
        self._skips: list[tuple[int, str]] = []  # (line number, reason)

    @property
    def size(self) -> int:
        """Return the number of slots so far."""
        return len(self.payloads)

    def slots(self, payloads: Sequence[object], numbers: Sequence[int]) -> int:
        """Add slots for records read by the fast path; return the first one's number."""
        base = len(self.payloads)
        self.payloads.extend(payloads)
        self.numbers.extend(numbers)
        return base

    def column(self, field: Field, values: list, base: int, *, ints: bool = False,
               checked: bool = True) -> None:
        """Add a dense column's values for the slots from ``base`` on (str only, or int too;
        ``checked=False``: the caller knows they are all of one type a cache can key by)."""
        if checked:
            kinds = set(map(type, values))
            kinds.discard(str)
            kinds.discard(type(None))
            if ints:
                kinds.discard(int)
            if kinds:
                values = self._sorted_out(field, values, base, ints)
        entry = self._dense.get(field.key)
        if entry is None:
            entry = self._dense[field.key] = (field, [])
        column = entry[1]
        if len(column) < base:
            column.extend([None] * (base - len(column)))
        column.extend(values)

    def _sorted_out(self, field: Field, values: list, base: int, ints: bool) -> list:
        """Give the values of odd types to their slots' records (str fields: such values add nothing)."""
        kept = []
        for offset, value in enumerate(values):
            if value is None or type(value) is str or (ints and type(value) is int):
                kept.append(value)
                continue
            kept.append(None)
            if ints:
                record = self._odd.setdefault(base + offset, Record())
                apply_role(record, field.key, value)  # type: ignore[arg-type]
        return kept

    def sparse(self, role: Role) -> tuple[list, list[int]]:
        """Return the (values, slots) lists of a role's sparse column, to append to."""
        entry = self._sparse.get(role)
        if entry is None:
            entry = self._sparse[role] = (self.fields.role(role), [], [])
        return entry[1], entry[2]

    def put(self, role: Role, value: object, slot: int) -> None:
        """Add one value given to a Record call for a slot."""
        if value is None:
            return
        if type(value) in _CACHEABLE:
            values, slots = self.sparse(role)
            values.append(value)
            slots.append(slot)
        else:
            apply_role(self._odd.setdefault(slot, Record()), role, value)

    def note(self, slot: int, reason: str) -> None:
        """Note a field left out of a slot's record (counted only if the record is kept)."""
        self._notes.append((slot, reason))

    def event(self, event: Event, number: int) -> None:
        """Add a whole event read one by one (its counting was deferred: see ``drain``)."""
        slot = len(self.payloads)
        self._whole.append(slot)
        self.payloads.append(event)
        self.numbers.append(number)
        for path, seen in event.values.items():
            for value in seen:
                self.put(("add", path), value, slot)

    def drain(self, number: int) -> None:
        """Take the skips deferred while a line was read one by one, as the skips of that line."""
        self._skips.extend((number, reason) for reason, _ in self.deferred.log)
        self.deferred.log.clear()

    def finish(self) -> Batch | None:
        """Report what the batch's lines came to, and return the batch (None when it has no slot)."""
        size = len(self.payloads)
        for slot, record in list(self._odd.items()):  # what odd values add, if anything
            for path, seen in record.values.items():
                for value in seen:
                    self.put(("add", path), value, slot)
        columns = [Column(field, values + [None] * (size - len(values)))
                   for field, values in self._dense.values()]
        columns += [Column(field, values, slots) for field, values, slots in self._sparse.values()]
        missing, notes = self._judge(columns)
        skips = self._skips + [(self.numbers[slot], NO_OBSERVABLES) for slot in missing]
        skips += [(self.numbers[slot], reason) for slot, reason in dict.fromkeys(notes)
                  if slot not in missing]
        skips.sort(key=lambda skip: skip[0])
        report = self.ctx.report
        for number, reason in skips:
            report.skip(reason, f"{self.ctx.name}:{number}")
        report.events += size - len(missing)
        if not size:
            return None
        kept = None if not missing else [slot for slot in range(size) if slot not in missing]
        payloads, numbers, resolve = self.payloads, self.numbers, self._resolve

        def event(slot: int) -> Event | None:
            payload = payloads[slot]
            return payload if isinstance(payload, Event) else resolve(payload, numbers[slot])

        return Batch(size, columns, event, kept)

    def _judge(self, columns: list[Column]) -> tuple[set[int], list[tuple[int, str]]]:
        """Return the slots that add no value, and the (slot, note) of every slot."""
        notes = list(self._notes)
        missing: set[int] | None = None
        for slot, record in self._odd.items():
            notes.extend((slot, reason) for reason in record.notes)
        for column in columns:
            if missing is not None and not missing and not column.field.notes:
                continue  # every slot adds something already, and these values take no note
            if column.slots is None and column.field.all_clean(column.values):
                if missing is None:
                    missing = set(positions(column.values, None))
                elif missing:
                    values = column.values
                    missing = {slot for slot in missing if values[slot] is None}
                continue
            odd = column.field.unclean(column.distinct())
            empty = {value for value, derived in odd.items() if not derived[0]}
            for value, derived in odd.items():
                for slot in column.slots_of({value}) if derived[1] else ():
                    notes.extend((slot, reason) for reason in derived[1])
            if missing is None:  # the first column: every slot it leaves without a value
                missing = self._without(column, empty)
            elif missing and column.slots is None:
                values = column.values
                missing = {slot for slot in missing if values[slot] is None or values[slot] in empty}
            elif missing:
                missing -= {slot for slot, value in column.items()
                            if slot in missing and value not in empty}
        if missing is None:
            missing = set(range(len(self.payloads)))
        missing.difference_update(self._whole)
        missing -= {slot for slot, record in self._odd.items() if record.values}
        return missing, notes

    def _without(self, column: Column, empty: set) -> set[int]:
        """Return the slots where a column adds no value."""
        if column.slots is not None:
            return set(range(len(self.payloads))) - {
                slot for slot, value in zip(column.slots, column.values) if value not in empty}
        return set(column.slots_of(empty | {None})) if None in column.values or empty else set()


class Sink:
    """Stands in for a Record while a reader walks one slot's document (see ``record.Adder``).

    Each call keeps its value in the sparse column of its role, at the current slot.
    """

    __slots__ = ("slot", "_collector", "_hosts", "_urls", "_ips")

    def __init__(self, collector: Collector) -> None:
        self._collector = collector
        self.slot = 0
        self._hosts = collector.sparse(("host",))
        self._urls = collector.sparse(("url",))
        self._ips = collector.sparse(("ip",))

    def add(self, path: str, value: object) -> None:
        """Keep a value added as it is."""
        if value is not None:
            self._collector.put(("add", path), value, self.slot)

    def add_ip(self, text: object) -> bool:
        """Keep an IP literal; tell whether it was one (as a Record would)."""
        is_ip = type(text) is str and observables.ip_path(text) is not None  # type: ignore[arg-type]
        if is_ip:
            self._ips[0].append(text)
            self._ips[1].append(self.slot)
        return is_ip

    def add_host(self, text: object) -> None:
        """Keep a host."""
        if type(text) is str:
            self._hosts[0].append(text)
            self._hosts[1].append(self.slot)
        elif text is not None:
            self._collector.put(("host",), text, self.slot)

    def add_url(self, text: object) -> None:
        """Keep a URL."""
        if type(text) is str:
            self._urls[0].append(text)
            self._urls[1].append(self.slot)
        elif text is not None:
            self._collector.put(("url",), text, self.slot)

    def add_hash(self, text: object, algorithm: str | None = None, *, kind: str = "file") -> None:
        """Keep a hash."""
        if text is not None:
            self._collector.put(("hash", algorithm, kind), text, self.slot)

    def add_email(self, text: object, path: str = observables.EMAIL) -> None:
        """Keep a mail address."""
        if text is not None:
            self._collector.put(("email", path), text, self.slot)
