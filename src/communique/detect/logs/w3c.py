"""W3C extended log format, as web proxies and IIS write it.

Directives start with ``#``; ``#Fields:`` names the columns of the lines that
follow (a new one starts a new table), the others (``#Software``, ``#Version``,
``#Date``, ``#Remark``) are passed over. Fields are separated by single spaces
(or tabs, when the ``#Fields`` line uses tabs); a field holding spaces is
quoted; ``-`` means no value; ``date`` and ``time`` are UTC. Columns are
recognised by name (see ``columns``): ``c-ip``, ``s-ip``, ``cs-host``,
``cs-uri-stem``, ``cs-uri-query``, ``cs-uri-scheme``, ``s-port``, ``cs-username`` …

Skipped, by reason: "W3C record before its #Fields header", "wrong number of
columns", "CSV line unreadable".
"""

from __future__ import annotations

import csv
from typing import Iterable, Iterator

from communique.detect.events import Event
from communique.detect.logs import columns
from communique.detect.logs.record import Context, Record
from communique.detect.logs.sources import Line

NO_FIELDS = "W3C record before its #Fields header"
WRONG_COLUMNS = "wrong number of columns"
UNREADABLE = "CSV line unreadable"


def events(lines: Iterable[Line], ctx: Context) -> Iterator[Event]:
    """Yield the events of a W3C extended log."""
    table: columns.Columns | None = None
    delimiter = " "
    for line in lines:
        text = line.text
        if not text.strip():
            continue
        if text.startswith("#"):
            directive, _, value = text[1:].partition(":")
            if directive.strip().lower() == "fields":
                delimiter = "\t" if "\t" in value.strip() else " "
                table = columns.columns(value.split(), ctx.mapping)
            continue
        if table is None:
            ctx.skip(NO_FIELDS, line)
            continue
        event = row_event(ctx, table, cells(text, delimiter), line)
        if event is not None:
            yield event


def row_event(ctx: Context, table: columns.Columns, row: list[str] | None,
              line: Line) -> Event | None:
    """Make the event of one split row (CSV or W3C), or count why it cannot be read."""
    if row is None:
        ctx.skip(UNREADABLE, line)
    elif len(row) != len(table.names):
        ctx.skip(WRONG_COLUMNS, line)
    else:
        record = Record()
        columns.fill(record, table, row)
        return ctx.emit(record, line)
    return None


def cells(text: str, delimiter: str) -> list[str] | None:
    """Split one line into cells (double quotes honoured), or None when csv cannot read it."""
    try:
        return next(csv.reader([text], delimiter=delimiter), [])
    except csv.Error:
        return None
