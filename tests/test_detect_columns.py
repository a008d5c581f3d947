"""Columnar batches and the fast scan of logs: the same events, the same report and the same
matches as reading records one by one, whatever the input."""

from __future__ import annotations

import gzip
import io
import json
import random
import sys
import types
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from communique.detect.columns import Batch, Column, Field
from communique.detect.engine import Engine
from communique.detect.events import Event, ReadReport
from communique.detect.logs import quick, read, scan, timecheck, times, zeek_fields
from communique.detect.logs.roles import apply_role, pairs_of
from communique.detect.logs.record import Record

DATA = Path(__file__).parent / "data" / "logs"
SAMPLES = sorted(path.name for path in DATA.iterdir())
MAPPING = {"@time": "@timestamp", "client.ip": "network-traffic:src_ref.value",
           "client.port": "network-traffic:src_port", "destination.domain": "domain-name:value",
           "destination.ip": "ipv4-addr:value", "destination.port": "network-traffic:dst_port",
           "url.full": "url:value", "user.name": "user-account:user_id"}
FUZZ = settings(max_examples=120, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def scanned(sources: list, **options: object) -> tuple[list[Batch], ReadReport]:
    report = ReadReport()
    return list(scan(sources, report=report, **options)), report  # type: ignore[arg-type]


def check_same(sources: list, size: int = 10_000, **options: object) -> list[Batch]:
    """Scan and read the same sources: same events, same report; every batch's columns add
    exactly what its events hold, slot by slot."""
    expected_report = ReadReport()
    expected = list(read(sources, report=expected_report, **options))  # type: ignore[arg-type]
    batches, report = scanned(sources, size=size, **options)
    got = [event for batch in batches for _, event in batch.events()]
    assert got == expected
    assert report == expected_report
    for batch in batches:
        assert_columns_hold_the_events(batch)
    return batches


def assert_columns_hold_the_events(batch: Batch) -> None:
    added: dict[int, set] = {}
    for column in batch.columns:
        for slot, value in column.items():
            added.setdefault(slot, set()).update(column.field.derived(value)[0])
    kept = set(batch.kept)
    for slot in range(batch.size):
        event = batch.event(slot) if slot in kept else None
        expected = {(path, value) for path, seen in event.values.items() for value in seen} if event else set()
        assert added.get(slot, set()) == expected, (slot, event)


def write(tmp_path: Path, name: str, data: bytes | str) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


# -- batches and columns ---------------------------------------------------------------
def test_a_batch_of_events_has_a_column_per_path() -> None:
    events = [Event(1, {"ipv4-addr:value": ("192.0.2.1", "192.0.2.2")}, "a:1"),
              Event(2, {"domain-name:value": ("x.example",)}, "a:2"),
              Event(3, {"ipv4-addr:value": ("192.0.2.2",)}, "a:3")]
    batch = Batch.of(events)
    by_path = {next(iter(column.field.paths)): column for column in batch.columns}
    assert by_path["ipv4-addr:value"].distinct() == {"192.0.2.1", "192.0.2.2"}
    assert sorted(by_path["ipv4-addr:value"].slots_of({"192.0.2.2"})) == [0, 2]
    assert list(by_path["domain-name:value"].items()) == [(1, "x.example")]
    assert batch.count == 3 and batch.event(1) is events[1]
    assert [slot for slot, _ in batch.events()] == [0, 1, 2]


def test_dense_and_sparse_columns_find_their_slots() -> None:
    field = Field.of_path("file:name")
    dense = Column(field, ["a", None, "b", "a", None])
    assert dense.distinct() == {"a", "b"}
    assert sorted(dense.slots_of({"a"})) == [0, 3]
    assert sorted(dense.slots_of({"a", "b", "c", "d", "e"})) == [0, 2, 3]
    sparse = Column(field, ["a", "b", "a"], [4, 4, 9])
    assert sorted(sparse.slots_of({"a"})) == [4, 9]
    assert list(sparse.items()) == [(4, "a"), (4, "b"), (9, "a")]


# -- scan is read, in columns ------------------------------------------------------------
@pytest.mark.parametrize("name", SAMPLES)
@pytest.mark.parametrize("size", [1, 2, 10_000])
def test_every_sample_scans_as_it_reads(name: str, size: int) -> None:
    check_same([DATA / name], mapping=MAPPING, size=size)


def test_formats_named_and_several_sources_at_once(tmp_path: Path) -> None:
    joined = write(tmp_path, "joined.log", (DATA / "conn.log").read_bytes() + (DATA / "dns.log").read_bytes()
                   + (DATA / "http.log").read_bytes())
    check_same([joined], format="zeek", size=2)
    check_same([DATA / "eve.json", DATA / "conn.log", tmp_path / "missing", DATA / "messages"], size=3)
    check_same([DATA / "eve.json"], format="eve", size=4)
    check_same([DATA / "app.jsonl"], format="jsonl", mapping=MAPPING)
    zeek_json = write(tmp_path, "conn.json", "\n".join(json.dumps(line) for line in [
        {"ts": 1709546400.5, "_path": "conn", "id.orig_h": "192.0.2.1", "id.resp_h": "198.51.100.7",
         "id.resp_p": 443, "proto": "tcp"},
        {"ts": "2024-03-04T10:00:00Z", "id": {"orig_h": "192.0.2.2", "resp_h": "2001:db8::1"}, "uid": "C1"},
        {"ts": 1709546400.5, "_path": "dns", "query": "www.example.com", "answers": ["192.0.2.9", "x\\x41"]}]) + "\n")
    check_same([zeek_json], size=2)


def test_gzip_and_standard_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    packed = write(tmp_path, "eve.json.gz", gzip.compress((DATA / "eve.json").read_bytes() * 50)[:2500])
    check_same([packed], size=7)
    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=io.BytesIO((DATA / "conn.log").read_bytes())))
    batches, report = scanned(["-"])
    assert sum(batch.count for batch in batches) == 3 and report.events == 3


