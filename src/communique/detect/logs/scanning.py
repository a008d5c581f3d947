"""Scan log sources into columnar batches for hunting (``logs.scan``).

A hunt only needs each record's observable values, and the whole record (its time,
its place in the file) for the few records that match. So Suricata EVE and Zeek TSV
logs are read a block of lines at a time into columns (``eve_scan``, ``zeek_scan``);
every other format is read by its own reader and its events put into batches.
Either way a batch's events are the events ``read`` gives, and the report counts
what ``read`` counts.
"""

from __future__ import annotations

from itertools import chain, islice
from typing import Callable, Iterable, Iterator, Mapping

from communique.detect.columns import Batch
from communique.detect.events import Event, ReadReport
from communique.detect.logs import eve_scan, sniff, zeek_scan
from communique.detect.logs.roles import Fields
from communique.detect.logs.record import Context
from communique.detect.logs.sources import Block, Line, decode, lines_of

Reader = Callable[[Iterable[Line], Context], Iterator[Event]]
_FAST = {"eve": eve_scan.batches, "zeek": zeek_scan.batches}


def batches(kind: str, numbered: Iterator[Block], ctx: Context, *, fields: Fields,
            reader: Reader, size: int) -> Iterator[Batch]:
    """Yield the batches of one source read as ``kind``."""
    fast = _FAST.get(kind)
    if fast is not None:
        yield from fast(numbered, ctx, fields, size)
        return
    events = reader(lines_of(numbered, ctx.name, ctx.report), ctx)
    while True:
        chunk = list(islice(events, size))
        if not chunk:
            return
        yield Batch.of(chunk)


def sniffed(numbered: Iterator[Block], name: str,
            mapping: Mapping[str, str] | None) -> tuple[str | None, Iterator[Block]]:
    """Return the format of a source, as ``sniff.sniff`` tells it, and all its blocks again."""
    seen: list[Block] = []
    peeked = 0
    quiet = ReadReport()  # the lines are decoded again, and counted, when they are read
    for block in numbered:
        seen.append(block)
        for offset, raw in enumerate(block.data.split(b"\n")):
            if offset == 0 and block.dropped_first:
                continue
            line = decode(raw, block.first + offset, name, quiet)
            if line is None:
                continue
            peeked += 1
            found = sniff.guess(line.text, mapping)
            if found is not None or peeked >= sniff.PEEK:
                return found or "syslog", chain(seen, numbered)
    return ("syslog" if peeked else None), chain(seen, numbered)
