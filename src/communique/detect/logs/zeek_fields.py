"""Which Zeek log fields hold which observables, for TSV and JSON logs alike.

Every log's connection fields give both ends (``id.orig_h`` is the source,
``id.resp_h`` the destination: their addresses and the traffic's refs), the
ports and ``proto``. Then, by log:

- dns: ``query`` (a name, or an address for reverse look-ups); ``answers`` that
  are addresses, and those that are names (CNAME, PTR, MX targets)
- http: ``host`` (a name or an address), and ``url:value`` rebuilt as
  ``http://host[:port]uri`` (the port from ``id.resp_p``, only when not 80 and not
  already in ``host``; an absolute ``uri``, as a proxy sees it, is taken whole)
- ssl: ``server_name``; ``subject``/``issuer`` of older versions; ``cert_chain_fps``
- files: ``md5``, ``sha1``, ``sha256``, ``filename``; ``tx_hosts``/``rx_hosts``
- x509: ``certificate.subject``/``issuer``, ``fingerprint``, ``san.dns``/``ip``/``email``
- smtp: ``mailfrom``, ``rcptto``, ``from``, ``to``, ``cc``, ``reply_to``, ``subject``
- notice: ``src``, ``dst``

A log's kind comes from ``#path`` (or ``_path`` in JSON), else from fields only
that kind has. Certificate fingerprints are SHA-1 or SHA-256 by their length.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from communique.detect.logs import observables, times
from communique.detect.logs.record import Adder, Record

Fields = Mapping[str, Any]  # field name -> str, int, float, or a list of them

# Fields found in one kind of log only, to tell the kind of a JSON line without "_path".
_TELLTALE = (
    ("dns", ("qtype_name", "answers", "trans_id", "qclass")),
    ("http", ("uri", "status_code", "user_agent")),
    ("ssl", ("server_name", "cipher", "cert_chain_fps", "ssl_history")),
    ("x509", ("certificate.subject", "certificate.serial")),
    ("files", ("fuid", "mime_type", "seen_bytes")),
    ("smtp", ("mailfrom", "rcptto", "helo")),
    ("notice", ("note", "sub")),
    ("conn", ("conn_state", "history")),
)


# Every field read here or used to tell a kind: a TSV reader need not decode the others.
USED = frozenset((
    "ts", "id.orig_h", "id.resp_h", "id.orig_p", "id.resp_p", "proto", "query", "answers", "host", "uri",
    "server_name", "subject", "issuer", "cert_chain_fps", "md5", "sha1", "sha256", "filename",
    "tx_hosts", "rx_hosts", "certificate.subject", "certificate.issuer", "fingerprint", "san.dns",
    "san.ip", "san.email", "mailfrom", "rcptto", "from", "to", "cc", "reply_to", "src", "dst",
    *(name for _, telltales in _TELLTALE for name in telltales),
))


# Each handler reads each field on its own (what a record gets is the union of what each
# field adds), except these, read together: http's URL is rebuilt from four fields.
TOGETHER = {"http": ("host", "uri", "id.resp_h", "id.resp_p")}
# What ``fill`` does with a field alone, set to a plain string (not a set or vector),
# as the Record call it makes (see ``collect.apply_role``); "" stands for every kind.
ROLES = {
    ("", "id.orig_h"): ("endpoint", "src"), ("", "id.resp_h"): ("endpoint", "dst"),
    ("", "id.orig_p"): ("port", "src"), ("", "id.resp_p"): ("port", "dst"),
    ("", "proto"): ("add", "network-traffic:protocols[*]"), ("dns", "query"): ("host",),
    ("ssl", "server_name"): ("host",), ("files", "md5"): ("hash", "MD5", "file"),
    ("files", "sha1"): ("hash", "SHA-1", "file"), ("files", "sha256"): ("hash", "SHA-256", "file"),
    ("files", "filename"): ("add", "file:name"), ("notice", "src"): ("endpoint", "src"),
    ("notice", "dst"): ("endpoint", "dst"),
}


def kind_of(fields: Fields, path: str | None) -> str:
    """Name the kind of Zeek log a record comes from ("conn", "dns", …), or ""."""
    if path:
        return path
    for kind, telltales in _TELLTALE:
        if any(name in fields for name in telltales):
            return kind
    return ""


def fill(record: Record, fields: Fields, kind: str) -> None:
    """Add a Zeek record's time, connection and per-log observables."""
    record.set_time(fields.get("ts"), zeek_time)
    record.add_endpoint("src", _one(fields.get("id.orig_h")))
    record.add_endpoint("dst", _one(fields.get("id.resp_h")))
    record.add_port("src", _one(fields.get("id.orig_p")))
    record.add_port("dst", _one(fields.get("id.resp_p")))
    for proto in _each(fields.get("proto")):
        record.add("network-traffic:protocols[*]", str(proto))
    handler = _BY_KIND.get(kind)
    if handler is not None:
        handler(record, fields)