def test_hostile_lines_are_counted_as_read_counts_them(tmp_path: Path) -> None:
    eve = (DATA / "eve.json").read_bytes()
    lines = eve.split(b"\n")
    hostile = b"\n".join([
        b"\xef\xbb\xbf" + lines[0], lines[1] + b"\r", lines[2][:-30],  # BOM, CRLF, truncated
        lines[3].replace(b"update", b"upd\\u00e4te").replace(b"8080", b"true"),  # escape, odd port
        lines[4].replace(b'"TCP"', b'["TCP"]'), b"   ", b"[1, 2]", b"\x00\x01 binary",
        lines[5].replace(b"www", b"w\xffw"), lines[6].replace(b'"192.0.2.13"', b'"192.0.2.13:80"'),
        b'{"timestamp":"2024-02-29T09:00:00.000000+0000","src_ip":"2001:DB8::1","src_port":1.0}',
        b'{"timestamp":"2024-02-30T09:00:00.000000+0000","src_ip":"not an address","dest_port":70000}',
        b'{"timestamp":17,"dest_ip":"198.51.100.9","src_port":true,"proto":"UDP"}',
        b'{"src_ip":"-","dns":{"rrname":"","answers":[{"rdata":"TXT stuff"},"x",{"rdata":"a..b"}]}}',
        b'{"src_ip":"192.0.2.1","fileinfo":{"md5":"XYZ","sha256":"-"},"tls":{"fingerprint":":"}}',
        b'{"src_ip":"192.0.2.1","http":{"hostname":"a.example:8080","url":"http://B.example/x"}}',
        b'{"src_ip":"192.0.2.1","http":{"hostname":"c.example","url":"/y","http_port":"81"}}',
        b'{"src_ip":"192.0.2.1","smtp":{"rcpt_to":["<a@b.example>", 7]},"email":{"from":["x"]}}',
        *lines[7:], b"x" * (2 << 20), lines[1]])
    for size in (1, 5, 1000):
        check_same([write(tmp_path, "eve.json", hostile)], format="eve", size=size)
        check_same([write(tmp_path, "eve2.json", hostile)], size=size)


