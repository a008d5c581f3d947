"""CSV exports with a header row (web proxies, DNS servers, SIEM searches).

The delimiter is the one of ``,`` ``;`` tab and ``|`` that the header line uses
most. Columns are recognised by name (see ``columns``). A file whose first line
is a ``#`` directive is a W3C extended log, read by ``w3c``. Each line is one
row: a quoted field holding a line break is not supported (its pieces are
counted as "wrong number of columns"). A repeated header row (exports joined
together) is passed over.

Skipped, by reason: "CSV header names no known column" (once, for the whole
source), "wrong number of columns", "CSV line unreadable".
"""

from __future__ import annotations

from itertools import chain
from typing import Iterable, Iterator

from communique.detect.events import Event
from communique.detect.logs import columns, w3c
from communique.detect.logs.record import Context
from communique.detect.logs.sources import Line
from communique.detect.logs.w3c import cells

NO_KNOWN_COLUMN = "CSV header names no known column"
DELIMITERS = (",", ";", "\t", "|")


def events(lines: Iterable[Line], ctx: Context) -> Iterator[Event]:
    """Yield the events of a CSV export (or of a W3C log, which starts with a directive)."""
    rest = iter(lines)
    first = next((line for line in rest if line.text.strip()), None)
    if first is None:
        return
    if first.text.startswith("#"):
        yield from w3c.events(chain([first], rest), ctx)
        return
    delimiter = delimiter_of(first.text)
    header = cells(first.text, delimiter) or []
    table = columns.columns(header, ctx.mapping)
    if not table.known:
        ctx.skip(NO_KNOWN_COLUMN, first)
        return
    for line in rest:
        if not line.text.strip():
            continue
        row = cells(line.text, delimiter)
        if row == header:
            continue
        event = w3c.row_event(ctx, table, row, line)
        if event is not None:
            yield event


def delimiter_of(header: str) -> str:
    """Choose the delimiter a header line uses most (a comma when it uses none)."""
    return max(DELIMITERS, key=header.count) if any(d in header for d in DELIMITERS) else ","

