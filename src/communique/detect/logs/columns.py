"""Columns of proxy and DNS exports (CSV, W3C), known by their common names.

A column is recognised by its name, compared case-insensitively with spaces as
underscores ("Client IP" is "client_ip"); a ``mapping`` given by the caller
({column name: STIX path, "@time": column name}) takes precedence. The names:

====================  ==========================================================
role                  column names
====================  ==========================================================
url                   url, request_url, cs-uri, uri, full_url, http_url, …
path, query_string    cs-uri-stem, cs-uri-path, uri_path; cs-uri-query, query_string
scheme                cs-uri-scheme, scheme
host                  host, hostname, cs-host, cs(host), domain, query, qname, sni, …
src, dst              src, src_ip, c-ip, client_ip, …; dst, dst_ip, s-ip, server_ip, dest_ip, …
src_port, dst_port    src_port, sport, c-port, …; dst_port, dport, s-port, cs-uri-port, port, …
time, date            time, timestamp, datetime, @timestamp, _time, ts, …; date
answer                answer, answers, rdata, resolved_ip, … (split on , ; and spaces)
user                  user, username, user_id, cs-username
md5, sha1, sha256     md5; sha1, sha-1; sha256, sha-256; hash, file_hash (kind by length)
file                  filename, file_name, fname
====================  ==========================================================

A URL is taken whole when absolute; a path ("/x", or a stem and query) becomes
``scheme://host[:port]/x`` when the row names the host (the scheme from its
column, else https for port 443 and http otherwise; only http and https; the
port only when it is not the scheme's default); ``host:port`` (a proxied
CONNECT) is taken as a host; anything else is kept as logged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Sequence

from communique.detect.logs import observables, times, zeek_fields
from communique.detect.logs.record import Record

_ALIASES = {
    "url": "url request_url requesturl request_uri cs-uri uri full_url fullurl http_url url_full",
    "path": "cs-uri-stem cs-uri-path uri_path url_path uri_stem",
    "query_string": "cs-uri-query uri_query url_query query_string querystring",
    "scheme": "cs-uri-scheme scheme uri_scheme url_scheme",
    "host": "host hostname host_name cs-host cs(host) domain domain_name query qname query_name "
            "queryname question dns_query dest_host dst_host dhost destination_host server_name "
            "servername sni fqdn site r-host url_domain url_host",
    "src": "src src_ip srcip src_addr source source_ip sourceip source_address c-ip c_ip client "
           "client_ip clientip client_address client_addr",
    "dst": "dst dst_ip dstip dst_addr dest dest_ip destip dest_addr destination destination_ip "
           "destination_address s-ip server_ip serverip server_address r-ip",
    "src_port": "src_port srcport sport spt source_port sourceport c-port client_port",
    "dst_port": "dst_port dstport dport dpt dest_port destport destination_port s-port server_port "
                "cs-uri-port r-port port",
    "time": "time timestamp datetime date_time @timestamp ts _time event_time eventtime "
            "time_generated timegenerated receive_time log_time logtime",
    "date": "date",
    "answer": "answer answers rdata resolved_ip resolved_ips resolved_address response_ip answer_ip",
    "user": "user username user_name userid user_id cs-username",
    "md5": "md5",
    "sha1": "sha1 sha-1",
    "sha256": "sha256 sha-256",
    "hash": "hash file_hash filehash",
    "file": "filename file_name fname",
}
_HASHES = {"md5": "MD5", "sha1": "SHA-1", "sha256": "SHA-256", "hash": None}
_NAME = re.compile(r"[\w@().\- ]{1,64}\Z")
_LIST = re.compile(r"[,;\s]+")
_DEFAULT_PORTS = {"http": "80", "https": "443"}
MAPPED = "mapped:"


@dataclass(frozen=True, slots=True)
class Columns:
    """What each column of a table holds: a role, a mapped STIX path, or nothing."""

    names: tuple[str, ...]
    roles: tuple[str | None, ...]

    @property
    def known(self) -> bool:
        """Tell whether any column holds something readable."""
        return any(role is not None for role in self.roles)


def normalise(name: str) -> str:
    """Compare column names the lenient way: trimmed, unquoted, lower case, "_" for spaces."""
    return name.strip().strip("\"'").strip().lower().replace(" ", "_")


def columns(names: Sequence[str], mapping: Mapping[str, str] | None) -> Columns:
    """Give each column its role, the caller's mapping first."""
    mapped = {normalise(name): path for name, path in (mapping or {}).items() if name != "@time"}
    time_column = normalise((mapping or {}).get("@time", "")) or None
    roles: list[str | None] = []
    for name in names:
        key = normalise(name)
        if key in mapped:
            roles.append(MAPPED + mapped[key])
        elif key == time_column:
            roles.append("time")
        else:
            roles.append(_ROLE_OF.get(key))
    return Columns(tuple(names), tuple(roles))


