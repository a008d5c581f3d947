"""Collect the observables of one log record, and turn them into an ``Event``.

Readers fill a ``Record`` through its ``add_*`` methods, which put each value
under the right STIX path (an IP literal under ``ipv4-addr``/``ipv6-addr``,
never under ``domain-name``) and keep it as logged. A field that cannot be read
(a port that is not a number, a time that is absurd) is left out and *noted*;
``Context.emit`` counts each note in the report under a reason that says
"record kept …", so the report tells defects in records that were still read
apart from records that were skipped. A record with no observable at all is
skipped as "no observables".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Mapping, Protocol

from communique.detect.events import Event, ReadReport
from communique.detect.logs import observables
from communique.detect.logs.sources import Line

BAD_PORT = "port is not a number from 0 to 65535; record kept without it"
BAD_TIME = "time unreadable or out of range; record kept without time"
BAD_ADDRESS = "address is neither an IP nor a host name; record kept without it"
BAD_HASH = "hash of unknown length or not hexadecimal; record kept without it"
REPLACED = "invalid UTF-8; record kept with replacement characters"
NOTHING = "no observables"


class Adder(Protocol):
    """What readers add observables to: a ``Record``, or a column collector standing in for one."""

    def add(self, path: str, value: object) -> None: ...
    def add_ip(self, text: object) -> bool: ...
    def add_host(self, text: object) -> None: ...
    def add_url(self, text: object) -> None: ...
    def add_hash(self, text: object, algorithm: str | None = None, *, kind: str = "file") -> None: ...
    def add_email(self, text: object, path: str = observables.EMAIL) -> None: ...


class Record:
    """The values of one record being read, by STIX path, with notes on fields left out."""

    __slots__ = ("values", "notes", "time_us")

    def __init__(self) -> None:
        self.values: dict[str, list[str | int]] = {}
        self.notes: list[str] = []
        self.time_us: int | None = None

    def add(self, path: str, value: object) -> None:
        """Add a string or integer under a path as logged; empty values, repeats and other types are ignored."""
        if not isinstance(value, (str, int)) or isinstance(value, bool) or value == "":
            return
        if isinstance(value, int) and path not in _INTEGER_PATHS:
            value = str(value)
        seen = self.values.setdefault(path, [])
        if value not in seen:
            seen.append(value)

    def note(self, reason: str) -> None:
        """Remember that a field of this record was left out, and why."""
        if reason not in self.notes:
            self.notes.append(reason)

    def add_ip(self, text: object) -> bool:
        """Add an IP literal under the path of its version; tell whether it was one."""
        path = observables.ip_path(text) if isinstance(text, str) else None
        if path is not None:
            self.add(path, text)
        return path is not None

    def add_host(self, text: object) -> None:
        """Add a host as logged: an IP literal as an address, a name as a domain, else note it."""
        if _absent(text):
            return
        if not isinstance(text, str):
            self.note(BAD_ADDRESS)
            return
        host = observables.split_host(text)
        if self.add_ip(host):
            return
        if observables.is_hostname(host):
            self.add(observables.DOMAIN, host)
        else:
            self.note(BAD_ADDRESS)

    def add_endpoint(self, side: str, text: object) -> None:
        """Add one end of a connection ("src" or "dst"): its address and the traffic's ref."""
        if _absent(text):
            return
        if not isinstance(text, str):
            self.note(BAD_ADDRESS)
            return
        host = observables.split_host(text)
        path = observables.ip_path(host)
        if path is None and not observables.is_hostname(host):
            self.note(BAD_ADDRESS)
            return
        self.add(path or observables.DOMAIN, host)
        self.add(f"network-traffic:{side}_ref.value", host)

    def add_port(self, side: str, value: object) -> None:
        """Add a port ("src" or "dst") as an integer; note it when it is not one."""
        if _absent(value):
            return
        number = _port(value)
        if number is None:
            self.note(BAD_PORT)
        else:
            self.add(f"network-traffic:{side}_port", number)

    def add_url(self, text: object) -> None:
        """Add a URL as logged, and the host of an absolute URL."""
        if _absent(text) or not isinstance(text, str):
            return
        self.add(observables.URL, text)
        host = observables.url_host(text)
        if host:
            self.add_host(host)

    def add_hash(self, text: object, algorithm: str | None = None, *, kind: str = "file") -> None:
        """Add a hash of a file or certificate; without an algorithm, guess it from the length."""
        if _absent(text):
            return
        if not isinstance(text, str):
            self.note(BAD_HASH)
            return
        algorithm = algorithm or observables.hash_algorithm(text)
        if algorithm is None:
            self.note(BAD_HASH)
        else:
            self.add(f"{kind}:hashes.'{algorithm}'", text)

    def add_email(self, text: object, path: str = observables.EMAIL) -> None:
        """Add the address in a mail header or envelope value under a path."""
        if _absent(text) or not isinstance(text, str):
            return
        address = observables.email_address(text)
        if address:
            self.add(path, address)

    def add_mapped(self, path: str, value: object) -> None:
        """Add a value under a path the caller chose, checked the way that path needs."""
        if value is None or isinstance(value, (bool, dict, list)):
            return
        text = value if isinstance(value, str) else str(value)
        if path in (observables.IPV4, observables.IPV6):
            if not self.add_ip(observables.split_host(text)):
                self.note(BAD_ADDRESS)
        elif path in _ENDPOINT_SIDES:
            self.add_endpoint(_ENDPOINT_SIDES[path], text)
        elif path in _PORT_SIDES:
            self.add_port(_PORT_SIDES[path], value if isinstance(value, int) else text)
        elif path == observables.DOMAIN:
            self.add_host(text)
        elif path == observables.URL:
            self.add_url(text)
        elif path == "autonomous-system:number":
            number = _as_number(value)
            if number is not None:
                self.add(path, number)
        else:
            self.add(path, text)

    def set_time(self, raw: object, read: Callable[[str | int | float], int | None]) -> None:
        """Set the record's time from a logged value, noting one that cannot be read."""
        if _absent(raw):
            return
        readable = isinstance(raw, (str, int, float)) and not isinstance(raw, bool)
        micros = read(raw) if readable else None
        if micros is None:
            self.note(BAD_TIME)
        self.time_us = micros


