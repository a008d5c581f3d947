"""Suricata EVE JSON read fast, into columnar batches (see ``collect``).

Every line of a block is parsed by orjson, as ``eve.event`` would parse it (that is
what tells a line is JSON); the flow fields every event has become dense columns,
and the application sections are walked by ``eve.fill_sections`` into a ``Sink``.
Only the few lines that may match are read again in full (``Batch.event``). Lines
orjson refuses or that are not objects, and blocks holding what this path does not
take (NUL bytes, a byte-order mark, a line too long), are read one by one by
``eve.event``, which counts them as ``read`` does.
"""

from __future__ import annotations

from itertools import compress, repeat
from typing import Iterable, Iterator, Sequence

import orjson

from communique.detect.columns import Batch
from communique.detect.events import Event, ReadReport
from communique.detect.logs import eve, timecheck, times, zeek_fields
from communique.detect.logs.collect import Collector, Sink
from communique.detect.logs.roles import Fields
from communique.detect.logs.record import BAD_TIME, Context
from communique.detect.logs.sources import MAX_LINE, Block, Line, decode

_BOM = b"\xef\xbb\xbf"
_PROTOCOLS = "network-traffic:protocols[*]"
_FLOW = ("timestamp", "src_ip", "dest_ip", "src_port", "dest_port", "proto")
_SECTIONS = ("dns", "http", "tls", "fileinfo", "smtp", "email")  # eve.SECTIONS, in walking order


def batches(blocks: Iterable[Block], ctx: Context, fields: Fields, size: int) -> Iterator[Batch]:
    """Yield the batches of an EVE log, of about ``size`` records each."""
    quiet = Context(ctx.name, ReadReport(), ctx.mapping, ctx.now)

    def resolve(raw: object, number: int) -> Event | None:
        text = raw.decode("utf-8", "replace")  # type: ignore[attr-defined]
        return eve.event(Line(number, text[:-1] if text.endswith("\r") else text), quiet)

    collector = Collector(ctx, fields, resolve)
    for block in blocks:
        _block(block, collector)
        if collector.size >= size:
            batch = collector.finish()
            if batch is not None:
                yield batch
            collector = Collector(ctx, fields, resolve)
    batch = collector.finish()
    if batch is not None:
        yield batch


def _block(block: Block, collector: Collector) -> None:
    """Read one block: fast when it can be, else line by line."""
    raws = block.data.split(b"\n")
    first = block.first
    if block.dropped_first:
        del raws[0]
        first += 1
    data = block.data
    if b"\x00" in data or len(data) > MAX_LINE or (first == 1 and data.startswith(_BOM)):
        for offset, raw in enumerate(raws):
            _slow(collector, raw, first + offset)
        return
    try:
        docs = list(map(orjson.loads, raws))
        whole = set(map(type, docs)) == {dict}
    except orjson.JSONDecodeError:
        whole = False
    if whole:
        _fast(collector, docs, raws, range(first, first + len(raws)))
        return
    run: list[tuple[dict, bytes, int]] = []
    for offset, raw in enumerate(raws):
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            doc = None
        if type(doc) is dict:
            run.append((doc, raw, first + offset))
            continue
        if run:
            _fast(collector, *map(list, zip(*run)))  # type: ignore[arg-type]
            run = []
        _slow(collector, raw, first + offset)
    if run:
        _fast(collector, *map(list, zip(*run)))  # type: ignore[arg-type]


def _slow(collector: Collector, raw: bytes, number: int) -> None:
    """Read one line as ``read`` does; its skips wait for the batch's, to be counted in order."""
    line = decode(raw, number, collector.ctx.name, collector.ctx.report)
    if line is None:
        return
    found = eve.event(line, collector.slow)
    collector.drain(number)
    if found is not None:
        collector.event(found, number)


def _fast(collector: Collector, docs: list[dict], raws: list[bytes], numbers: Sequence[int]) -> None:
    """Take parsed EVE events: the flow fields as columns, the sections through a sink."""
    base = collector.slots(raws, numbers)
    stamps, sources, destinations, source_ports, destination_ports, protocols = (
        list(map(dict.get, docs, repeat(key))) for key in _FLOW)
    if not timecheck.iso8601_valid(stamps):
        for offset, stamp in enumerate(stamps):
            if timecheck.unreadable(stamp, times.iso8601):
                collector.note(base + offset, BAD_TIME)
    role = collector.fields.role
    collector.column(role(("endpoint", "src")), sources, base)
    collector.column(role(("endpoint", "dst")), destinations, base)
    collector.column(role(("port", "src")), source_ports, base, ints=True)
    collector.column(role(("port", "dst")), destination_ports, base, ints=True)
    collector.column(role(("add", _PROTOCOLS)), protocols, base)
    walker = _Walker(collector)
    sections = [list(map(dict.get, docs, repeat(name))) for name in _SECTIONS]
    for offset in compress(range(len(docs)), map(any, zip(*sections))):
        walker.walk(docs[offset], base + offset, *(found[offset] for found in sections))


