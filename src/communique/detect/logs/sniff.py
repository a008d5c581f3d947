"""Tell a log's format from its first lines.

The first line that says something decides (blank lines, ``#`` comments and
lines that are not valid JSON are passed over, up to ``PEEK`` lines):

- ``#separator``, ``#fields`` or ``#path``: Zeek TSV
- ``#Fields:``, ``#Software:``, ``#Version:``, ``#Date:``, ``#Remark:``: W3C (read as csv)
- ``CEF:<n>|`` anywhere in the line: CEF
- a JSON object: EVE when it has ``event_type``; Zeek when it has ``id.orig_h``
  (flat or nested), ``_path``, or both ``ts`` and ``uid``; otherwise jsonl
- a row of column names, at least one of them known: CSV
- anything else: syslog
"""

from __future__ import annotations

import re
from itertools import chain
from typing import Any, Iterator, Mapping

import orjson

from communique.detect.logs import columns, delimited
from communique.detect.logs.sources import Line

PEEK = 20
_CEF = re.compile(r"CEF: ?\d+\|")
_ZEEK_DIRECTIVES = ("#separator", "#fields", "#path", "#set_separator", "#unset_field", "#empty_field")
_W3C_DIRECTIVES = ("#fields:", "#software:", "#version:", "#date:", "#remark:")


def sniff(lines: Iterator[Line], mapping: Mapping[str, str] | None) -> tuple[str | None, Iterator[Line]]:
    """Return the format of a source (None when it has no lines) and all its lines again."""
    peeked: list[Line] = []
    found: str | None = None
    for line in lines:
        peeked.append(line)
        found = guess(line.text, mapping)
        if found is not None or len(peeked) >= PEEK:
            break
    if found is None and peeked:
        found = "syslog"
    return found, chain(peeked, lines)


def guess(text: str, mapping: Mapping[str, str] | None) -> str | None:
    """Name the format one line shows, or None when this line does not tell."""
    stripped = text.strip()
    if not stripped:
        return None
    if stripped.startswith("#"):
        lowered = stripped.lower()
        if lowered.startswith(_W3C_DIRECTIVES):
            return "csv"
        if stripped.startswith(_ZEEK_DIRECTIVES):
            return "zeek"
        return None
    if _CEF.search(stripped):
        return "cef"
    if stripped.startswith("{"):
        return _json_kind(stripped)
    if columns.is_header(delimited.cells(stripped, delimited.delimiter_of(stripped)) or [], mapping):
        return "csv"
    return "syslog"


def _json_kind(text: str) -> str | None:
    """Tell EVE, Zeek JSON and other JSON lines apart (None for a line that is not JSON)."""
    try:
        document: Any = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(document, dict):
        return None
    if "event_type" in document:
        return "eve"
    nested = document.get("id")
    if ("id.orig_h" in document or "_path" in document or {"ts", "uid"} <= document.keys()
            or (isinstance(nested, dict) and "orig_h" in nested)):
        return "zeek"
    return "jsonl"
