"""Reading members' logs into events: every format, auto-detection, gzip and standard input,
awkward input counted (never raised), and reading that streams."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import types
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from communique.detect.events import Event, ReadReport
from communique.detect.logs import NEED_MAPPING, read, record, sniff, sources, times
from communique.detect.logs.cef import parse_extension
from communique.detect.logs.extract import scan

DATA = Path(__file__).parent / "data" / "logs"

V4, V6, DOMAIN, URL, EMAIL = "ipv4-addr:value", "ipv6-addr:value", "domain-name:value", "url:value", "email-addr:value"
SRC, DST = "network-traffic:src_ref.value", "network-traffic:dst_ref.value"
SPORT, DPORT, PROTO = "network-traffic:src_port", "network-traffic:dst_port", "network-traffic:protocols[*]"
MD5, SHA1, SHA256 = "file:hashes.'MD5'", "file:hashes.'SHA-1'", "file:hashes.'SHA-256'"
CERT_SHA1, CERT_SHA256 = "x509-certificate:hashes.'SHA-1'", "x509-certificate:hashes.'SHA-256'"
USER = "user-account:user_id"

EMPTY_SHA1 = "da39a3ee5e6b4b0d3255bfef95601890afd80709"
EMPTY_MD5 = "d41d8cd98f00b204e9800998ecf8427e"
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

APP_MAPPING = {
    "@time": "@timestamp", "client.ip": SRC, "client.port": SPORT, "destination.domain": DOMAIN,
    "destination.ip": V4, "destination.port": DPORT, "url.full": URL, "user.name": USER,
}


def read_all(*paths: str | Path, **options: object) -> tuple[list[Event], ReadReport]:
    """Read sources to the end; return the events and the report."""
    report = ReadReport()
    return list(read([str(path) for path in paths], report=report, **options)), report


def as_dicts(events: list[Event]) -> list[tuple[str, int | None, dict[str, tuple[str | int, ...]]]]:
    """Make events easy to compare and to read in a failure: (where, time, values)."""
    return [(event.source.rsplit(":", 1)[1], event.time_us, dict(event.values)) for event in events]


def write(tmp_path: Path, name: str, data: bytes | str) -> Path:
    """Write a file for one test."""
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def us(text: str) -> int:
    """Microseconds since the epoch of an ISO 8601 time with an offset (for expected values)."""
    return (datetime.fromisoformat(text) - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(microseconds=1)


def this_year_us(month: int, day: int, clock: str) -> int:
    """An RFC 3164 time as the reader dates it: this year, unless that is over a week ahead."""
    now = datetime.now(timezone.utc)
    hour, minute, second = (int(part) for part in clock.split(":"))
    moment = datetime(now.year, month, day, hour, minute, second, tzinfo=timezone.utc)
    if moment > now + timedelta(days=7):
        moment = moment.replace(year=now.year - 1)
    return int(moment.timestamp()) * 1_000_000


def zeek_tsv(path: str, fields: str, types_: str, rows: list[str]) -> str:
    """A Zeek TSV log as Zeek writes it; rows use "|" between fields."""
    header = ["#separator \\x09", "#set_separator\t,", "#empty_field\t(empty)", "#unset_field\t-",
              f"#path\t{path}", "#open\t2024-03-04-10-00-00", "#fields\t" + "\t".join(fields.split()),
              "#types\t" + "\t".join(types_.split())]
    return "\n".join(header + [row.replace("|", "\t") for row in rows]) + "\n"


CONN_FIELDS = ("ts uid id.orig_h id.orig_p id.resp_h id.resp_p proto service duration orig_bytes resp_bytes "
               "conn_state local_orig local_resp missed_bytes history orig_pkts orig_ip_bytes resp_pkts "
               "resp_ip_bytes tunnel_parents")
CONN_TYPES = ("time string addr port addr port enum string interval count count string bool bool count string "
              "count count count count set[string]")


# --- Zeek -------------------------------------------------------------------------------------

def test_zeek_conn_gives_both_ends_ports_and_protocol() -> None:
    events, report = read_all(DATA / "conn.log", format="zeek")
    assert as_dicts(events) == [
        ("9", 1709546400123456, {V4: ("192.0.2.10", "198.51.100.7"), SRC: ("192.0.2.10",),
                                 DST: ("198.51.100.7",), SPORT: (49152,), DPORT: (443,), PROTO: ("tcp",)}),
        ("10", 1709546401000001, {V6: ("2001:db8::10", "2001:db8:ffff::53"), SRC: ("2001:db8::10",),
                                  DST: ("2001:db8:ffff::53",), SPORT: (53211,), DPORT: (53,), PROTO: ("udp",)}),
        ("11", 1709546402500000, {V4: ("192.0.2.11", "203.0.113.9"), SRC: ("192.0.2.11",),
                                  DST: ("203.0.113.9",), PROTO: ("icmp",)}),
    ]
    assert report.events == 3 and report.skipped == {}
    assert events[0].source == f"{DATA / 'conn.log'}:9"


def test_zeek_dns_takes_the_query_and_answers_that_are_addresses_or_names() -> None:
    events, report = read_all(DATA / "dns.log", format="zeek")
    conn = {SRC: ("192.0.2.10",), DST: ("192.0.2.53",), DPORT: (53,), PROTO: ("udp",)}
    assert as_dicts(events) == [
        ("9", 1709546403250000, {**conn, V4: ("192.0.2.10", "192.0.2.53", "198.51.100.80", "198.51.100.81"),
                                 SPORT: (51234,), DOMAIN: ("www.example.com", "cdn.example.net")}),
        ("10", 1709546404000000, {**conn, V4: ("192.0.2.10", "192.0.2.53"), SPORT: (51235,),
                                  DOMAIN: ("ipv6.example.org",), V6: ("2001:db8:beef::1",)}),
        # "b\xc3\xbccher" is Zeek's escape of UTF-8 bytes; the TXT answer is no address or name.
        ("11", 1709546405000000, {**conn, V4: ("192.0.2.10", "192.0.2.53"), SPORT: (51236,),
                                  DOMAIN: ("bücher.example.com",)}),
    ]
    assert report.skipped == {}


def test_zeek_http_rebuilds_urls_and_puts_ip_hosts_under_addresses() -> None:
    events, _ = read_all(DATA / "http.log", format="zeek")
    values = [dict(event.values) for event in events]
    assert values[0][URL] == ("http://www.example.com/download/setup.exe?id=1",)  # port 80 is left out
    assert values[0][DOMAIN] == ("www.example.com",)
    assert values[1][URL] == ("http://198.51.100.21:8080/gate.php",)
    assert DOMAIN not in values[1]  # the Host header was an address
    assert values[1][V4] == ("192.0.2.12", "198.51.100.21")
    # A proxy request: the absolute URI is taken whole; the Host's port is not a second port.
    assert values[2][URL] == ("http://upstream.example.org/x",)
    assert values[2][DOMAIN] == ("proxy.example.net", "upstream.example.org")
    # No Host header (HTTP/1.0): the server's address stands in, in brackets for IPv6.
    assert values[3][URL] == ("http://[2001:db8::80]:8000/index.html",)
    assert [event.time_us for event in events] == [1709546406100000, 1709546407000000,
                                                    1709546408000000, 1709546409000000]


def test_zeek_ssl_files_and_x509() -> None:
    events, report = read_all(DATA / "ssl.log", DATA / "files.log", DATA / "x509.log", format="zeek")
    ssl, files, x509 = (dict(event.values) for event in events)
    assert ssl[DOMAIN] == ("login.example.com",)
    assert ssl[CERT_SHA256] == ("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                                "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752")
    assert files == {V4: ("192.0.2.10", "198.51.100.20"), SRC: ("192.0.2.10",), DST: ("198.51.100.20",),
                     SPORT: (49200,), DPORT: (80,), MD5: (EMPTY_MD5,), SHA1: (EMPTY_SHA1,),
                     SHA256: (EMPTY_SHA256,), "file:name": ("setup.exe",)}
    assert x509 == {
        "x509-certificate:subject": ("CN=login.example.com,O=Example Corp,C=US",),
        "x509-certificate:issuer": ("CN=Example Issuing CA,O=Example Corp,C=US",),
        CERT_SHA256: ("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",),
        DOMAIN: ("login.example.com", "*.login.example.com"), V4: ("198.51.100.7",)}
    assert [event.time_us for event in events] == [1709546410000000, 1709546406200000, 1709546410000000]
    assert report.skipped == {}


ZEEK_JSON = "\n".join([
    '{"_path":"dns","ts":1709546403.25,"uid":"C2a1Yq3Mxq1oNJ6vka","id.orig_h":"192.0.2.10","id.orig_p":51234,'
    '"id.resp_h":"192.0.2.53","id.resp_p":53,"proto":"udp","trans_id":4242,"rtt":0.02152,'
    '"query":"www.example.com","qclass":1,"qclass_name":"C_INTERNET","qtype":1,"qtype_name":"A","rcode":0,'
    '"rcode_name":"NOERROR","AA":false,"TC":false,"RD":true,"RA":true,"Z":0,'
    '"answers":["cdn.example.net","198.51.100.80"],"TTLs":[3600.0,60.0],"rejected":false}',
    '{"ts":1709546406.1,"uid":"CjhGID4nQcgTWjvg4c","id.orig_h":"192.0.2.10","id.orig_p":49200,'
    '"id.resp_h":"198.51.100.20","id.resp_p":80,"trans_depth":1,"method":"GET","host":"www.example.com",'
    '"uri":"/download/setup.exe?id=1","version":"1.1","user_agent":"Mozilla/5.0","request_body_len":0,'
    '"response_body_len":48213,"status_code":200,"status_msg":"OK","tags":[],'
    '"resp_fuids":["FnGRjp2SY6lOsTtAF"],"resp_mime_types":["application/x-dosexec"]}',
    '{"ts":"2024-03-04T10:00:10.000000Z","uid":"CHhAvVGS1DHFjwGM9","id":{"orig_h":"192.0.2.10","orig_p":49152,'
    '"resp_h":"198.51.100.7","resp_p":443},"version":"TLSv13","cipher":"TLS_AES_128_GCM_SHA256",'
    '"server_name":"login.example.com","established":true}',
    '{"ts":1709546406.2,"fuid":"FnGRjp2SY6lOsTtAF","tx_hosts":["198.51.100.20"],"rx_hosts":["192.0.2.10"],'
    '"conn_uids":["CjhGID4nQcgTWjvg4c"],"source":"HTTP","depth":0,"analyzers":["MD5","SHA1"],'
    '"mime_type":"application/x-dosexec","filename":"setup\\\\x2eexe","md5":"d41d8cd98f00b204e9800998ecf8427e",'
    '"sha1":"da39a3ee5e6b4b0d3255bfef95601890afd80709"}',
]) + "\n"


def test_zeek_json_logs_flat_nested_and_without_path(tmp_path: Path) -> None:
    path = write(tmp_path, "zeek.json", ZEEK_JSON)
    events, report = read_all(path, format="zeek")
    assert as_dicts(events) == [
        ("1", 1709546403250000, {V4: ("192.0.2.10", "192.0.2.53", "198.51.100.80"), SRC: ("192.0.2.10",),
                                 DST: ("192.0.2.53",), SPORT: (51234,), DPORT: (53,), PROTO: ("udp",),
                                 DOMAIN: ("www.example.com", "cdn.example.net")}),
        ("2", 1709546406100000, {V4: ("192.0.2.10", "198.51.100.20"), SRC: ("192.0.2.10",),
                                 DST: ("198.51.100.20",), SPORT: (49200,), DPORT: (80,),
                                 DOMAIN: ("www.example.com",),
                                 URL: ("http://www.example.com/download/setup.exe?id=1",)}),
        ("3", us("2024-03-04T10:00:10+00:00"), {V4: ("192.0.2.10", "198.51.100.7"), SRC: ("192.0.2.10",),
                                                DST: ("198.51.100.7",), SPORT: (49152,), DPORT: (443,),
                                                DOMAIN: ("login.example.com",)}),
        ("4", 1709546406200000, {MD5: (EMPTY_MD5,), SHA1: (EMPTY_SHA1,), "file:name": ("setup.exe",),
                                 V4: ("198.51.100.20", "192.0.2.10")}),
    ]
    assert report.skipped == {}


def test_zeek_logs_joined_with_cat_each_keep_their_header(monkeypatch: pytest.MonkeyPatch) -> None:
    joined = (DATA / "conn.log").read_bytes() + (DATA / "dns.log").read_bytes()
    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=io.BytesIO(joined)))
    events, report = read_all("-")
    assert [event.source for event in events] == [f"<stdin>:{n}" for n in (9, 10, 11, 21, 22, 23)]
    assert dict(events[3].values)[DOMAIN] == ("www.example.com", "cdn.example.net")
    assert report.skipped == {}


def test_zeek_tsv_unset_empty_and_a_missing_types_line(tmp_path: Path) -> None:
    text = "\n".join([
        "#separator \\x09", "#set_separator\t,", "#empty_field\t(empty)", "#unset_field\t-", "#path\tdns",
        "#fields\tts\tid.orig_h\tid.resp_h\tquery\tanswers",
        "1709546403.000000\t192.0.2.10\t192.0.2.53\t-\t(empty)",  # nothing asked, nothing answered
        "1709546404.000000\t192.0.2.10\t192.0.2.53\tmail.example.com\tmx1.example.com,198.51.100.25",
    ]) + "\n"
    events, report = read_all(write(tmp_path, "dns.log", text))
    assert as_dicts(events) == [
        ("7", 1709546403000000, {V4: ("192.0.2.10", "192.0.2.53"), SRC: ("192.0.2.10",), DST: ("192.0.2.53",)}),
        ("8", 1709546404000000, {V4: ("192.0.2.10", "192.0.2.53", "198.51.100.25"), SRC: ("192.0.2.10",),
                                 DST: ("192.0.2.53",), DOMAIN: ("mail.example.com", "mx1.example.com")}),
    ]
    assert report.skipped == {}


# --- Suricata EVE -------------------------------------------------------------------------------

def test_eve_events_of_every_kind() -> None:
    events, report = read_all(DATA / "eve.json", format="eve")
    flow_443 = {V4: ("192.0.2.10", "198.51.100.7"), SRC: ("192.0.2.10",), DST: ("198.51.100.7",),
                SPORT: (49152,), DPORT: (443,), PROTO: ("TCP",)}
    assert as_dicts(events) == [
        ("1", us("2024-03-04T09:00:00.123456+00:00"), flow_443),
        ("2", us("2024-03-04T09:00:01+00:00"), {
            V4: ("192.0.2.53", "192.0.2.10", "198.51.100.80"), SRC: ("192.0.2.53",), DST: ("192.0.2.10",),
            SPORT: (53,), DPORT: (51234,), PROTO: ("UDP",), DOMAIN: ("www.example.com", "cdn.example.net")}),
        ("3", us("2024-03-04T09:00:02.5+00:00"), {
            V6: ("2001:db8::10", "2001:db8:ffff::53"), SRC: ("2001:db8::10",), DST: ("2001:db8:ffff::53",),
            SPORT: (53211,), DPORT: (53,), PROTO: ("UDP",), DOMAIN: ("ipv6.example.org",)}),
        ("4", us("2024-03-04T09:00:03+00:00"), {
            V4: ("192.0.2.12", "198.51.100.21"), SRC: ("192.0.2.12",), DST: ("198.51.100.21",),
            SPORT: (49201,), DPORT: (8080,), PROTO: ("TCP",), DOMAIN: ("update.example.net",),
            URL: ("http://update.example.net:8080/gate.php?id=7",)}),
        ("5", us("2024-03-04T09:00:04+00:00"), {
            **flow_443, DOMAIN: ("login.example.com",), "x509-certificate:subject": ("CN=login.example.com",),
            "x509-certificate:issuer": ("C=US, O=Example Corp, CN=Example Issuing CA",),
            CERT_SHA1: ("2fd4e1c67a2d28fced849ee1bb76e7391b93eb12",)}),
        ("6", us("2024-03-04T09:00:05+00:00"), {
            V4: ("198.51.100.20", "192.0.2.10"), SRC: ("198.51.100.20",), DST: ("192.0.2.10",),
            SPORT: (80,), DPORT: (49200,), PROTO: ("TCP",), DOMAIN: ("www.example.com",),
            URL: ("http://www.example.com/download/setup.exe",), "file:name": ("/download/setup.exe",),
            MD5: (EMPTY_MD5,), SHA1: (EMPTY_SHA1,), SHA256: (EMPTY_SHA256,)}),
        ("7", us("2024-03-04T09:00:06+00:00"), {
            V4: ("192.0.2.13", "203.0.113.66"), SRC: ("192.0.2.13",), DST: ("203.0.113.66",),
            SPORT: (49210,), DPORT: (80,), PROTO: ("TCP",), DOMAIN: ("c2.example.org",),
            URL: ("http://c2.example.org/beacon",)}),
        ("8", us("2024-03-04T09:00:07+00:00"), {
            V4: ("203.0.113.25", "192.0.2.25"), SRC: ("203.0.113.25",), DST: ("192.0.2.25",),
            SPORT: (50012,), DPORT: (25,), PROTO: ("TCP",),
            "email-message:from_ref.value": ("billing@example.net",),
            "email-message:subject": ("Invoice overdue",),
            EMAIL: ("billing@example.net", "alice@example.org", "bob@example.org", "carol@example.org"),
            "file:name": ("invoice.zip",), URL: ("http://pay.example.net/invoice",),
            DOMAIN: ("pay.example.net",)}),
    ]
    assert report.events == 8
    assert report.skipped == {"no observables": 1}  # the stats event
    assert report.examples["no observables"].endswith("eve.json:9")


def test_eve_dns_version_1_answers_and_alert_queries(tmp_path: Path) -> None:
    lines = [
        '{"timestamp":"2024-03-04T09:00:00.000000+0000","event_type":"dns","src_ip":"192.0.2.53",'
        '"dest_ip":"192.0.2.10","proto":"UDP","dns":{"type":"answer","id":1,"rrname":"Example.COM",'
        '"rrtype":"AAAA","ttl":60,"rdata":"2001:db8::1"}}',
        '{"timestamp":"2024-03-04T09:00:01.000000+0000","event_type":"alert","src_ip":"192.0.2.10",'
        '"dest_ip":"192.0.2.53","proto":"UDP","alert":{"signature":"DNS query for a bad domain"},'
        '"dns":{"query":[{"type":"query","id":2,"rrname":"bad.example.net","rrtype":"A","tx_id":0}]}}',
    ]
    events, _ = read_all(write(tmp_path, "eve.json", "\n".join(lines) + "\n"))
    assert dict(events[0].values)[DOMAIN] == ("Example.COM",)  # as logged: case is the matcher's business
    assert dict(events[0].values)[V6] == ("2001:db8::1",)
    assert dict(events[1].values)[DOMAIN] == ("bad.example.net",)


# --- CSV and W3C ---------------------------------------------------------------------------------

def test_csv_proxy_export() -> None:
    events, report = read_all(DATA / "proxy.csv", format="csv")
    assert as_dicts(events) == [
        ("2", us("2024-03-04T09:00:00+00:00"), {
            V4: ("192.0.2.10", "198.51.100.20"), SRC: ("192.0.2.10",), DST: ("198.51.100.20",),
            URL: ("http://www.example.com/download/setup.exe",), DOMAIN: ("www.example.com",),
            USER: ("alice",)}),
        ("3", us("2024-03-04T09:00:01+00:00"), {  # CONNECT login.example.com:443
            V4: ("192.0.2.11", "198.51.100.30"), SRC: ("192.0.2.11",), DST: ("198.51.100.30",),
            DOMAIN: ("login.example.com",), USER: ("bob",)}),
        ("4", us("2024-03-04T09:00:02+00:00"), {
            V6: ("2001:db8::12", "2001:db8::99"), SRC: ("2001:db8::12",), DST: ("2001:db8::99",),
            URL: ("http://[2001:db8::99]:8080/a,b",)}),
    ]
    assert report.skipped == {}


def test_csv_dns_export_with_semicolons_and_spaced_names() -> None:
    events, report = read_all(DATA / "dns.csv", format="csv")
    assert as_dicts(events) == [
        ("2", 1709542800500000, {V4: ("192.0.2.10", "198.51.100.80", "198.51.100.81"), SRC: ("192.0.2.10",),
                                 DOMAIN: ("www.example.com", "cdn.example.net")}),
        ("3", 1709542801250000, {V4: ("192.0.2.11",), SRC: ("192.0.2.11",), DOMAIN: ("ipv6.example.org",),
                                 V6: ("2001:db8:beef::1",)}),
        ("4", 1709542802000000, {V4: ("192.0.2.12",), SRC: ("192.0.2.12",), DOMAIN: ("nxdomain.example",)}),
    ]
    assert report.skipped == {}


def test_w3c_iis_log() -> None:
    events, report = read_all(DATA / "iis.log", format="csv")
    assert as_dicts(events) == [
        ("5", us("2024-03-04T09:00:00+00:00"), {V4: ("203.0.113.45", "192.0.2.80"), SRC: ("203.0.113.45",),
                                                DST: ("192.0.2.80",), DPORT: (443,)}),
        ("6", us("2024-03-04T09:00:03+00:00"), {V4: ("203.0.113.46", "192.0.2.80"), SRC: ("203.0.113.46",),
                                                DST: ("192.0.2.80",), DPORT: (443,), USER: ("CORP\\alice",)}),
    ]
    assert report.skipped == {}


def test_w3c_proxy_log_rebuilds_urls_from_their_parts() -> None:
    events, report = read_all(DATA / "proxy-w3c.log", format="csv")
    values = [dict(event.values) for event in events]
    assert values[0] == {V4: ("192.0.2.10", "192.0.2.1"), SRC: ("192.0.2.10",), DST: ("192.0.2.1",),
                         DPORT: (80,), DOMAIN: ("www.example.com",),
                         URL: ("http://www.example.com/index.html",), USER: ("alice",)}
    assert URL not in values[1] and values[1][DOMAIN] == ("login.example.com",)  # a "tcp" tunnel
    assert values[2][URL] == ("http://c2.example.org:8080/beacon?q=1",)
    assert [event.time_us for event in events] == [us("2024-03-04T09:00:05+00:00"),
                                                    us("2024-03-04T09:00:06+00:00"),
                                                    us("2024-03-04T09:00:07+00:00")]
    assert report.skipped == {}


def test_csv_with_a_mapping_for_columns_no_one_names_so(tmp_path: Path) -> None:
    text = ('When,SourceAddr,Site,Verdict\n'
            '2024-03-04T09:00:00Z,192.0.2.10,portal.example.com,allow\n'
            'When,SourceAddr,Site,Verdict\n'  # exports joined together repeat their header
            '"2024-03-04T09:00:01Z","192.0.2.11","ftp.example.net, ftp2.example.net",block\n')
    mapping = {"sourceaddr": SRC, "Site": DOMAIN, "@time": "WHEN"}
    events, report = read_all(write(tmp_path, "export.csv", text), mapping=mapping)
    assert as_dicts(events) == [
        ("2", us("2024-03-04T09:00:00+00:00"), {V4: ("192.0.2.10",), SRC: ("192.0.2.10",),
                                                DOMAIN: ("portal.example.com",)}),
        ("4", us("2024-03-04T09:00:01+00:00"), {V4: ("192.0.2.11",), SRC: ("192.0.2.11",)}),
    ]
    # "ftp.example.net, ftp2.example.net" is not one host name: left out (not guessed at) and counted.
    assert report.skipped == {record.BAD_ADDRESS: 1}


# --- syslog ---------------------------------------------------------------------------------------

def test_syslog_rfc3164_and_rfc5424_lines() -> None:
    events, report = read_all(DATA / "messages", format="syslog")
    assert as_dicts(events) == [
        ("1", this_year_us(3, 4, "09:00:00"), {V4: ("203.0.113.45",)}),
        ("2", this_year_us(3, 4, "09:00:01"), {DOMAIN: ("www.example.com",), V4: ("192.0.2.10", "192.0.2.53")}),
        ("3", this_year_us(3, 4, "09:00:02"), {DOMAIN: ("ipv6.example.org",), V6: ("2001:db8::10",)}),
        ("4", this_year_us(3, 4, "09:00:03"), {V4: ("203.0.113.25",), DOMAIN: ("mail.example.net",),
                                               EMAIL: ("billing@example.net", "alice@example.org")}),
        ("6", this_year_us(3, 4, "09:00:05"), {URL: ("http://www.example.com/index.html",),
                                               DOMAIN: ("www.example.com",), V4: ("192.0.2.10", "198.51.100.20")}),
        # RFC 5424: the sending host (fw01.example.net) is the log's source, not an observable.
        ("7", us("2024-03-04T09:00:06.003+00:00"), {V4: ("198.51.100.99", "192.0.2.15")}),
        ("8", us("2024-03-04T09:00:07+00:00"), {URL: ("https://shop.example.com/cart?id=5",),
                                                DOMAIN: ("shop.example.com",), V6: ("2001:db8::77",)}),
    ]
    # Line 5 names only "apt-daily.service", line 9 nothing at all.
    assert report.skipped == {"no observables": 2}


def test_syslog_year_is_last_year_for_a_december_line_read_in_january() -> None:
    january = datetime(2025, 1, 2, 8, 0, tzinfo=timezone.utc)
    assert times.month_first("Dec 31 23:59:59", now=january) == us("2024-12-31T23:59:59+00:00")
    assert times.month_first("Jan  2 07:59:59", now=january) == us("2025-01-02T07:59:59+00:00")
    assert times.month_first("Feb 29 00:00:00", now=january) is None  # 2025 is no leap year


@pytest.mark.parametrize(("text", "expected"), [
    ("Accepted publickey for root from 192.0.2.1 port 22 ssh2", {V4: ["192.0.2.1"]}),
    ("version 1.2.3.4.5 and v10.0.0.1 are not addresses; 999.1.1.1 neither", {}),
    ("at 10:00:00 from 00:11:22:33:44:55 (a clock and a MAC)", {}),
    ("std::vector and a bare :: are not IPv6", {}),
    ("neighbour fe80::1%eth0 and 2001:db8::5.", {V6: ["fe80::1%eth0", "2001:db8::5"]}),
    ("loaded /etc/app.conf and started sshd.service, wrote app.log", {}),
    ("download from https://files.example.com/a.zip, then (evil.example.net).",
     {URL: ["https://files.example.com/a.zip"], DOMAIN: ["files.example.com", "evil.example.net"]}),
    ("user alice@example.org logged in", {}),
    ("query[A] 198.51.100.7 from 192.0.2.10", {V4: ["198.51.100.7", "192.0.2.10"]}),
    ("client asked host=intranet for sni=Login.Example.COM", {DOMAIN: ["intranet", "Login.Example.COM"]}),
    ("status=sent from=<a@example.net>, to=<b@example.org>", {EMAIL: ["a@example.net", "b@example.org"]}),
])
def test_free_text_extraction_is_conservative(text: str, expected: dict[str, list[str]]) -> None:
    found = record.Record()
    scan(text, found)
    assert found.values == expected


# --- CEF --------------------------------------------------------------------------------------------

def test_cef_lines_with_and_without_a_syslog_header() -> None:
    events, report = read_all(DATA / "cef.log", format="cef")
    assert as_dicts(events) == [
        ("1", this_year_us(3, 4, "09:00:09"), {
            V4: ("192.0.2.10", "198.51.100.66"), SRC: ("192.0.2.10",), DST: ("198.51.100.66",),
            SPORT: (1232,), DPORT: (445,), PROTO: ("TCP",)}),
        ("2", 1709542810000000, {
            "file:name": ("eicar.com",), SHA1: ("3395856CE81F2B7382DEE72602F798B642F14140",),
            USER: ("CORP\\alice",), URL: ("http://downloads.example.net/eicar.com",),
            DOMAIN: ("downloads.example.net",)}),
        ("3", us("2024-03-04T09:00:11+00:00"), {
            URL: ("https://c2.example.org/a=b?x=1",), DOMAIN: ("c2.example.org",),
            V4: ("192.0.2.12", "203.0.113.66"), SRC: ("192.0.2.12",), SPORT: (49333,),
            DST: ("203.0.113.66",), DPORT: (443,)}),
        ("4", us("2024-03-04T09:00:12+00:00"), {
            V6: ("2001:db8::10", "2001:db8::66"), SRC: ("2001:db8::10",), DST: ("2001:db8::66",),
            DPORT: (22,), DOMAIN: ("ws-17.corp.example.com",)}),
    ]
    assert report.skipped == {record.BAD_PORT: 1}  # spt=abc; the record was kept
    assert report.examples[record.BAD_PORT].endswith("cef.log:4")


def test_cef_extension_escapes_and_values_with_spaces() -> None:
    extension = parse_extension(r"msg=a\=b c\\d\nnext cs1Label=Policy name act=block request=http://x.example/?q=1")
    assert extension == {"msg": "a=b c\\d\nnext", "cs1Label": "Policy name", "act": "block",
                         "request": "http://x.example/?q=1"}


# --- JSON lines with a mapping ------------------------------------------------------------------------

def test_jsonl_by_mapping() -> None:
    events, report = read_all(DATA / "app.jsonl", format="jsonl", mapping=APP_MAPPING)
    assert as_dicts(events) == [
        ("1", us("2024-03-04T09:00:12+00:00"), {
            V4: ("192.0.2.10", "198.51.100.44"), SRC: ("192.0.2.10",), SPORT: (50123,),
            DOMAIN: ("vpn.example.com",), DPORT: (443,), URL: ("https://vpn.example.com/login",),
            USER: ("alice",)}),
        # Epoch milliseconds; an IPv6 address mapped to ipv4-addr goes where it belongs, and so
        # does an address given as a domain; a port written as a string is still a port.
        ("2", 1709542813000000, {
            V6: ("2001:db8::10", "2001:db8::44"), SRC: ("2001:db8::10",), SPORT: (50124,),
            V4: ("198.51.100.45",), USER: ("bob",)}),
    ]
    assert report.skipped == {"no observables": 1}


@pytest.mark.parametrize("value", [1709542813, 1709542813.25, "1709542813", 1709542813000,
                                   1709542813000000, 1709542813000000000, "2024-03-04T09:00:13Z",
                                   "2024-03-04T10:00:13+01:00", "2024-03-04 09:00:13"])
def test_jsonl_time_in_seconds_milliseconds_microseconds_nanoseconds_or_iso(tmp_path: Path, value: object) -> None:
    line = '{"t": %s, "ip": "192.0.2.1"}\n' % (f'"{value}"' if isinstance(value, str) else value)
    events, report = read_all(write(tmp_path, "a.jsonl", line), mapping={"@time": "t", "ip": V4})
    expected = 1709542813250000 if value == 1709542813.25 else 1709542813000000
    assert events[0].time_us == expected and report.skipped == {}


def test_jsonl_fans_out_over_lists_and_finds_dotted_keys(tmp_path: Path) -> None:
    line = ('{"answers": [{"data": "198.51.100.1"}, {"data": "2001:db8::1"}], "id.resp_h": "192.0.2.9",'
            ' "asn": "AS64496"}\n')
    mapping = {"answers.data": V4, "id.resp_h": DST, "asn": "autonomous-system:number"}
    events, _ = read_all(write(tmp_path, "a.jsonl", line), format="jsonl", mapping=mapping)
    assert dict(events[0].values) == {V4: ("198.51.100.1", "192.0.2.9"), V6: ("2001:db8::1",),
                                      DST: ("192.0.2.9",), "autonomous-system:number": (64496,)}


def test_caller_mistakes_raise_at_once() -> None:
    report = ReadReport()
    with pytest.raises(ValueError, match="unknown log format"):
        read(["x"], format="nginx", report=report)
    with pytest.raises(ValueError, match="is not a path events carry"):
        read(["x"], mapping={"ip": "ipv4-addr:val"}, report=report)
    with pytest.raises(ValueError, match="needs a mapping"):
        read(["x"], format="jsonl", report=report)
    assert report == ReadReport()  # nothing was read


# --- auto-detection ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "expected"), [
    ("conn.log", "zeek"), ("dns.log", "zeek"), ("http.log", "zeek"), ("ssl.log", "zeek"),
    ("files.log", "zeek"), ("x509.log", "zeek"), ("eve.json", "eve"), ("proxy.csv", "csv"),
    ("dns.csv", "csv"), ("iis.log", "csv"), ("proxy-w3c.log", "csv"), ("messages", "syslog"),
    ("cef.log", "cef"), ("app.jsonl", "jsonl"),
])
def test_auto_detects_each_format_and_reads_as_the_format_would(name: str, expected: str) -> None:
    found, _ = sniff.sniff(sources.lines(DATA / name, report=ReadReport()), APP_MAPPING)
    assert found == expected
    auto, auto_report = read_all(DATA / name, mapping=APP_MAPPING)
    explicit, explicit_report = read_all(DATA / name, format=expected, mapping=APP_MAPPING)
    assert auto == explicit and auto and auto_report == explicit_report


@pytest.mark.parametrize(("first_lines", "expected"), [
    (ZEEK_JSON, "zeek"),
    ('{"ts":1709546400.1,"uid":"C1","id":{"orig_h":"192.0.2.1","resp_h":"192.0.2.2"}}\n', "zeek"),
    ('\n# exported\n{"truncated": \n{"timestamp":"2024-03-04T09:00:00Z","event_type":"flow"}\n', "eve"),
    ("ts,src_ip,qname\n", "csv"),
    ("Time\tClient\tURL\n", "csv"),
    ("#Fields: date time c-ip cs-host\n", "csv"),
    ('<134>1 2024-03-04T09:00:12Z fw02 CEF - - - CEF:0|V|P|1|5|x|3|src=192.0.2.1\n', "cef"),
    ("Mar  4 09:00:00 gw01 kernel: eth0: link up, 1000 Mbps\n", "syslog"),
    ("hello, world\n", "syslog"),
])
def test_auto_detection_by_first_lines(tmp_path: Path, first_lines: str, expected: str) -> None:
    found, lines = sniff.sniff(sources.lines(write(tmp_path, "log", first_lines), report=ReadReport()), None)
    assert found == expected
    assert "".join(line.text + "\n" for line in lines) == first_lines  # nothing lost by peeking


def test_auto_json_lines_without_a_mapping_are_counted_once(tmp_path: Path) -> None:
    path = write(tmp_path, "app.jsonl", (DATA / "app.jsonl").read_bytes())
    events, report = read_all(path, DATA / "conn.log")
    assert len(events) == 3  # the Zeek log after it is still read
    assert report.skipped == {NEED_MAPPING: 1} and report.examples[NEED_MAPPING] == str(path)


# --- gzip and standard input -----------------------------------------------------------------------------

def test_gzip_is_known_by_its_magic_bytes_not_its_name(tmp_path: Path) -> None:
    plain, _ = read_all(DATA / "eve.json")
    packed = gzip.compress((DATA / "eve.json").read_bytes())
    for name in ("eve.json.gz", "eve.json", "rotated.1"):
        events, report = read_all(write(tmp_path, name, packed))
        assert [dict(e.values) for e in events] == [dict(e.values) for e in plain]
        assert report.skipped == {"no observables": 1}
    events, _ = read_all(write(tmp_path, "not-really.gz", (DATA / "eve.json").read_bytes()))
    assert len(events) == len(plain)


def test_gzip_members_joined_together_are_all_read(tmp_path: Path) -> None:
    data = gzip.compress((DATA / "conn.log").read_bytes()) + gzip.compress((DATA / "dns.log").read_bytes())
    events, report = read_all(write(tmp_path, "joined.gz", data))
    assert len(events) == 6 and report.skipped == {}


@pytest.mark.parametrize("packed", [False, True])
def test_standard_input_is_read_as_bytes(monkeypatch: pytest.MonkeyPatch, packed: bool) -> None:
    data = (DATA / "cef.log").read_bytes()
    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=io.BytesIO(gzip.compress(data) if packed else data)))
    events, report = read_all("-")
    assert len(events) == 4 and events[0].source == "<stdin>:1"
    assert report.skipped == {record.BAD_PORT: 1}


def test_standard_input_from_a_real_pipe() -> None:
    code = ("import sys\nfrom communique.detect.events import ReadReport\n"
            "from communique.detect.logs import read\nreport = ReadReport()\n"
            "print(sorted(v for e in read(['-'], report=report) for v in e.values.get('domain-name:value', ())))")
    data = gzip.compress((DATA / "dns.log").read_bytes())
    done = subprocess.run([sys.executable, "-c", code], input=data, capture_output=True, timeout=60, check=True)
    assert done.stdout.decode().strip() == "['bücher.example.com', 'cdn.example.net', 'ipv6.example.org', " \
                                           "'www.example.com']"


# --- awkward input: counted, never raised -------------------------------------------------------------------

def test_truncated_last_line(tmp_path: Path) -> None:
    eve = (DATA / "eve.json").read_bytes()
    events, report = read_all(write(tmp_path, "eve.json", eve[:eve.rindex(b"\n", 0, -1) + 40]))
    assert len(events) == 8 and report.skipped == {"invalid JSON": 1}
    conn = (DATA / "conn.log").read_bytes()
    events, report = read_all(write(tmp_path, "conn.log", conn[:conn.index(b"\n#close") - 20]))
    assert len(events) == 2 and report.skipped == {"wrong number of columns": 1}
    assert report.examples["wrong number of columns"].endswith("conn.log:11")


def test_invalid_utf8_is_read_with_replacement_characters_and_counted(tmp_path: Path) -> None:
    text = "Mar  4 09:00:00 fs01 smbd[42]: Benutzer Müller an 192.0.2.3 angemeldet\n".encode("latin-1")
    events, report = read_all(write(tmp_path, "messages", text + b"Mar  4 09:00:01 fs01 smbd[42]: ok 192.0.2.4\n"))
    assert [dict(e.values) for e in events] == [{V4: ("192.0.2.3",)}, {V4: ("192.0.2.4",)}]
    assert report.skipped == {record.REPLACED: 1} and report.events == 2


def test_missing_fields_and_wrong_numbers_of_columns(tmp_path: Path) -> None:
    eve = ('{"timestamp":"2024-03-04T09:00:00Z","event_type":"flow","dest_ip":"198.51.100.1"}\n'
           '{"timestamp":"2024-03-04T09:00:00Z","event_type":"http","http":{}}\n'
           '["not", "an", "object"]\n')
    events, report = read_all(write(tmp_path, "eve.json", eve))
    assert [dict(e.values) for e in events] == [{V4: ("198.51.100.1",), DST: ("198.51.100.1",)}]
    assert report.skipped == {"no observables": 1, "JSON value is not an object": 1}
    csv_text = "time,src_ip,host\n2024-03-04T09:00:00Z,192.0.2.1\n2024-03-04T09:00:00Z,192.0.2.1,a.example,x\n"
    events, report = read_all(write(tmp_path, "dns.csv", csv_text))
    assert events == [] and report.skipped == {"wrong number of columns": 2}
    zeek = zeek_tsv("conn", CONN_FIELDS, CONN_TYPES, ["1709546400.0|C1|192.0.2.1|1|192.0.2.2"])
    events, report = read_all(write(tmp_path, "conn.log", zeek))
    assert events == [] and report.skipped == {"wrong number of columns": 1}


def test_ports_that_are_not_numbers_are_left_out_and_counted(tmp_path: Path) -> None:
    eve = ('{"timestamp":"2024-03-04T09:00:00Z","event_type":"flow","src_ip":"192.0.2.1","src_port":"http",'
           '"dest_ip":"192.0.2.2","dest_port":70000}\n')
    events, report = read_all(write(tmp_path, "eve.json", eve))
    assert SPORT not in events[0].values and DPORT not in events[0].values
    assert report.skipped == {record.BAD_PORT: 1}  # one record, noted once
    zeek = zeek_tsv("conn", CONN_FIELDS, CONN_TYPES,
                    ["1709546400.0|C1|192.0.2.1|x1|192.0.2.2|53|udp|dns|-|-|-|SF|T|F|0|Dd|1|82|1|146|-"])
    events, report = read_all(write(tmp_path, "conn.log", zeek))
    assert dict(events[0].values)[DPORT] == (53,) and SPORT not in events[0].values
    assert report.skipped == {record.BAD_PORT: 1}


@pytest.mark.parametrize("stamp", ['"1970-01-01T00:00:00Z"', '"9999-12-31T23:59:59Z"', '"yesterday"', "17", "null"])
def test_absurd_or_unreadable_times_are_left_out_and_counted(tmp_path: Path, stamp: str) -> None:
    line = '{"timestamp":%s,"event_type":"flow","src_ip":"192.0.2.1"}\n' % stamp
    events, report = read_all(write(tmp_path, "eve.json", line))
    assert events[0].time_us is None and dict(events[0].values)[V4] == ("192.0.2.1",)
    assert report.skipped == ({} if stamp == "null" else {record.BAD_TIME: 1})


def test_absurd_times_in_zeek_csv_and_syslog(tmp_path: Path) -> None:
    zeek = zeek_tsv("conn", CONN_FIELDS, CONN_TYPES,
                    ["99999999999.0|C1|192.0.2.1|1|192.0.2.2|53|udp|dns|-|-|-|SF|T|F|0|Dd|1|82|1|146|-"])
    logs = [write(tmp_path, "conn.log", zeek),
            write(tmp_path, "proxy.csv", "time,src_ip\n31/02/2024 10:00,192.0.2.1\n"),
            write(tmp_path, "messages", "Feb 30 10:00:00 gw01 sshd[1]: from 192.0.2.1\n")]
    events, report = read_all(*logs)
    assert [event.time_us for event in events] == [None, None, None]
    assert report.skipped == {record.BAD_TIME: 3} and report.events == 3


def test_an_extremely_long_line_is_skipped_and_reading_goes_on(tmp_path: Path) -> None:
    data = (b"Mar  4 09:00:00 gw01 app: from 192.0.2.1\n" + b"x" * (sources.MAX_LINE * 3) +
            b" 192.0.2.99\nMar  4 09:00:01 gw01 app: from 192.0.2.2\n" + b"y" * (sources.MAX_LINE + 1))
    events, report = read_all(write(tmp_path, "messages", data))
    assert [(e.source.rsplit(":", 1)[1], dict(e.values)) for e in events] == [
        ("1", {V4: ("192.0.2.1",)}), ("3", {V4: ("192.0.2.2",)})]
    assert report.skipped == {"line longer than 1 MiB": 2}
    assert report.examples["line longer than 1 MiB"].endswith("messages:2")


def test_binary_garbage(tmp_path: Path) -> None:
    with_nuls = bytes(byte for byte in range(256) if byte != ord("\n")) * 64
    not_utf8 = bytes(range(128, 256)) * 32
    garbage = with_nuls + b"\n" + not_utf8
    events, report = read_all(write(tmp_path, "core", garbage), write(tmp_path, "eve.json", b"\x00" * 100))
    assert events == []
    assert report.skipped == {"binary data": 3}


def test_empty_files(tmp_path: Path) -> None:
    events, report = read_all(write(tmp_path, "empty.log", b""), write(tmp_path, "empty.gz", gzip.compress(b"")),
                              write(tmp_path, "blank.log", b"\n\n  \n"), format="auto")
    assert events == [] and report.skipped == {"empty file": 2}
    for format_ in ("zeek", "eve", "csv", "syslog", "cef", "jsonl"):
        events, report = read_all(write(tmp_path, "empty.log", b""), format=format_, mapping={"ip": V4})
        assert events == [] and report.skipped == {"empty file": 1}


def test_a_gzip_stream_that_ends_early_keeps_what_was_read(tmp_path: Path) -> None:
    whole = (DATA / "eve.json").read_bytes() * 200
    cut = gzip.compress(whole)[:3000]
    events, report = read_all(write(tmp_path, "eve.json.gz", cut))
    assert events and len(events) < 1600
    assert report.skipped["gzip stream ended early"] == 1
    assert set(report.skipped) <= {"gzip stream ended early", "invalid JSON", "no observables"}
    header_only, report = read_all(write(tmp_path, "header.gz", gzip.compress(b"x" * 1000)[:10]))
    assert header_only == [] and report.skipped == {"gzip stream ended early": 1, "empty file": 1}


def test_corrupt_gzip_and_trailing_bytes(tmp_path: Path) -> None:
    packed = bytearray(gzip.compress((DATA / "conn.log").read_bytes()))
    packed[20:30] = b"\xff" * 10
    events, report = read_all(write(tmp_path, "bad.gz", bytes(packed)))
    assert report.skipped.get("corrupt gzip data") == 1
    events, report = read_all(write(tmp_path, "padded.gz", gzip.compress((DATA / "conn.log").read_bytes())
                                    + b"\x00" * 512))
    assert len(events) == 3 and report.skipped == {"trailing data after gzip stream": 1}


def test_sources_that_cannot_be_opened(tmp_path: Path) -> None:
    events, report = read_all(tmp_path / "missing.log", tmp_path, DATA / "conn.log")
    assert len(events) == 3
    assert report.skipped == {"cannot open source": 2}


def test_records_without_their_header(tmp_path: Path) -> None:
    logs = [write(tmp_path, "conn.log", "1709546400.0\tC1\t192.0.2.1\n"),
            write(tmp_path, "iis.log", "2024-03-04 09:00:00 192.0.2.80 GET /\n"),
            write(tmp_path, "cef.log", "CEF:0|Vendor|Product|1.0|100|truncated\nnot cef at all\n"),
            write(tmp_path, "export.csv", "colour,size\nred,1\n")]
    events, report = read_all(logs[0], format="zeek")
    assert report.skipped == {"Zeek record before its #fields header": 1}
    events, report = read_all(logs[1], format="csv")
    assert report.skipped == {"CSV header names no known column": 1}
    events, report = read_all(write(tmp_path, "w3c.log", "#Version: 1.0\n2024-03-04 09:00:00 192.0.2.80\n"))
    assert report.skipped == {"W3C record before its #Fields header": 1}
    events, report = read_all(logs[2], format="cef")
    assert report.skipped == {"CEF header incomplete": 1, "no CEF header": 1}
    events, report = read_all(logs[3], format="csv")
    assert events == [] and report.skipped == {"CSV header names no known column": 1}


# --- no input makes reading raise ------------------------------------------------------------------

FUZZ = settings(max_examples=150, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SAMPLES = ("conn.log", "dns.log", "http.log", "x509.log", "eve.json", "proxy.csv", "dns.csv", "iis.log",
           "proxy-w3c.log", "messages", "cef.log", "app.jsonl")
FUZZ_KEYS = ("timestamp", "event_type", "src_ip", "dest_ip", "src_port", "dest_port", "dns", "http", "tls",
             "fileinfo", "email", "rrname", "answers", "grouped", "rdata", "hostname", "url", "sni",
             "fingerprint", "ts", "_path", "id.orig_h", "id.resp_p", "query", "host", "uri", "san.dns",
             "@timestamp", "client", "ip", "port")


def _edited(sample: str) -> st.SearchStrategy[bytes]:
    """A sample log with bytes cut out and others put in."""
    original = (DATA / sample).read_bytes()
    edits = st.lists(st.tuples(st.integers(0, len(original)), st.integers(0, 40),
                               st.binary(max_size=12) | st.sampled_from([b"\t", b"\n", b"\\x", b"|", b"=", b'"'])),
                     max_size=8)

    def apply(changes: list[tuple[int, int, bytes]]) -> bytes:
        data = bytearray(original)
        for at, cut, new in changes:
            data[at:at + cut] = new
        return bytes(data)

    return edits.map(apply)


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
    | st.sampled_from(["192.0.2.1", "2001:db8::1", "-", "(empty)", "www.example.com", "http://[::1", "80"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(FUZZ_KEYS), inner, max_size=4),
    max_leaves=12)


def _read_stdin(data: bytes, format_: str) -> ReadReport:
    """Read bytes given on standard input; check every event holds only strings and integers."""
    report = ReadReport()
    saved = sys.stdin
    sys.stdin = types.SimpleNamespace(buffer=io.BytesIO(data))  # type: ignore[assignment]
    try:
        mapping = {"@time": "@timestamp", "client.ip": SRC, "client.port": SPORT, "url": URL, "host": DOMAIN}
        for event in read(["-"], format=format_, mapping=mapping, report=report):
            for values in event.values.values():
                assert values and all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in values)
    finally:
        sys.stdin = saved
    return report


@FUZZ
@given(data=st.binary(max_size=3000) | st.sampled_from(SAMPLES).flatmap(_edited),
       format_=st.sampled_from(["auto", "zeek", "eve", "csv", "syslog", "cef", "jsonl"]))
def test_no_bytes_make_reading_raise(data: bytes, format_: str) -> None:
    _read_stdin(data, format_)


@FUZZ
@given(document=st.dictionaries(st.sampled_from(FUZZ_KEYS), _JSON_VALUES, max_size=8),
       format_=st.sampled_from(["auto", "zeek", "eve", "jsonl"]))
def test_no_json_shape_makes_reading_raise(document: dict[str, object], format_: str) -> None:
    report = _read_stdin(json.dumps(document).encode() + b"\n", format_)  # NaN and huge integers too
    # One line: either an event or one reason it was skipped (notes on kept records aside).
    assert report.events + sum(n for why, n in report.skipped.items() if "record kept" not in why) == 1


# --- streaming --------------------------------------------------------------------------------------

class _EndlessLog:
    """Standard input that makes up syslog lines on demand, and counts the bytes it hands out."""

    def __init__(self, lines: int) -> None:
        self.remaining = lines
        self.handed_out = 0
        self.line = b"Mar  4 09:00:00 gw01 sshd[1]: Failed password from 203.0.113.45 port 22\n"

    def read1(self, size: int) -> bytes:
        count = min(self.remaining, max(1, size // len(self.line)))
        self.remaining -= count
        self.handed_out += count * len(self.line)
        return self.line * count

    read = read1


def test_reading_streams_instead_of_loading_the_whole_input(monkeypatch: pytest.MonkeyPatch) -> None:
    log = _EndlessLog(lines=10_000_000)  # about 700 MB, never made whole
    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=log))
    events = read(["-"], report=ReadReport())
    first = next(events)
    assert dict(first.values) == {V4: ("203.0.113.45",)}
    assert log.handed_out <= 2 * sources.CHUNK
    for _ in range(10_000):
        next(events)
    assert log.handed_out < 2 * sources.CHUNK + 10_001 * len(log.line)
    events.close()


def test_a_file_is_read_lazily_and_closed_when_reading_stops(tmp_path: Path) -> None:
    path = write(tmp_path, "big.log", b"Mar  4 09:00:00 gw01 app: from 192.0.2.1\n" * 200_000)
    events = read([path], report=ReadReport())
    assert not _is_open(path)  # nothing happens before the first event is asked for
    next(events)
    assert _is_open(path)
    events.close()
    assert not _is_open(path)


def _is_open(path: Path) -> bool:
    """Tell whether this process holds a file open (Linux only; elsewhere, say no)."""
    descriptors = Path("/proc/self/fd")
    if not descriptors.is_dir():
        return False
    links = []
    for fd in descriptors.iterdir():
        try:
            links.append(os.readlink(fd))
        except OSError:
            continue
    return str(path) in links
