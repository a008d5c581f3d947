"""ArcSight Common Event Format: ``CEF:0|vendor|product|version|id|name|severity|extension``.

The line may start with a syslog header, which gives the time when the
extension has none. In the header ``\\|`` and ``\\\\`` are escapes; the extension
is ``key=value`` pairs separated by spaces, a value running to the next key, with
``\\=``, ``\\\\``, ``\\n`` and ``\\r`` escaped. Keys, short or long form:

- src/sourceAddress, c6a2 (source IPv6); dst/destinationAddress, c6a3: both ends
- spt/sourcePort, dpt/destinationPort; proto/transportProtocol
- request/requestUrl: the URL (and its host); dhost/destinationHostName and
  shost/sourceHostName: a name, or an address
- fileHash (its kind by length), fname/fileName; suser/sourceUserName and
  duser/destinationUserName: user accounts
- msg/message: searched like a syslog message (``extract.scan``)
- rt/receiptTime, else end/endTime, else start/startTime: the time (epoch
  milliseconds, or ``Mmm dd [yyyy] hh:mm:ss[.SSS]``)

Skipped, by reason: "no CEF header", "CEF header incomplete", "no observables".
"""

from __future__ import annotations

import re
from typing import Callable, Iterable, Iterator

from communique.detect.events import Event
from communique.detect.logs import extract, syslog, times
from communique.detect.logs.record import Context, Record
from communique.detect.logs.sources import Line

NO_HEADER = "no CEF header"
INCOMPLETE = "CEF header incomplete"

_START = re.compile(r"CEF: ?\d+\|")
_HEADER_FIELD = re.compile(r"((?:\\.|[^\\|])*)\|")
_KEY = re.compile(r"(?:^|(?<=\s))([A-Za-z0-9_.\[\]-]+)=")
_ESCAPED = re.compile(r"\\(.)", re.DOTALL)
_UNESCAPE = {"n": "\n", "r": "\r"}
_TIME_KEYS = ("rt", "receiptTime", "end", "endTime", "start", "startTime")


def events(lines: Iterable[Line], ctx: Context) -> Iterator[Event]:
    """Yield the events of a CEF log."""
    for line in lines:
        if not line.text.strip():
            continue
        problem, prefix, extension_text = _parts(line.text)
        if problem:
            ctx.skip(problem, line)
            continue
        extension = parse_extension(extension_text)
        record = Record()
        _time(record, prefix, extension, ctx)
        fill(record, extension)
        event = ctx.emit(record, line)
        if event is not None:
            yield event


def _parts(text: str) -> tuple[str, str, str]:
    """Split a line into (problem, text before "CEF:", extension); the problem is "" when none."""
    start = _START.search(text)
    if start is None:
        return NO_HEADER, "", ""
    position = start.end()
    for _ in range(6):  # vendor, product, version, signature id, name, severity
        field = _HEADER_FIELD.match(text, position)
        if field is None:
            return INCOMPLETE, "", ""
        position = field.end()
    return "", text[:start.start()], text[position:]


def parse_extension(text: str) -> dict[str, str]:
    """Split a CEF extension into its keys and unescaped values (the first of a repeated key wins)."""
    keys = list(_KEY.finditer(text))
    pairs: dict[str, str] = {}
    for index, key in enumerate(keys):
        end = keys[index + 1].start() if index + 1 < len(keys) else len(text)
        raw = text[key.end():end].rstrip()
        pairs.setdefault(key.group(1), _ESCAPED.sub(lambda m: _UNESCAPE.get(m.group(1), m.group(1)), raw))
    return pairs


def fill(record: Record, extension: dict[str, str]) -> None:
    """Add the observables of a CEF extension."""
    for key, value in extension.items():
        add = _BY_KEY.get(key)
        if add is not None and value:
            add(record, value)


def _time(record: Record, prefix: str, extension: dict[str, str], ctx: Context) -> None:
    """Set the time from the extension, else from a syslog header before "CEF:"."""
    for key in _TIME_KEYS:
        if extension.get(key):
            record.set_time(extension[key], times.any_value)
            return
    found = syslog.header(prefix.strip(), now=ctx.now)
    if found is not None:
        record.set_time(found.time, found.read)


def _source(record: Record, value: str) -> None:
    record.add_endpoint("src", value)


def _destination(record: Record, value: str) -> None:
    record.add_endpoint("dst", value)


def _source_port(record: Record, value: str) -> None:
    record.add_port("src", value)


def _destination_port(record: Record, value: str) -> None:
    record.add_port("dst", value)


def _protocol(record: Record, value: str) -> None:
    record.add("network-traffic:protocols[*]", value)


def _file_name(record: Record, value: str) -> None:
    record.add("file:name", value)


def _user(record: Record, value: str) -> None:
    record.add("user-account:user_id", value)


def _message(record: Record, value: str) -> None:
    extract.scan(value, record)


_BY_KEY: dict[str, Callable[[Record, str], None]] = {
    "src": _source, "sourceAddress": _source, "c6a2": _source,
    "dst": _destination, "destinationAddress": _destination, "c6a3": _destination,
    "spt": _source_port, "sourcePort": _source_port,
    "dpt": _destination_port, "destinationPort": _destination_port,
    "proto": _protocol, "transportProtocol": _protocol,
    "request": Record.add_url, "requestUrl": Record.add_url,
    "dhost": Record.add_host, "destinationHostName": Record.add_host,
    "shost": Record.add_host, "sourceHostName": Record.add_host,
    "fileHash": Record.add_hash,
    "fname": _file_name, "fileName": _file_name,
    "suser": _user, "sourceUserName": _user, "duser": _user, "destinationUserName": _user,
    "msg": _message, "message": _message,
}