@dataclass(frozen=True, slots=True)
class Context:
    """One source being read: its name for reports, the report, and the caller's options."""

    name: str
    report: ReadReport
    mapping: Mapping[str, str] | None = None
    now: datetime | None = None  # the reading time, for syslog dates without a year

    def where(self, line: Line) -> str:
        """Name a line in reports, as "file:line"."""
        return f"{self.name}:{line.number}"

    def skip(self, reason: str, line: Line) -> None:
        """Count a line that could not be read as a record."""
        self.report.skip(reason, self.where(line))

    def emit(self, record: Record, line: Line) -> Event | None:
        """Turn a filled record into an event and count it, or skip it when it holds nothing."""
        where = self.where(line)
        if not record.values:
            self.report.skip(NOTHING, where)
            return None
        for reason in record.notes:
            self.report.skip(reason, where)
        if line.replaced:
            self.report.skip(REPLACED, where)
        self.report.events += 1
        values = {path: tuple(seen) for path, seen in record.values.items()}
        return Event(record.time_us, values, where)


def _absent(value: object) -> bool:
    """Tell whether a logged value stands for nothing: missing, empty, or "-"."""
    return value is None or value == "" or value == "-"


def _port(value: object) -> int | None:
    """Read a port number, or None when it is not an integer from 0 to 65535."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = value.strip()
        if not (value.isascii() and value.isdigit()) or len(value) > 5:
            return None
        value = int(value)
    if isinstance(value, int) and 0 <= value <= 65535:
        return value
    return None


def _as_number(value: object) -> int | None:
    """Read an AS number ("AS64496" or 64496), or None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if value >= 0 else None
    text = str(value).strip().upper().removeprefix("AS")
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 10 else None


_ENDPOINT_SIDES = {"network-traffic:src_ref.value": "src", "network-traffic:dst_ref.value": "dst"}
_PORT_SIDES = {"network-traffic:src_port": "src", "network-traffic:dst_port": "dst"}
_INTEGER_PATHS = frozenset(("network-traffic:src_port", "network-traffic:dst_port", "autonomous-system:number"))