def is_header(cells: Sequence[str], mapping: Mapping[str, str] | None) -> bool:
    """Tell whether a row looks like a header: names only, at least one of them known."""
    if len(cells) < 2 or not all(_NAME.match(cell.strip().strip("\"'") or "-") for cell in cells):
        return False
    return columns(cells, mapping).known


def fill(record: Record, table: Columns, cells: Sequence[str]) -> None:
    """Add the observables of one row."""
    row: dict[str, list[str]] = {}
    for role, cell in zip(table.roles, cells, strict=True):
        cell = cell.strip()
        if role is None or cell in ("", "-"):
            continue
        if role.startswith(MAPPED):
            record.add_mapped(role[len(MAPPED):], cell)
        else:
            row.setdefault(role, []).append(cell)
    _time(record, row)
    for side in ("src", "dst"):
        for value in row.get(side, []):
            record.add_endpoint(side, value)
        for value in row.get(f"{side}_port", [])[:1]:
            record.add_port(side, value)
    for host in row.get("host", []):
        record.add_host(host)
    _urls(record, row)
    for answers in row.get("answer", []):
        for answer in _LIST.split(answers):
            if answer:
                zeek_fields.add_answer(record, answer)
    for role, algorithm in _HASHES.items():
        for value in row.get(role, []):
            record.add_hash(value, algorithm)
    for value in row.get("user", []):
        record.add("user-account:user_id", value)
    for value in row.get("file", []):
        record.add("file:name", value)


def _time(record: Record, row: dict[str, list[str]]) -> None:
    """Set the time from a time column, or from date and time columns together (W3C)."""
    date, clock = row.get("date", [None])[0], row.get("time", [None])[0]
    if date and clock and ":" in clock and ":" not in date:
        record.set_time(f"{date} {clock}", times.any_value)
    else:
        record.set_time(clock or date, times.any_value)


def _urls(record: Record, row: dict[str, list[str]]) -> None:
    """Add URLs: absolute ones whole, paths rebuilt with the row's host, others as logged."""
    for url in row.get("url", []):
        if "://" in url:
            record.add_url(url)
        elif url.startswith("/"):
            record.add_url(_rebuild(row, url))
        elif "/" not in url:  # "host:443", as a proxy logs a CONNECT
            record.add_host(url)
        else:
            record.add(observables.URL, url)
    if "url" not in row and "path" in row:
        query = row.get("query_string", [""])[0]
        record.add_url(_rebuild(row, row["path"][0] + (f"?{query}" if query else "")))


def _rebuild(row: dict[str, list[str]], path: str) -> str | None:
    """Rebuild ``scheme://host[:port]path`` from the row, or None without a host."""
    host = row.get("host", [None])[0]
    if not host or not path.startswith("/"):
        return None
    port = row.get("dst_port", [None])[0]
    scheme = row.get("scheme", [None])[0] or ("https" if port == "443" else "http")
    if scheme.lower() not in _DEFAULT_PORTS:  # "tcp" for a tunnel: no URL to speak of
        return None
    if observables.ip_path(host) == observables.IPV6:
        host = f"[{host}]"
    if port and port != _DEFAULT_PORTS.get(scheme.lower()) and not observables.has_port(host):
        host = f"{host}:{port}"
    return f"{scheme}://{host}{path}"


_ROLE_OF = {alias: role for role, aliases in _ALIASES.items() for alias in aliases.split()}
