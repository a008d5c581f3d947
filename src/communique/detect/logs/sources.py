"""Turn a log source (a path, or "-" for standard input) into numbered text lines.

Reading streams: bytes come in chunks of at most ``CHUNK`` and a line is never
longer than ``MAX_LINE`` in memory, however big the file. Gzip is recognised by
its magic bytes (not by the ``.gz`` name), concatenated members are read in turn,
and a stream cut short yields what was decompressed before the cut. Nothing here
raises for bad input; every problem is counted in the report:

- "cannot open source", "read error": the file could not be opened or read
- "empty file": no bytes at all (after decompression)
- "gzip stream ended early", "corrupt gzip data", "trailing data after gzip stream"
- "line longer than 1 MiB": the line is dropped, reading resumes after it
- "binary data": NUL bytes, or a line that is mostly not text
"""

from __future__ import annotations

import re
import sys
import zlib
from contextlib import nullcontext
from pathlib import Path
from typing import IO, Callable, ContextManager, Generator, Iterable, Iterator, NamedTuple

from communique.detect.events import ReadReport

CHUNK = 1 << 16
MAX_LINE = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"
STDIN = "-"

# Characters that do not occur in text logs; a line mostly made of them is binary.
_NOT_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffd]")


class Line(NamedTuple):
    """One line of a source: its 1-based number, its text, and whether bytes were replaced."""

    number: int
    text: str
    replaced: bool = False


def source_name(source: str | Path) -> str:
    """Name a source in reports: its path as given, or "<stdin>"."""
    return "<stdin>" if str(source) == STDIN else str(source)


def lines(source: str | Path, *, report: ReadReport) -> Iterator[Line]:
    """Yield the decoded lines of one source, gunzipping it when it is gzip."""
    return lines_of(blocks(source, report=report), source_name(source), report)


def lines_of(numbered: Iterable[Block], name: str, report: ReadReport) -> Iterator[Line]:
    """Yield the decoded lines of blocks."""
    for block in numbered:
        for offset, raw in enumerate(block.data.split(b"\n")):
            if offset or not block.dropped_first:
                line = decode(raw, block.first + offset, name, report)
                if line is not None:
                    yield line


class Block(NamedTuple):
    """Whole lines of a source as bytes, cut at newlines: ``count`` lines, the first numbered ``first``.

    ``dropped_first`` says the first of them is the tail of a line too long to keep,
    already counted; it is to be passed over.
    """

    first: int
    data: bytes
    count: int
    dropped_first: bool = False


def blocks(source: str | Path, *, report: ReadReport) -> Iterator[Block]:
    """Yield the lines of one source in blocks of bytes, as they come (a chunk's worth at a time)."""
    name = source_name(source)
    try:
        opened = _open(source)
    except OSError:
        report.skip("cannot open source", name)
        return
    with opened as stream:
        yield from _blocks(_decompressed(_chunks(stream, name, report), name, report), name, report)


def _open(source: str | Path) -> ContextManager[IO[bytes]]:
    """Open a file for binary reading, or lend standard input without closing it."""
    if str(source) == STDIN:
        return nullcontext(getattr(sys.stdin, "buffer", sys.stdin))
    return open(source, "rb")


def _chunks(stream: IO[bytes], name: str, report: ReadReport) -> Iterator[bytes]:
    """Yield raw chunks as they arrive (a pipe's data is passed on without waiting to fill)."""
    read: Callable[[int], bytes] = getattr(stream, "read1", stream.read)
    while True:
        try:
            chunk = read(CHUNK)
        except OSError:
            report.skip("read error", name)
            return
        if not chunk:
            return
        yield chunk


def _decompressed(chunks: Iterator[bytes], name: str, report: ReadReport) -> Iterator[bytes]:
    """Pass plain bytes through; gunzip a stream that starts with the gzip magic."""
    head = b""
    for chunk in chunks:
        head += chunk
        if len(head) >= len(GZIP_MAGIC):
            break
    if not head:
        report.skip("empty file", name)
        return
    if not head.startswith(GZIP_MAGIC):
        yield head
        yield from chunks
        return
    produced = yield from _gunzip(head, chunks, name, report)
    if not produced:
        report.skip("empty file", name)


def _gunzip(head: bytes, chunks: Iterator[bytes], name: str,
            report: ReadReport) -> Generator[bytes, None, bool]:
    """Decompress gzip members one after another, CHUNK bytes at most at a time; tell if any came out."""
    inflater = None  # None between members
    produced = False
    data = head
    while data:
        if inflater is None:
            if not data.startswith(GZIP_MAGIC[:len(data)]):
                report.skip("trailing data after gzip stream", name)
                return produced
            inflater = zlib.decompressobj(wbits=31)
        try:
            out = inflater.decompress(data, CHUNK)
        except zlib.error:
            report.skip("corrupt gzip data", name)
            return produced
        if out:
            produced = True
            yield out
        if inflater.eof:
            data, inflater = inflater.unused_data, None
        else:
            data = inflater.unconsumed_tail
        if not data:
            data = next(chunks, b"")
    if inflater is not None:
        out = _drain(inflater)
        if out:
            produced = True
            yield out
        if not inflater.eof:
            report.skip("gzip stream ended early", name)
    return produced


def _drain(inflater: "zlib._Decompress") -> bytes:
    """Return what a decompressor still holds once its input is exhausted (a few bytes at most)."""
    try:
        return inflater.flush()
    except zlib.error:
        return b""


def _blocks(chunks: Iterator[bytes], name: str, report: ReadReport) -> Iterator[Block]:
    """Cut chunks into blocks of whole lines, dropping (and counting) any line longer than MAX_LINE."""
    pending = b""
    number = 0  # lines numbered so far
    dropping = False
    for chunk in chunks:
        data = pending + chunk if pending else chunk
        cut = data.rfind(b"\n")
        if cut < 0:
            pending = data
        else:
            body, pending = data[:cut], data[cut + 1:]
            count = body.count(b"\n") + 1
            yield Block(number + 1, body, count, dropping)
            number += count
            dropping = False
        if len(pending) > MAX_LINE and not dropping:
            report.skip("line longer than 1 MiB", f"{name}:{number + 1}")
            dropping = True
        if dropping:
            pending = b""
    if pending and not dropping:
        yield Block(number + 1, pending, 1)


def decode(raw: bytes, number: int, name: str, report: ReadReport) -> Line | None:
    """Decode one line as UTF-8 (replacing bad bytes), or count it as binary or too long."""
    if len(raw) > MAX_LINE:
        report.skip("line longer than 1 MiB", f"{name}:{number}")
        return None
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    if b"\x00" in raw:
        report.skip("binary data", f"{name}:{number}")
        return None
    try:
        text, replaced = raw.decode("utf-8"), False
    except UnicodeDecodeError:
        text, replaced = raw.decode("utf-8", "replace"), True
        if len(_NOT_TEXT.findall(text)) * 4 > len(text):
            report.skip("binary data", f"{name}:{number}")
            return None
    if number == 1 and text.startswith("\ufeff"):
        text = text[1:]
    return Line(number, text, replaced)