def test_hostile_zeek_records(tmp_path: Path) -> None:
    conn = (DATA / "conn.log").read_text()
    rows = conn.split("\n")
    data_rows = [row for row in rows if row and not row.startswith("#")]
    hostile = "\n".join(rows[:8] + [
        data_rows[0], data_rows[1].replace("2001:db8::10", "2001:DB8::10"), data_rows[2][:-10], "",
        "\t".join(["x"] * 21), data_rows[0].replace("192.0.2.10", "\\x31\\x39\\x32.0.2.10"),
        data_rows[0].replace("49152", "(empty)").replace("443", "99999"), "  " + data_rows[0],
        '{"ts":1709546400.5,"id.orig_h":"192.0.2.99","_path":"conn"}', "#path\tdns",
        "#fields\tts\tuid\tid.orig_h\tquery\tanswers\tquery",
        "1709546400.0\tC1\t192.0.2.1\twww.example.com\ta.example,192.0.2.7\tdup.example",
        "#fields\tts\tuid\tid.orig_h\tquery\tanswers", "#types\ttime\tstring\taddr\tstring\tvector[string]",
        "1709546400.0\tC1\t192.0.2.1\tb\\xc3\\xbccher.example\t(empty)",
        "99999999999.0\tC2\t-\t-\tcdn.example,,-", "1709546400.0\tC3\t192.0.2.1\tWWW.example.com.\t-",
    ]) + "\n"
    for size in (1, 3, 1000):
        check_same([write(tmp_path, "conn.log", hostile)], format="zeek", size=size)
        check_same([write(tmp_path, "conn2.log", hostile.encode() + b"\xff\xfe\n")], size=size)


def _edited(sample: str) -> st.SearchStrategy[bytes]:
    original = (DATA / sample).read_bytes() * 3
    edits = st.lists(st.tuples(st.integers(0, len(original)), st.integers(0, 40),
                               st.binary(max_size=12) | st.sampled_from(
                                   [b"\t", b"\n", b"\\x", b'"', b"-", b"(empty)", b"\r", b"\x00", b"\xff",
                                    b"{", b"}", b",", b"true", b"1.0", b"[]", b'"src_port":true,',
                                    b"#path\tdns\n", b"#fields\tts\tid.orig_h\n", b"\\u00ff"])),
                     max_size=8)

    def apply(changes: list[tuple[int, int, bytes]]) -> bytes:
        data = bytearray(original)
        for at, cut, new in changes:
            data[at:at + cut] = new
        return bytes(data)

    return edits.map(apply)


@FUZZ
@given(data=st.sampled_from(["eve.json", "conn.log", "dns.log", "http.log", "ssl.log", "files.log",
                             "x509.log"]).flatmap(_edited),
       format_=st.sampled_from(["auto", "zeek", "eve"]), size=st.sampled_from([1, 3, 1000]))
def test_edited_samples_scan_as_they_read(tmp_path_factory: pytest.TempPathFactory, data: bytes,
                                          format_: str, size: int) -> None:
    path = tmp_path_factory.mktemp("edited") / "log"
    path.write_bytes(data)
    check_same([path], format=format_, size=size)


_SCALARS = (st.none() | st.booleans() | st.integers(-5, 70000) | st.floats(allow_nan=False) | st.text(max_size=12)
            | st.sampled_from(["192.0.2.1", "2001:db8::1", "-", "", "www.example.com", "WWW.Example.com.",
                               "http://a.example:8080/x", "/path", "80", "http", "answer",
                               "d41d8cd98f00b204e9800998ecf8427e", "aa:bb", "x@y.example",
                               "2024-03-04T10:00:00.123456+0100", "1709546400.5"]))
_KEYS = ("timestamp", "event_type", "src_ip", "dest_ip", "src_port", "dest_port", "proto", "dns", "http",
         "tls", "fileinfo", "smtp", "email", "rrname", "answers", "grouped", "rdata", "type", "queries",
         "query", "hostname", "url", "http_port", "sni", "subject", "issuerdn", "fingerprint", "filename",
         "md5", "sha1", "sha256", "mail_from", "rcpt_to", "from", "to", "cc", "attachment")
_VALUES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=3)
                       | st.dictionaries(st.sampled_from(_KEYS), inner, max_size=5), max_leaves=14)


@FUZZ
@given(documents=st.lists(st.dictionaries(st.sampled_from(_KEYS), _VALUES, max_size=9), min_size=1, max_size=12),
       size=st.sampled_from([1, 4, 1000]))
