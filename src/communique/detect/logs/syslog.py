"""Syslog lines (RFC 3164 and RFC 5424, and the ISO-dated form of rsyslog files).

The header gives the time: RFC 5424's ISO 8601 timestamp (``-`` is none), an
ISO 8601 time at the start of the line, or RFC 3164's ``Mmm dd hh:mm:ss``, whose
missing year is the reading year (last year when that would put the line more
than a week in the future) and whose missing zone is taken as UTC. The sending
host in the header is the log's source, not an observable, and is left out.
Everything after it (tag, structured data, message) is searched for URLs,
addresses, host names and mail addresses by ``extract.scan``. A line without a
recognised header is searched whole, and has no time.

Skipped: "no observables" (most lines of most logs).
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import partial
from typing import Callable, Iterable, Iterator, NamedTuple

from communique.detect.events import Event
from communique.detect.logs import extract, times
from communique.detect.logs.record import Context, Record
from communique.detect.logs.sources import Line

# <PRI>VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [STRUCTURED-DATA] MSG
_RFC5424 = re.compile(r"<\d{1,3}>\d{1,2} (\S+) \S+ \S+ \S+ \S+(?: (.*))?\Z", re.DOTALL)
# [<PRI>]YYYY-MM-DDThh:mm:ss[.f][zone] HOSTNAME MSG
_ISO = re.compile(r"(?:<\d{1,3}>)?(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\S*)(?: (\S+)(?: (.*))?)?\Z", re.DOTALL)
# [<PRI>]Mmm dd [yyyy] hh:mm:ss[.f] HOSTNAME MSG
_RFC3164 = re.compile(r"(?:<\d{1,3}>)?([A-Z][a-z]{2} +\d{1,2}(?: \d{4})? \d\d:\d\d:\d\d(?:\.\d{1,9})?)"
                      r"(?: (\S+)(?: (.*))?)?\Z", re.DOTALL)


class Header(NamedTuple):
    """A syslog header: the time as written, how to read it, and the rest of the line."""

    time: str | None
    read: Callable[[str | int | float], int | None]
    message: str


def header(text: str, *, now: datetime | None) -> Header | None:
    """Split a syslog header from its message, or None when the line has no known header."""
    match = _RFC5424.match(text)
    if match:
        return Header(match.group(1), times.iso8601, (match.group(2) or "").lstrip("\ufeff"))
    match = _ISO.match(text)
    if match:
        return Header(match.group(1), times.iso8601, match.group(3) or "")
    match = _RFC3164.match(text)
    if match:
        return Header(match.group(1), partial(_month_first, now=now), match.group(3) or "")
    return None


def events(lines: Iterable[Line], ctx: Context) -> Iterator[Event]:
    """Yield the events of a syslog file: the lines that name an observable."""
    for line in lines:
        if not line.text.strip():
            continue
        record = Record()
        found = header(line.text, now=ctx.now)
        if found is None:
            extract.scan(line.text, record)
        else:
            record.set_time(found.time, found.read)
            extract.scan(found.message, record)
        event = ctx.emit(record, line)
        if event is not None:
            yield event


def _month_first(value: str | int | float, *, now: datetime | None) -> int | None:
    """Read an RFC 3164 time."""
    return times.month_first(value, now=now) if isinstance(value, str) else None
