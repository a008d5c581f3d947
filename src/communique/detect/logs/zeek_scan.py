"""Zeek TSV logs read fast, into columnar batches (see ``collect``).

A block of lines is decoded at once. Between header lines, the records of a table
are cut only as far as the last column the log's kind uses (``#fields`` says where
each is), and each such column, or group of columns read together
(``zeek_fields.TOGETHER``), becomes a dense column of raw cells. A cell is derived
once per distinct cell by ``zeek_fields.fill`` on a record of that field alone, so
that unset and empty markers, set separators and escapes are read as ``zeek`` reads
them. Anything else (JSON lines, blank or odd lines, a wrong number of columns,
bytes that are not UTF-8, a table without ``#path``) is read one by one by
``zeek.event``.
"""

from __future__ import annotations

import copy
from bisect import bisect_right
from itertools import repeat
from operator import itemgetter
from typing import Callable, Iterable, Iterator

from communique.detect.columns import Batch, Derived, Field
from communique.detect.events import PATHS, Event, ReadReport
from communique.detect.logs import quick, timecheck, zeek, zeek_fields
from communique.detect.logs.collect import Collector
from communique.detect.logs.roles import Fields, pairs_of, role_notes, role_plain
from communique.detect.logs.record import BAD_TIME, Context, Record
from communique.detect.logs.sources import MAX_LINE, Block, Line, decode

_BOM = b"\xef\xbb\xbf"
_OWN_PATHS = {"id.orig_p": ("network-traffic:src_port",), "id.resp_p": ("network-traffic:dst_port",),
              "proto": ("network-traffic:protocols[*]",)}