def test_any_eve_documents_scan_as_they_read(tmp_path_factory: pytest.TempPathFactory,
                                             documents: list[dict], size: int) -> None:
    path = tmp_path_factory.mktemp("eve") / "eve.json"
    path.write_text("\n".join(json.dumps(document) for document in documents) + "\n")
    check_same([path], format="eve", size=size)


# -- matching batches ----------------------------------------------------------------------
def test_scanned_batches_match_as_read_events_do(tmp_path: Path) -> None:
    """Indicators on every value the samples hold, and ranges, suffixes and scans besides:
    match_batch over scanned batches finds exactly what match_many finds over read events."""
    sources = [DATA / name for name in SAMPLES]
    events = list(read(sources, mapping=MAPPING, report=ReadReport()))
    engine = Engine()
    values = sorted({(path, value) for event in events for path, seen in event.values.items() for value in seen},
                    key=repr)
    for n, (path, value) in enumerate(values):
        literal = value if isinstance(value, int) else "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"
        engine.add(f"v{n}", f"[{path} = {literal}]")
    for n, pattern in enumerate([
            "[ipv4-addr:value ISSUBSET '198.51.100.0/24']", "[ipv6-addr:value ISSUBSET '2001:db8::/32']",
            "[domain-name:value LIKE '%.example.com']", "[url:value MATCHES '^http://[a-z.]+/gate']",
            "[network-traffic:protocols[*] = 'tcp']", "[network-traffic:protocols[0] = 'udp']",
            "[EXISTS file:name]", "[network-traffic:dst_port > 8000 AND network-traffic:dst_port < 9000]",
            "[x509-certificate:subject LIKE 'CN=login%']"]):
        assert engine.add(f"p{n}", pattern), engine.unsupported
    expected = [(events[position].source, indicator_id)
                for start in range(0, len(events), 7)
                for position, indicator_id in ((start + p, i) for p, i in engine.match_many(events[start:start + 7]))]
    for size in (1, 5, 10_000):
        batches, _ = scanned(sources, mapping=MAPPING, size=size)
        got = [(batch.event(slot).source, indicator_id)  # type: ignore[union-attr]
               for batch in batches for slot, indicator_id in engine.match_batch(batch)]
        assert got == expected
    assert len({indicator_id for _, indicator_id in expected}) > len(values) // 2


def test_a_new_indicator_drops_the_cached_verdicts() -> None:
    engine = Engine()
    engine.add("a", "[domain-name:value = 'a.example']")
    batch = Batch.of([Event(0, {"domain-name:value": ("B.example",)}, "x")])
    assert engine.match_batch(batch) == []
    engine.add("b", "[domain-name:value = 'b.example']")
    assert engine.match_batch(batch) == [(0, "b")]


# -- the shortcuts agree with the slow way ------------------------------------------------
_ROLES = [("host",), ("ip",), ("answer",), ("url",), ("endpoint", "src"), ("port", "dst"),
          ("add", "file:name"), ("hash", None, "file"), ("hash", "MD5", "file"),
          ("email", "email-addr:value")]
_TEXTS = st.text(alphabet="abcXYZ019.-:/[]@%? \t_\u00e9", max_size=25) | st.sampled_from([
    "192.0.2.1", "01.2.3.4", "256.1.1.1", "1.2.3", "2001:db8::1", "[2001:db8::1]:80", "a.example:80",
    "http://a.example/x", "https://1.2.3.4:8/", "http://A.example/", "http://h/", "http://a..b/",
    "http://a.example", "HTTP://a.example/", "http://a.example:x/", "http://user@a.example/", "65535",
    "65536", "00080", "\u0663", " 80", "-", "", "(empty)", "*.example.com", "x@y.example", "a b.example"])


@FUZZ
@given(role=st.sampled_from(_ROLES), value=_TEXTS | st.integers(-3, 70000))
def test_quick_derivations_are_what_a_record_makes(role: tuple, value: object) -> None:
    found = quick.derive(role, value)
    if found is not None:
        record = Record()
        apply_role(record, role, value)
        assert (set(found[0]), set(found[1])) == (set(pairs_of(record)), set(record.notes))