def _dns(record: Record, fields: Fields) -> None:
    """Add the query and the answers that are addresses or names."""
    record.add_host(_one(fields.get("query")))
    for answer in _each(fields.get("answers")):
        add_answer(record, str(answer))


def add_answer(record: Adder, answer: str) -> None:
    """Add a DNS answer when it is an address or a name (not TXT or other data)."""
    if not record.add_ip(answer) and observables.is_hostname(answer):
        record.add(observables.DOMAIN, answer)


def _http(record: Record, fields: Fields) -> None:
    """Add the Host header and the URL rebuilt from it."""
    host = _one(fields.get("host"))
    record.add_host(host)
    url = http_url(host or _one(fields.get("id.resp_h")), _one(fields.get("uri")),
                   _one(fields.get("id.resp_p")))
    if url:
        record.add_url(url)


def http_url(host: Any, uri: Any, port: Any) -> str | None:
    """Rebuild an HTTP URL as ``http://host[:port]uri``; the port only when it is not 80."""
    if not isinstance(uri, str) or not uri:
        return None
    if uri.lower().startswith(("http://", "https://")):
        return uri
    if not uri.startswith("/") or not isinstance(host, str) or not host:
        return None
    if observables.ip_path(host) == observables.IPV6:
        host = f"[{host}]"
    digits = str(port) if isinstance(port, (int, str)) and not isinstance(port, bool) else ""
    if not (digits.isascii() and digits.isdigit()) or digits == "80" or observables.has_port(host):
        return f"http://{host}{uri}"
    return f"http://{host}:{digits}{uri}"


def _ssl(record: Record, fields: Fields) -> None:
    """Add the SNI name and what older versions log of the server certificate."""
    record.add_host(_one(fields.get("server_name")))
    record.add("x509-certificate:subject", _one(fields.get("subject")))
    record.add("x509-certificate:issuer", _one(fields.get("issuer")))
    for fingerprint in _each(fields.get("cert_chain_fps")):
        record.add_hash(str(fingerprint), kind="x509-certificate")


def _files(record: Record, fields: Fields) -> None:
    """Add the file's hashes and name, and the hosts it went between."""
    for field, algorithm in (("md5", "MD5"), ("sha1", "SHA-1"), ("sha256", "SHA-256")):
        record.add_hash(_one(fields.get(field)), algorithm)
    record.add("file:name", _one(fields.get("filename")))
    for field in ("tx_hosts", "rx_hosts"):
        for address in _each(fields.get(field)):
            record.add_ip(str(address))


def _x509(record: Record, fields: Fields) -> None:
    """Add the certificate's names, fingerprint and subject alternative names."""
    record.add("x509-certificate:subject", _one(fields.get("certificate.subject")))
    record.add("x509-certificate:issuer", _one(fields.get("certificate.issuer")))
    record.add_hash(_one(fields.get("fingerprint")), kind="x509-certificate")
    for name in _each(fields.get("san.dns")):
        record.add_host(str(name))
    for address in _each(fields.get("san.ip")):
        record.add_ip(str(address))
    for address in _each(fields.get("san.email")):
        record.add_email(str(address))


def _smtp(record: Record, fields: Fields) -> None:
    """Add the envelope and header addresses and the subject."""
    record.add_email(_one(fields.get("from")), "email-message:from_ref.value")
    for field in ("mailfrom", "rcptto", "from", "to", "cc", "reply_to"):
        for address in _each(fields.get(field)):
            record.add_email(str(address))
    record.add("email-message:subject", _one(fields.get("subject")))


def _notice(record: Record, fields: Fields) -> None:
    """Add the notice's own source and destination."""
    record.add_endpoint("src", _one(fields.get("src")))
    record.add_endpoint("dst", _one(fields.get("dst")))


_BY_KIND: dict[str, Callable[[Record, Fields], None]] = {
    "dns": _dns, "http": _http, "ssl": _ssl, "files": _files, "x509": _x509,
    "smtp": _smtp, "notice": _notice,
}


def zeek_time(value: str | int | float) -> int | None:
    """Read Zeek's ``ts``: epoch seconds, or ISO 8601 when Zeek was told to write that."""
    if isinstance(value, str) and "-" in value:
        return times.iso8601(value)
    return times.epoch_seconds(value)


def _one(value: Any) -> Any:
    """Return a field's single value (the first of a list), or None."""
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _each(value: Any) -> list[Any]:
    """Return a field's values as a list (a set or vector field, or one value)."""
    if value is None or value == "":
        return []
    items = value if isinstance(value, list) else [value]
    return [item for item in items if isinstance(item, (str, int)) and not isinstance(item, bool) and item != ""]
