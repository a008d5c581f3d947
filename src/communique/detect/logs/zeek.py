"""Zeek logs: the TSV form with its ``#`` header lines, and the JSON form (one object a line).

TSV logs describe themselves: ``#separator`` (written escaped, ``\\x09``),
``#set_separator``, ``#empty_field``, ``#unset_field``, ``#path``, ``#fields`` and
``#types``. A new ``#fields`` line (logs joined with ``cat``) starts a new table.
Unset fields are left out, empty ones are empty, set and vector fields are split
on the set separator, and ``\\xNN`` escapes are decoded (the bytes as UTF-8).
What each field means is in ``zeek_fields``.

Skipped, by reason: "Zeek record before its #fields header", "wrong number of
columns", "invalid JSON", "JSON value is not an object".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

from communique.detect.events import Event
from communique.detect.logs import zeek_fields
from communique.detect.logs.jsonobj import flatten, load_object
from communique.detect.logs.record import Context, Record
from communique.detect.logs.sources import Line

NO_HEADER = "Zeek record before its #fields header"
WRONG_COLUMNS = "wrong number of columns"

_ESCAPE = re.compile(r"\\x([0-9A-Fa-f]{2})")
# Container fields of the standard logs, for a log whose #types line is missing.
_CONTAINERS = frozenset((
    "answers", "TTLs", "tx_hosts", "rx_hosts", "conn_uids", "analyzers", "tunnel_parents",
    "rcptto", "to", "cc", "path", "cert_chain_fps", "client_cert_chain_fps", "cert_chain_fuids",
    "client_cert_chain_fuids", "san.dns", "san.ip", "san.email", "san.uri", "orig_fuids",
    "resp_fuids", "orig_filenames", "resp_filenames", "orig_mime_types", "resp_mime_types", "tags",
))


@dataclass
class Header:
    """What a TSV log's header lines have said so far."""

    separator: str = "\t"
    set_separator: str = ","
    empty: str = "(empty)"
    unset: str = "-"
    path: str | None = None
    fields: list[str] | None = None
    containers: frozenset[int] = field(default_factory=frozenset)
    used: tuple[int, ...] = ()  # the columns worth decoding

    def update(self, text: str) -> None:
        """Take in one ``#`` line."""
        if text.startswith("#separator "):
            self.separator = unescape(text[len("#separator "):]) or "\t"
            return
        key, _, value = text[1:].partition(self.separator)
        if key == "set_separator":
            self.set_separator = unescape(value) or ","
        elif key == "empty_field":
            self.empty = value
        elif key == "unset_field":
            self.unset = value
        elif key == "path":
            self.path = value
        elif key == "fields":
            self.fields = value.split(self.separator)
            self.containers = frozenset(i for i, name in enumerate(self.fields) if name in _CONTAINERS)
            self.used = tuple(i for i, name in enumerate(self.fields) if name in zeek_fields.USED)
        elif key == "types":
            self.containers = frozenset(i for i, kind in enumerate(value.split(self.separator))
                                        if kind.startswith(("set[", "vector[", "table[")))


def events(lines: Iterable[Line], ctx: Context) -> Iterator[Event]:
    """Yield the events of a Zeek log, TSV or JSON."""
    header = Header()
    for line in lines:
        found = event(line, header, ctx)
        if found is not None:
            yield found


def event(line: Line, header: Header, ctx: Context) -> Event | None:
    """Return the event of one line, or None (a header line taken in, a blank one, or a skip)."""
    text = line.text
    if not text.strip():
        return None
    if text.startswith("#"):
        header.update(text)
        return None
    if text.lstrip().startswith("{"):
        read = _json_fields(line, ctx)
    else:
        read = _tsv_fields(line, header, ctx)
    if read is None:
        return None
    fields, kind = read
    record = Record()
    zeek_fields.fill(record, fields, kind)
    return ctx.emit(record, line)


def _tsv_fields(line: Line, header: Header, ctx: Context) -> tuple[dict[str, Any], str] | None:
    """Read a TSV line into its named fields, or count it as skipped."""
    if header.fields is None:
        ctx.skip(NO_HEADER, line)
        return None
    cells = line.text.split(header.separator)
    if len(cells) != len(header.fields):
        ctx.skip(WRONG_COLUMNS, line)
        return None
    fields: dict[str, Any] = {}
    for index in header.used:
        name, cell = header.fields[index], cells[index]
        if cell == header.unset:
            continue
        if cell == header.empty:
            fields[name] = [] if index in header.containers else ""
        elif index in header.containers:
            fields[name] = [unescape(item) for item in cell.split(header.set_separator)]
        else:
            fields[name] = unescape(cell)
    return fields, zeek_fields.kind_of(fields, header.path)


def _json_fields(line: Line, ctx: Context) -> tuple[dict[str, Any], str] | None:
    """Read a JSON line into flat fields (Zeek writes "id.orig_h"; some shippers nest)."""
    document = load_object(line, ctx)
    if document is None:
        return None
    fields = {name: _unescape_value(value) for name, value in flatten(document).items()}
    path = fields.get("_path")
    return fields, zeek_fields.kind_of(fields, path if isinstance(path, str) else None)


def unescape(text: str) -> str:
    """Decode Zeek's ``\\xNN`` escapes; the bytes they stand for are read as UTF-8."""
    if "\\x" not in text:
        return text
    data = bytearray()
    for index, part in enumerate(_ESCAPE.split(text)):
        data += bytes((int(part, 16),)) if index % 2 else part.encode("utf-8")
    return data.decode("utf-8", "replace")


def _unescape_value(value: Any) -> Any:
    """Decode escapes in a JSON string or list of strings (Zeek escapes bytes that are not UTF-8)."""
    if isinstance(value, str):
        return unescape(value)
    if isinstance(value, list):
        return [unescape(item) if isinstance(item, str) else item for item in value]
    return value