@pytest.mark.parametrize("kind, name", sorted(zeek_fields.ROLES))
def test_zeek_roles_are_what_fill_does_with_the_field_alone(kind: str, name: str) -> None:
    role = zeek_fields.ROLES[(kind, name)]
    for value in ["192.0.2.1", "2001:db8::1", "www.example.com", "443", "x", "tcp", "d41d8cd98f00b204e9800998ecf8427e",
                  "bad name!", "70000", "a.example:80", "setup.exe"]:
        for used_kind in ([kind] if kind else ["conn", "dns", "weird"]):
            by_fill, by_role = Record(), Record()
            zeek_fields.fill(by_fill, {name: value}, used_kind)
            apply_role(by_role, role, value)
            assert (by_fill.values, by_fill.notes) == (by_role.values, by_role.notes), (used_kind, name, value)


@FUZZ
@given(stamps=st.lists(st.builds(
    "{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}.{:06d}{}{:02d}{:02d}".format,
    st.sampled_from([1979, 1980, 2000, 2024, 2089, 2090, 2099, 2100]), st.integers(0, 13), st.integers(0, 32),
    st.integers(0, 25), st.integers(0, 61), st.integers(0, 61), st.integers(0, 999_999), st.sampled_from("+-"),
    st.integers(0, 25), st.integers(0, 61)), min_size=1, max_size=5))
def test_a_block_of_times_is_valid_only_when_each_is_readable(stamps: list[str]) -> None:
    if timecheck.iso8601_valid(stamps):
        assert all(times.iso8601(stamp) is not None for stamp in stamps)


def test_epoch_times_are_valid_only_in_their_layout() -> None:
    assert timecheck.epoch_valid(["1709546400.123456", "1999999999.000000"])
    for odd in (["1709546400.12345"], ["2709546400.123456"], ["-"], ["1709546400.12345a"], [17]):
        assert not timecheck.epoch_valid(odd)


def test_scanning_stops_reading_when_asked(tmp_path: Path) -> None:
    rng = random.Random(3)
    lines = [json.dumps({"timestamp": "2024-03-04T10:00:00.000000+0000", "event_type": "flow", "src_ip": f"192.0.2.{rng.randrange(256)}"})
             for _ in range(50_000)]
    path = write(tmp_path, "eve.json", "\n".join(lines) + "\n")
    report = ReadReport()
    batches = scan([path], report=report, size=1000)
    first = next(batches)
    assert first.count >= 1000 and report.events < 5000
    batches.close()


_PLAIN_CANDIDATES = _TEXTS | st.from_regex(r"[a-z0-9.-]{1,20}", fullmatch=True) | st.from_regex(
    r"https?://[a-z0-9.-]{1,12}(:[0-9]{1,5})?(/[a-zA-Z0-9._~%?=&/-]{0,12})?", fullmatch=True)


@FUZZ
@given(role=st.sampled_from(_ROLES + [("add", "x509-certificate:subject"), ("hash", "SHA-256", "file"),
                                      ("endpoint", "dst"), ("port", "src")]),
       values=st.sets(_PLAIN_CANDIDATES | st.integers(-3, 70000), max_size=6))
def test_plain_values_add_themselves_in_normal_form(role: tuple, values: set) -> None:
    from communique.detect.logs.roles import Fields
    from communique.detect.rules import normal

    field = Fields().role(role)
    for value in field.plain(values):
        record = Record()
        apply_role(record, role, value)
        pairs = pairs_of(record)
        assert pairs and not record.notes, (role, value)
        assert all(added == value and path in field.plain_paths and normal(path, value) == value
                   for path, added in pairs), (role, value, pairs)


@FUZZ
@given(path=st.sampled_from(["ipv4-addr:value", "domain-name:value", "file:hashes.'MD5'", "email-addr:value",
                             "network-traffic:dst_ref.value", "file:name", "network-traffic:dst_port"]),
       values=st.sets(_PLAIN_CANDIDATES | st.integers(-3, 70000), max_size=6))
def test_plain_event_values_are_in_normal_form(path: str, values: set) -> None:
    from communique.detect.rules import normal

    assert all(normal(path, value) == value for value in Field.of_path(path).plain(values))


@FUZZ
@given(url=_PLAIN_CANDIDATES)
def test_urls_taken_as_normal_are(url: str) -> None:
    from communique.detect import normalise
    from communique.detect.rules import PLAIN_URL

    if PLAIN_URL.match(url):
        assert normalise.url(url) == url
