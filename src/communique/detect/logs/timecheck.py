"""Tell, for many logged times at once, which ones a record would note as unreadable.

A record keeps its time but notes one it cannot read (``record.BAD_TIME``). Reading
every time of a log one by one costs more than the rest of a fast scan, and only
the note matters there (the time itself is read again for the few records that
match). So the times of a block are checked together first, at C speed, against
the one layout the format writes (Suricata: ``2024-03-04T10:00:00.123456+0100``;
Zeek: ``1709546400.123456``): their shape, and each field's characters position by
position, so that every combination of them is a valid time inside the years
``times`` accepts. Anything else is read one by one, exactly.
"""

from __future__ import annotations

from typing import Callable, Sequence

from communique.detect.logs.record import Record

_SHAPE = str.maketrans("0123456789-", "9" * 10 + "+")
_ISO = "9999+99+99T99:99:99.999999+9999"  # '-' read as '+', digits as '9'
_EPOCH = "9999999999.999999"
_MONTH_DAYS = {"01": 31, "02": 28, "03": 31, "04": 30, "05": 31, "06": 30, "07": 31,
               "08": 31, "09": 30, "10": 31, "11": 30, "12": 31}  # 29 February: read one by one
_UPTO_5 = frozenset("012345")


def unreadable(value: object, read: Callable[[str | int | float], int | None]) -> bool:
    """Tell whether ``Record.set_time`` would note a logged time as unreadable."""
    record = Record()
    record.set_time(value, read)
    return bool(record.notes)


def iso8601_valid(values: Sequence[object]) -> bool:
    """Tell whether every value is a time in Suricata's layout that ``times.iso8601`` reads."""
    joined = _joined(values, len(_ISO))
    if joined is None:
        return False

    def at(*positions: int) -> set[str]:
        found = {""}
        for position in positions:
            found = {head + tail for head in found for tail in set(joined[position::len(_ISO)])}
        return found

    if at(0, 1) != {"20"} or not at(2) <= set("012345678"):  # 2000-2089: in range with any offset
        return False
    months = at(5, 6)
    if not months <= _MONTH_DAYS.keys():
        return False
    last = f"{min(_MONTH_DAYS[month] for month in months):02d}"
    return (all("01" <= day <= last for day in at(8, 9)) and max(at(11, 12)) <= "23"
            and at(14) <= _UPTO_5 and at(17) <= _UPTO_5 and max(at(27, 28)) <= "23"
            and at(29) <= _UPTO_5)


def epoch_valid(values: Sequence[object]) -> bool:
    """Tell whether every value is ``1xxxxxxxxx.xxxxxx`` (epoch seconds of 2001 to 2033)."""
    joined = _joined(values, len(_EPOCH))
    return joined is not None and set(joined[::len(_EPOCH)]) == {"1"}


def _joined(values: Sequence[object], width: int) -> str | None:
    """Return the values joined, when all are strings of the layout's width and shape."""
    if not values:
        return None
    try:
        joined = "".join(values)  # type: ignore[arg-type]
    except TypeError:
        return None
    if len(joined) != width * len(values) or set(map(len, values)) != {width}:  # type: ignore[arg-type]
        return None
    layout = _ISO if width == len(_ISO) else _EPOCH
    return joined if joined.translate(_SHAPE) == layout * len(values) else None