class _Walker:
    """``eve.fill_sections`` written out for columns: each value goes to its role's column.

    The same walk as ``eve``'s, value for value (a test holds them to it), without a
    call per value: this is where a fast EVE scan spends its time.
    """

    __slots__ = ("sink", "hosts", "answers", "urls", "subjects", "issuers", "certificates",
                 "names", "md5", "sha1", "sha256")

    def __init__(self, collector: Collector) -> None:
        self.sink = Sink(collector)
        sparse = collector.sparse
        self.hosts, self.answers, self.urls = sparse(("host",)), sparse(("answer",)), sparse(("url",))
        self.subjects = sparse(("add", "x509-certificate:subject"))
        self.issuers = sparse(("add", "x509-certificate:issuer"))
        self.certificates = sparse(("hash", "SHA-1", "x509-certificate"))
        self.names = sparse(("add", "file:name"))
        self.md5, self.sha1 = sparse(("hash", "MD5", "file")), sparse(("hash", "SHA-1", "file"))
        self.sha256 = sparse(("hash", "SHA-256", "file"))

    def walk(self, doc: dict, slot: int, dns: object, http: object, tls: object, fileinfo: object,
             smtp: object, email: object) -> None:
        """Add what the sections of one event hold (given as ``_SECTIONS`` names them)."""
        if type(dns) is dict and dns:
            self._dns(dns, slot)
        if type(http) is dict and http:
            self._http(http, doc, slot)
        section = tls
        if type(section) is dict and section:
            _put(self.hosts, section.get("sni"), slot)
            _put(self.subjects, section.get("subject"), slot)
            _put(self.issuers, section.get("issuerdn"), slot)
            fingerprint = section.get("fingerprint")
            if type(fingerprint) is str and fingerprint:
                _put(self.certificates, fingerprint.replace(":", ""), slot)
        section = fileinfo
        if type(section) is dict and section:
            _put(self.names, section.get("filename"), slot)
            _put(self.md5, section.get("md5"), slot)
            _put(self.sha1, section.get("sha1"), slot)
            _put(self.sha256, section.get("sha256"), slot)
        smtp, email = (smtp if type(smtp) is dict else {}), (email if type(email) is dict else {})
        if smtp or email:
            self.sink.slot = slot
            eve.mail(self.sink, smtp, email)

    def _dns(self, dns: dict, slot: int) -> None:
        hosts, answers = self.hosts, self.answers
        _put(hosts, dns.get("rrname"), slot)
        for key in ("queries", "query"):
            queries = dns.get(key)
            if type(queries) is list:
                for query in queries:
                    if type(query) is dict:
                        _put(hosts, query.get("rrname"), slot)
        if dns.get("type") == "answer":
            _put(answers, dns.get("rdata"), slot)
        found = dns.get("answers")
        if type(found) is list:
            for answer in found:
                if type(answer) is dict:
                    _put(hosts, answer.get("rrname"), slot)
                    _put(answers, answer.get("rdata"), slot)
        grouped = dns.get("grouped")
        if type(grouped) is dict:
            for values in grouped.values():
                if type(values) is list:
                    for value in values:
                        _put(answers, value, slot)

    def _http(self, http: dict, doc: dict, slot: int) -> None:
        host = http.get("hostname")
        host = host if type(host) is str else None
        _put(self.hosts, host, slot)
        port = http.get("http_port")
        if port is None and doc.get("event_type") == "http":
            port = doc.get("dest_port")
        url = http.get("url")
        url = zeek_fields.http_url(host, url if type(url) is str else None, port)
        if url:
            _put(self.urls, url, slot)


def _put(column: tuple[list, list[int]], value: object, slot: int) -> None:
    """Keep a string value (what ``eve._text`` lets through; "" adds nothing either way)."""
    if type(value) is str and value:
        column[0].append(value)
        column[1].append(slot)