class _Reads(dict):
    """A record's fields that remembers which ones were asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []

    def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
        self.asked.append(key)
        return default


class _Layout:
    """What the fast path takes from the records of one table: the time, and column groups."""

    def __init__(self, header: zeek.Header, fields: Fields) -> None:
        kind = header.path or ""
        asked = _Reads()
        zeek_fields.fill(Record(), asked, kind)
        where = {header.fields[i]: i for i in header.used}  # type: ignore[index]
        wanted = [name for name in dict.fromkeys(asked.asked) if name in where and name != "ts"]
        together = [name for name in zeek_fields.TOGETHER.get(kind, ()) if name in wanted]
        groups = [(name,) for name in wanted if name not in together] + ([tuple(together)] if together else [])
        self.time = where.get("ts")
        self.time_container = self.time in header.containers
        self.header = header
        self.groups = [(tuple(where[name] for name in group), _field(fields, header, kind, group, where))
                       for group in groups]
        self.cut = max([self.time or 0, *(i for indexes, _ in self.groups for i in indexes)]) + 1
        self.usable = bool(header.path) and len(where) == len(header.used)  # no name twice

    def times_noted(self, cells: list[str]) -> list[int]:
        """Return the positions of the time cells a record would note as unreadable."""
        if not self.time_container and timecheck.epoch_valid(cells):
            return []
        header, noted = self.header, []
        for position, cell in enumerate(cells):
            if cell == header.unset:
                continue
            value = _cell(cell, self.time_container, header)
            if timecheck.unreadable(value, zeek_fields.zeek_time):
                noted.append(position)
        return noted


def _field(fields: Fields, header: zeek.Header, kind: str, names: tuple[str, ...],
           where: dict[str, int]) -> Field:
    """Return the field of a group of columns, made once per header layout."""
    containers = tuple(where[name] in header.containers for name in names)
    key = ("zeek", kind, names, containers, header.unset, header.empty, header.set_separator)
    paths = _OWN_PATHS.get(names[0], PATHS) if len(names) == 1 else PATHS
    role = zeek_fields.ROLES.get((kind, names[0])) or zeek_fields.ROLES.get(("", names[0])) \
        if len(names) == 1 and not containers[0] else None
    plain, plain_paths = role_plain(role) if role and role[0] != "port" else (None, ())  # cells are text
    if plain is not None:
        plain = _cells(plain, header.unset, header.empty)
    bulk = None
    if role is not None and role[0] in ("port", "add"):
        bulk = _bulk_cells(_port_cells if role[0] == "port" else _text_cells, header.unset, header.empty)
    notes = role is None or role_notes(role)
    return fields.get(key, lambda: Field(key, paths, _deriver(kind, names, containers, header), plain,
                                         plain_paths, bulk, notes))


def _port_cells(cells: list, joined: str) -> bool:
    """Tell that every cell is a port number (ASCII digits, 0 to 65535)."""
    if not (joined.isdigit() and joined.isascii()):
        return False
    lengths = set(map(len, cells))
    return 0 not in lengths and max(lengths) <= 5 and (
        max(lengths) < 5 or max(map(str.zfill, cells, repeat(5))) <= "65535")


def _text_cells(cells: list, joined: str) -> bool:
    return "" not in cells


def _bulk_cells(check: Callable[[list, str], bool], unset: str, empty: str) -> Callable[[list], bool]:
    """Return ``check`` for cells: no unset or empty marker, no escape, nothing but strings."""
    def checked(cells: list) -> bool:
        try:
            joined = "".join(cells)
        except TypeError:
            return False
        return unset not in cells and empty not in cells and "\\x" not in joined and check(cells, joined)
    return checked


def _cells(plain: Callable[[set], set], unset: str, empty: str) -> Callable[[set], set]:
    """Return ``plain`` for cells: unset and empty markers and escapes are not plain."""
    def picked(values: set) -> set:
        return {value for value in plain(values - {unset, empty}) if "\\x" not in value}
    return picked


def _deriver(kind: str, names: tuple[str, ...], containers: tuple[bool, ...],
             header: zeek.Header) -> Callable[[object], Derived]:
    """Return how a cell (or the tuple of cells of a group) becomes what a record adds."""
    unset, empty, single = header.unset, header.empty, len(names) == 1
    snapshot = copy.copy(header)
    role = None
    if single and not containers[0]:
        role = zeek_fields.ROLES.get((kind, names[0])) or zeek_fields.ROLES.get(("", names[0]))

    def derive(value: object) -> Derived:
        if role is not None and value != unset and value != empty and "\\x" not in value:  # type: ignore[operator]
            found = quick.derive(role, value)
            if found is not None:
                return found
        cells = (value,) if single else value
        found = {name: _cell(cell, container, snapshot)
                 for name, container, cell in zip(names, containers, cells)  # type: ignore[call-overload]
                 if cell != unset}
        record = Record()
        zeek_fields.fill(record, found, kind)
        return pairs_of(record), tuple(record.notes)
    return derive


def _cell(cell: str, container: bool, header: zeek.Header) -> object:
    """Read a cell that is set, as ``zeek`` reads it."""
    if cell == header.empty:
        return [] if container else ""
    if container:
        return [zeek.unescape(item) for item in cell.split(header.set_separator)]
    return zeek.unescape(cell)


def batches(blocks: Iterable[Block], ctx: Context, fields: Fields, size: int) -> Iterator[Batch]:
    """Yield the batches of a Zeek log, of about ``size`` records each."""
    scanner = _Scanner(ctx, fields)
    for block in blocks:
        scanner.block(block)
        if scanner.collector.size >= size:
            batch = scanner.next_batch()
            if batch is not None:
                yield batch
    batch = scanner.next_batch()
    if batch is not None:
        yield batch


class _Scanner:
    """The state of one Zeek source: its header, the table's layout, the batch being filled."""

    def __init__(self, ctx: Context, fields: Fields) -> None:
        self.ctx = ctx
        self.fields = fields
        self.header = zeek.Header()
        self.version = 0  # header lines taken in so far
        self.layout: _Layout | None = None
        self.layout_version = -1
        self.quiet = Context(ctx.name, ReadReport(), ctx.mapping, ctx.now)
        self.starts: list[int] = []  # line numbers from which each header held, in this batch
        self.headers: list[zeek.Header] = []
        self.held_version = -1
        self.collector = self._collector()

    def _collector(self) -> Collector:
        starts, headers, quiet = self.starts, self.headers, self.quiet

        def resolve(text: object, number: int) -> Event | None:
            header = headers[bisect_right(starts, number) - 1]
            return zeek.event(Line(number, text), header, quiet)  # type: ignore[arg-type]

        return Collector(self.ctx, self.fields, resolve)

    def next_batch(self) -> Batch | None:
        """Finish the batch being filled and start another."""
        batch = self.collector.finish()
        self.starts, self.headers, self.held_version = [], [], -1
        self.collector = self._collector()
        return batch

    def block(self, block: Block) -> None:
        """Read one block: fast where it can be, else line by line."""
        data, first = block.data, block.first
        text = None
        if not (b"\x00" in data or b"\r" in data or len(data) > MAX_LINE
                or (first == 1 and data.startswith(_BOM))):
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                pass
        if text is None:
            for offset, raw in enumerate(data.split(b"\n")):
                if offset or not block.dropped_first:
                    line = decode(raw, first + offset, self.ctx.name, self.ctx.report)
                    if line is not None:
                        self._slow(line)
            return
        lines = text.split("\n")
        if block.dropped_first:
            del lines[0]
            first += 1
        if not text.startswith("#") and "\n#" not in text:
            self._run(lines, first)
            return
        start = 0
        for offset, line in enumerate(lines):
            if line.startswith("#"):
                self._run(lines[start:offset], first + start)
                self._slow(Line(first + offset, line))
                start = offset + 1
        self._run(lines[start:], first + start)

    def _slow(self, line: Line) -> None:
        """Read one line as ``read`` does (a header line changes the table's layout)."""
        collector = self.collector
        found = zeek.event(line, self.header, collector.slow)
        collector.drain(line.number)
        if line.text.startswith("#"):
            self.version += 1
        if found is not None:
            self._held(line.number)
            collector.event(found, line.number)

    def _held(self, number: int) -> None:
        """Remember that the current header holds from a line on, for reading it again."""
        if self.held_version != self.version:
            self.starts.append(number)
            self.headers.append(copy.copy(self.header))  # header lines change the live one
            self.held_version = self.version

    def _run(self, lines: list[str], first: int) -> None:
        """Read consecutive records of one table."""
        if not lines:
            return
        header = self.header
        if header.fields is None or not header.path or "" in lines \
                or any(char.isspace() or char in "{#" for char in set(map(itemgetter(0), lines))):
            for offset, line in enumerate(lines):
                self._slow(Line(first + offset, line))
            return
        if self.layout is None or self.layout_version != self.version:
            self.layout = _Layout(copy.copy(header), self.fields)
            self.layout_version = self.version
        if not self.layout.usable:
            for offset, line in enumerate(lines):
                self._slow(Line(first + offset, line))
            return
        separators = len(header.fields) - 1
        counts = list(map(str.count, lines, repeat(header.separator)))
        if counts.count(separators) == len(counts):
            self._fast(lines, range(first, first + len(lines)))
            return
        good: list[int] = []
        for offset, count in enumerate(counts):
            if count == separators:
                good.append(offset)
                continue
            if good:
                self._fast([lines[i] for i in good], [first + i for i in good])
                good = []
            self._slow(Line(first + offset, lines[offset]))
        if good:
            self._fast([lines[i] for i in good], [first + i for i in good])

    def _fast(self, lines: list[str], numbers: Iterable[int]) -> None:
        """Take records of the right shape: their time notes, and a column per group."""
        layout, collector = self.layout, self.collector
        assert layout is not None
        numbers = list(numbers)
        self._held(numbers[0])
        separator = self.header.separator
        rows = [line.split(separator, layout.cut) for line in lines]
        base = collector.slots(lines, numbers)
        if layout.time is not None:
            for position in layout.times_noted(list(map(itemgetter(layout.time), rows))):
                collector.note(base + position, BAD_TIME)
        for indexes, field in layout.groups:
            if len(indexes) == 1:
                values = list(map(itemgetter(indexes[0]), rows))
            else:
                values = list(map(itemgetter(*indexes), rows))
            collector.column(field, values, base, checked=False)
