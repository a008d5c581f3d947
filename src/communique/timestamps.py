"""RFC 3339 timestamps as STIX 2.1 (§3.2) and TAXII 2.1 (§2) write them.

Inside Communiqué an instant is an ``int`` of microseconds since the Unix epoch,
UTC: it sorts, compares and indexes cheaply in both databases. Finer precision
than a microsecond is accepted on input and truncated.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone

_PATTERN = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?Z\Z", re.ASCII
)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ONE_US = timedelta(microseconds=1)


def parse(text: object) -> int:
    """Return microseconds since the epoch for a STIX/TAXII timestamp, or raise ValueError."""
    if not isinstance(text, str):
        raise ValueError("a timestamp must be a string")
    match = _PATTERN.match(text)
    if match is None:
        raise ValueError(f"{text[:64]!r} is not an RFC 3339 UTC timestamp (YYYY-MM-DDTHH:MM:SS[.s]Z)")
    year, month, day, hour, minute, second, fraction = match.groups()
    try:
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute),
                          int(second), int((fraction or "0").ljust(6, "0")[:6]),
                          tzinfo=timezone.utc)
    except ValueError:
        raise ValueError(f"{text!r} is not a real date and time") from None
    return (moment - _EPOCH) // _ONE_US


def format_us(micros: int) -> str:
    """Format microseconds since the epoch as a TAXII timestamp with microsecond precision."""
    moment = _EPOCH + timedelta(microseconds=micros)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def format_ms(micros: int) -> str:
    """Format microseconds since the epoch as a STIX timestamp with millisecond precision."""
    moment = _EPOCH + timedelta(microseconds=micros)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def now_us() -> int:
    """Return the current time in microseconds since the epoch."""
    return time.time_ns() // 1000
