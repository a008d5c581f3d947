"""Read the time of a log record into integer microseconds since the Unix epoch (UTC).

Every reader returns None for a time it cannot read or that is absurd: before
1980 or from 2100 on (a clock that was never set, a counter taken for a date).
Times written without a zone (RFC 3164 syslog, W3C logs, naive ISO 8601) are
taken as UTC, which is what W3C logs and most collectors write.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

MIN_US = 315_532_800_000_000  # 1980-01-01T00:00:00Z
MAX_US = 4_102_444_800_000_000  # 2100-01-01T00:00:00Z
MONTHS = {name: number for number, name in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ONE_US = timedelta(microseconds=1)
_DECIMAL = re.compile(r"(\d{1,20})(?:\.(\d{1,18}))?\Z")
_CLOCK = re.compile(r"(\d{1,2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?\Z")
# "05/Jan/2024:10:00:00 +0000", as web servers write it.
_COMMON_LOG = re.compile(r"(\d{1,2})/([A-Za-z]{3})/(\d{4}):(\d{2}):(\d{2}):(\d{2})(?:\s*([+-]\d{4}))?\Z")
# "Jan 05 2024 10:00:00.123 UTC" or "Jan  5 10:00:00", as CEF and syslog write it.
_MONTH_FIRST = re.compile(r"([A-Za-z]{3})\s+(\d{1,2})(?:\s+(\d{4}))?\s+(\d{1,2}:\d{2}:\d{2}(?:[.,]\d{1,9})?)"
                          r"(?:\s+(?:UTC|GMT|Z))?\Z")


def checked(micros: int | None) -> int | None:
    """Return the time if it lies within the plausible range, else None."""
    if micros is None or not MIN_US <= micros < MAX_US:
        return None
    return micros


def epoch_seconds(value: str | int | float) -> int | None:
    """Read epoch seconds, with an optional fraction ("1320279566.452687"), exactly."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return checked(_scaled(value, 1_000_000))
    match = _DECIMAL.match(value.strip())
    if match is None:
        return None
    whole, fraction = match.groups()
    return checked(int(whole) * 1_000_000 + int((fraction or "0")[:6].ljust(6, "0")))


def epoch_any(value: str | int | float) -> int | None:
    """Read an epoch time in seconds, milliseconds, microseconds or nanoseconds, by size."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        if _DECIMAL.match(value.strip()) is None:
            return None
        number = float(value)
        if number < 1e11:
            return epoch_seconds(value)
        value = number
    for factor in (1_000_000, 1_000, 1, 0.001):
        micros = _scaled(value, factor)
        if micros is not None and micros < MAX_US:
            return checked(micros)
    return None


def iso8601(text: str | int | float) -> int | None:
    """Read an ISO 8601 date and time; without an offset it is taken as UTC."""
    if not isinstance(text, str):
        return None
    text = text.strip()
    if len(text) < 10 or len(text) > 40 or not text[:4].isdigit():
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return checked(_micros(moment))


def any_value(value: str | int | float) -> int | None:
    """Read a time written any common way: epoch number, ISO 8601, web-server or syslog style."""
    if not isinstance(value, str):
        return epoch_any(value)
    text = value.strip()
    if _DECIMAL.match(text):
        return epoch_any(text)
    return iso8601(text) or common_log(text) or month_first(text, now=None)


def common_log(text: str) -> int | None:
    """Read a web server's "05/Jan/2024:10:00:00 +0000"."""
    match = _COMMON_LOG.match(text.strip().strip("[]"))
    if match is None:
        return None
    day, month, year, hour, minute, second, offset = match.groups()
    zone = timezone.utc
    if offset:
        sign = -1 if offset[0] == "-" else 1
        zone = timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[3:])))
    return _build(int(year), month, int(day), f"{hour}:{minute}:{second}", zone)


def month_first(text: str, *, now: datetime | None) -> int | None:
    """Read "Jan  5 10:00:00" or "Jan 05 2024 10:00:00.123"; a missing year comes from now."""
    match = _MONTH_FIRST.match(text.strip())
    if match is None:
        return None
    month, day, year, clock = match.groups()
    if year is not None:
        return _build(int(year), month, int(day), clock, timezone.utc)
    now = now or datetime.now(timezone.utc)
    micros = _build(now.year, month, int(day), clock, timezone.utc)
    # A December line read in January belongs to last year.
    if micros is not None and micros > _micros(now) + 7 * 86_400_000_000:
        micros = _build(now.year - 1, month, int(day), clock, timezone.utc)
    return micros


def _build(year: int, month: str, day: int, clock: str, zone: timezone) -> int | None:
    """Assemble a time from parts, or None if a part is out of range."""
    number = MONTHS.get(month.lower())
    match = _CLOCK.match(clock)
    if number is None or match is None:
        return None
    hour, minute, second, fraction = match.groups()
    try:
        moment = datetime(year, number, day, int(hour), int(minute), int(second),
                          int((fraction or "0")[:6].ljust(6, "0")), tzinfo=zone)
    except ValueError:
        return None
    return checked(_micros(moment))


def _micros(moment: datetime) -> int:
    """Count microseconds since the epoch; a naive time is UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return (moment - _EPOCH) // _ONE_US


def _scaled(value: int | float, factor: float) -> int | None:
    """Multiply a number of units into microseconds, or None for inf/nan/huge values."""
    try:
        return round(value * factor)
    except (OverflowError, ValueError):
        return None
