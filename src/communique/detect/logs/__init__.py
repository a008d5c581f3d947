"""Read members' own logs into ``Event`` values, for hunting shared indicators.

``read`` takes files (plain or gzip, told by magic bytes) or ``-`` for standard
input, and yields one event per record as it reads: nothing is loaded whole, so
logs of many gigabytes stream through. The formats, one module each:

=========  ==================================================================
auto       sniffed per source from its first lines (``sniff``)
zeek       Zeek TSV logs with ``#`` headers, and Zeek JSON logs (``zeek``)
eve        Suricata EVE JSON (``eve``)
csv        proxy and DNS CSV exports with a header row, and W3C extended logs
           with ``#Fields:`` (``delimited``, ``w3c``, ``columns``)
syslog     RFC 3164 and RFC 5424 lines, observables found in the message (``syslog``)
cef        ArcSight CEF, alone or after a syslog header (``cef``)
jsonl      JSON lines through a ``mapping`` {field path: STIX path} (``jsonl``)
=========  ==================================================================

A ``mapping`` also names CSV and W3C columns the readers do not know by name.

``scan`` reads the same sources into columnar batches for hunting (``scanning``,
``eve_scan``, ``zeek_scan``): the same events and the same report, with Suricata EVE
and Zeek TSV logs read several times faster.

Bad input is never an exception: what cannot be read is counted in the
``ReadReport`` by reason, with the first place it happened, and reading goes on.
Reasons that say "record kept …" count a field left out of a record that was
still read (see ``record``). Mistakes of the caller (an unknown format, a
mapping to a path that is not in ``PATHS``, jsonl without a mapping) raise
``ValueError`` when ``read`` is called. A JSON lines source found by ``auto``
while no mapping was given is counted once under ``NEED_MAPPING`` and passed over.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping

from communique.detect.columns import Batch
from communique.detect.events import PATHS, Event, ReadReport
from communique.detect.logs import cef, delimited, eve, jsonl, scanning, sniff, syslog, zeek
from communique.detect.logs.record import Context
from communique.detect.logs.roles import Fields
from communique.detect.logs.sources import Line, blocks, lines, source_name

FORMATS = ("auto", "jsonl", "csv", "zeek", "syslog", "cef", "eve")
NEED_MAPPING = "JSON lines need a mapping (format jsonl) to be read"

_READERS: dict[str, Callable[[Iterable[Line], Context], Iterator[Event]]] = {
    "jsonl": jsonl.events, "csv": delimited.events, "zeek": zeek.events,
    "syslog": syslog.events, "cef": cef.events, "eve": eve.events,
}


def read(sources: Iterable[str | Path] | str | Path, *, format: str = "auto",
         mapping: Mapping[str, str] | None = None, report: ReadReport) -> Iterator[Event]:
    """Yield the events of log sources one by one, counting what cannot be read in ``report``."""
    return _read_all(_checked(sources, format, mapping), format, mapping, report)


def scan(sources: Iterable[str | Path] | str | Path, *, format: str = "auto",
         mapping: Mapping[str, str] | None = None, report: ReadReport,
         size: int = 10_000) -> Iterator[Batch]:
    """Yield the events of log sources in columnar batches of about ``size`` records.

    A batch's events (``Batch.events``) are those ``read`` yields, in the same order,
    and ``report`` ends up as ``read`` leaves it; a batch never spans two sources.
    """
    if size < 1:
        raise ValueError("a batch holds at least one record")
    return _scan_all(_checked(sources, format, mapping), format, mapping, report, size)


def _checked(sources: Iterable[str | Path] | str | Path, format: str,
             mapping: Mapping[str, str] | None) -> Iterable[str | Path]:
    """Raise ValueError for a caller's mistake; return the sources as a list of one or more."""
    if format not in FORMATS:
        raise ValueError(f"unknown log format {format!r}; one of {', '.join(FORMATS)}")
    check_mapping(mapping)
    if format == "jsonl" and not mapping:
        raise ValueError("format jsonl needs a mapping of JSON fields to STIX paths")
    return [sources] if isinstance(sources, (str, Path)) else sources


def check_mapping(mapping: Mapping[str, str] | None) -> None:
    """Raise ValueError unless every mapped path is one of ``PATHS`` ("@time" names a field)."""
    for field, path in (mapping or {}).items():
        if not isinstance(field, str) or not isinstance(path, str) or not field or not path:
            raise ValueError("a mapping maps field names to STIX paths, both strings")
        if field != jsonl.TIME_KEY and path not in PATHS:
            raise ValueError(f"{path!r} (for {field!r}) is not a path events carry: {', '.join(PATHS)}")


def _read_all(sources: Iterable[str | Path], format: str, mapping: Mapping[str, str] | None,
              report: ReadReport) -> Iterator[Event]:
    """Read each source in turn with its format."""
    now = datetime.now(timezone.utc)
    for source in sources:
        ctx = Context(source_name(source), report, mapping, now)
        numbered: Iterator[Line] = lines(source, report=report)
        kind: str | None = format
        if format == "auto":
            kind, numbered = sniff.sniff(numbered, mapping)
        if kind is None:
            continue
        if kind == "jsonl" and not mapping:
            report.skip(NEED_MAPPING, ctx.name)
            continue
        yield from _READERS[kind](numbered, ctx)


def _scan_all(sources: Iterable[str | Path], format: str, mapping: Mapping[str, str] | None,
              report: ReadReport, size: int) -> Iterator[Batch]:
    """Scan each source in turn with its format."""
    now = datetime.now(timezone.utc)
    fields = Fields()
    for source in sources:
        ctx = Context(source_name(source), report, mapping, now)
        numbered = blocks(source, report=report)
        kind: str | None = format
        if format == "auto":
            kind, numbered = scanning.sniffed(numbered, ctx.name, mapping)
        if kind is None:
            continue
        if kind == "jsonl" and not mapping:
            report.skip(NEED_MAPPING, ctx.name)
            continue
        yield from scanning.batches(kind, numbered, ctx, fields=fields, reader=_READERS[kind], size=size)
