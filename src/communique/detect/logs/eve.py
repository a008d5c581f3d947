"""Suricata EVE JSON: one event a line, whatever its ``event_type``.

Every event gives ``timestamp`` (ISO 8601 with an offset), ``src_ip``/``dest_ip``
(addresses and the traffic's refs), ``src_port``/``dest_port`` and ``proto``. The
application sections are read wherever they appear (an ``alert`` or ``fileinfo``
event carries the ``http`` or ``tls`` section of its flow):

- dns: ``rrname`` (version 1 and 2), ``queries[]``/``query[]`` rrnames (version 3,
  alerts), ``answers[]`` rrname and ``rdata``, the ``grouped`` answers, a version 1
  answer's ``rdata``; answers are taken when they are addresses or names
- http: ``hostname``; ``url`` when absolute, else rebuilt as ``http://hostname[:port]url``
  with ``http_port``, or the ``dest_port`` of an ``http`` event, when it is not 80
- tls: ``sni``; ``subject``/``issuerdn`` as the certificate's; ``fingerprint`` as
  its SHA-1 (Suricata writes it with colons, which are removed)
- fileinfo: ``filename``, ``md5``, ``sha1``, ``sha256``
- smtp: ``mail_from``, ``rcpt_to[]``; email: ``from`` (also as the message's
  ``from_ref``), ``to[]``, ``cc[]``, ``subject``, ``attachment[]`` names, ``url[]``

Skipped: "invalid JSON", "JSON value is not an object", and "no observables"
(``stats`` events, for one).
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator

from communique.detect.events import Event
from communique.detect.logs import times, zeek_fields
from communique.detect.logs.jsonobj import load_object
from communique.detect.logs.record import Adder, Context, Record
from communique.detect.logs.sources import Line


def events(lines: Iterable[Line], ctx: Context) -> Iterator[Event]:
    """Yield the events of an EVE JSON log."""
    for line in lines:
        found = event(line, ctx)
        if found is not None:
            yield found


def event(line: Line, ctx: Context) -> Event | None:
    """Return the event of one line, or None (a blank line, or one skipped and counted)."""
    if not line.text.strip():
        return None
    document = load_object(line, ctx)
    if document is None:
        return None
    record = Record()
    fill(record, document)
    return ctx.emit(record, line)


SECTIONS = frozenset(("dns", "http", "tls", "fileinfo", "smtp", "email"))


def fill(record: Record, document: dict[str, Any]) -> None:
    """Add one EVE event's time, flow and application observables."""
    record.set_time(document.get("timestamp"), times.iso8601)
    record.add_endpoint("src", _text(document.get("src_ip")))
    record.add_endpoint("dst", _text(document.get("dest_ip")))
    record.add_port("src", document.get("src_port"))
    record.add_port("dst", document.get("dest_port"))
    record.add("network-traffic:protocols[*]", _text(document.get("proto")))
    fill_sections(record, document)


def fill_sections(record: Adder, document: dict[str, Any]) -> None:
    """Add the observables of an EVE event's application sections (``SECTIONS``)."""
    dns, http, tls = _section(document, "dns"), _section(document, "http"), _section(document, "tls")
    fileinfo, smtp, email = (_section(document, "fileinfo"), _section(document, "smtp"),
                             _section(document, "email"))
    if dns:  # an empty section adds nothing
        _dns(record, dns)
    if http:
        _http(record, http, document)
    if tls:
        _tls(record, tls)
    if fileinfo:
        _fileinfo(record, fileinfo)
    if smtp or email:
        mail(record, smtp, email)


def _dns(record: Adder, dns: dict[str, Any]) -> None:
    """Add queried names and the answers that are addresses or names."""
    record.add_host(_text(dns.get("rrname")))
    for query in _dicts(dns.get("queries")) + _dicts(dns.get("query")):
        record.add_host(_text(query.get("rrname")))
    if dns.get("type") == "answer":
        _answer(record, dns.get("rdata"))
    for answer in _dicts(dns.get("answers")):
        record.add_host(_text(answer.get("rrname")))
        _answer(record, answer.get("rdata"))
    grouped = dns.get("grouped")
    if isinstance(grouped, dict):
        for values in grouped.values():
            for value in values if isinstance(values, list) else []:
                _answer(record, value)


def _answer(record: Adder, rdata: Any) -> None:
    """Add one answer's data when it is text (SRV, SOA and the like are objects)."""
    if isinstance(rdata, str) and rdata:
        zeek_fields.add_answer(record, rdata)


def _http(record: Adder, http: dict[str, Any], document: dict[str, Any]) -> None:
    """Add the host name and the request's URL."""
    host = _text(http.get("hostname"))
    record.add_host(host)
    port = http.get("http_port")
    if port is None and document.get("event_type") == "http":
        port = document.get("dest_port")
    url = zeek_fields.http_url(host, _text(http.get("url")), port)
    if url:
        record.add_url(url)


def _tls(record: Adder, tls: dict[str, Any]) -> None:
    """Add the SNI name and the server certificate's names and fingerprint."""
    record.add_host(_text(tls.get("sni")))
    record.add("x509-certificate:subject", _text(tls.get("subject")))
    record.add("x509-certificate:issuer", _text(tls.get("issuerdn")))
    fingerprint = _text(tls.get("fingerprint"))
    if fingerprint:
        record.add_hash(fingerprint.replace(":", ""), "SHA-1", kind="x509-certificate")


def _fileinfo(record: Adder, fileinfo: dict[str, Any]) -> None:
    """Add the file's name and hashes."""
    record.add("file:name", _text(fileinfo.get("filename")))
    for field, algorithm in (("md5", "MD5"), ("sha1", "SHA-1"), ("sha256", "SHA-256")):
        record.add_hash(_text(fileinfo.get(field)), algorithm)


def mail(record: Adder, smtp: dict[str, Any], email: dict[str, Any]) -> None:
    """Add envelope and header addresses, the subject, attachment names and URLs."""
    record.add_email(_text(email.get("from")), "email-message:from_ref.value")
    record.add("email-message:subject", _text(email.get("subject")))
    for value in [smtp.get("mail_from"), email.get("from")] + _texts(smtp.get("rcpt_to")) \
            + _texts(email.get("to")) + _texts(email.get("cc")):
        record.add_email(_text(value))
    for name in _texts(email.get("attachment")):
        record.add("file:name", name)
    for url in _texts(email.get("url")):
        record.add_url(url)


def _section(document: dict[str, Any], name: str) -> dict[str, Any]:
    """Return an application section, or an empty one."""
    section = document.get(name)
    return section if isinstance(section, dict) else {}


def _dicts(value: Any) -> list[dict[str, Any]]:
    """Return the objects of a list (none when it is not a list)."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _texts(value: Any) -> list[str]:
    """Return the strings of a list, or a lone string as a list of one."""
    if isinstance(value, str):
        return [value]
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def _text(value: Any) -> str | None:
    """Return a string value, or None for anything else."""
    return value if isinstance(value, str) else None

