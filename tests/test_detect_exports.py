"""Exports for sensors, SIEMs and blocklists: every format read back, hostile input kept in its place."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from stix2validator import ValidationOptions, validate_instance

from communique.detect import normalise
from communique.detect.engine import anchor_values
from communique.detect.exports import FORMATS, Item, write
from communique.detect.exports import suricata as suricata_format
from communique.detect.exports.common import classify
from communique.errors import BadRequest
from communique.stix.markings import TLP2_IDS, Tlp
from tests.support import indicator

NOW_US = 1_795_000_000_000_000
HOSTILE_NAMES = [
    'Evil "quoted"; sid:1; classtype:attempted-admin; content:"x"; \\',
    "two\nlines\tand a tab\r\x00\x1b[31m",
    "=cmd|' /C calc'!A0",
    "Кибератака 🐍 على",
    "x" * 10_000,
    ")",
]


def item(n: int, pattern: str, *, level: Tlp = Tlp.GREEN, name: str | None = None,
         producer: str = "CERT-EU", score: float = 80.0) -> Item:
    """Return an item as the caller builds it: a real indicator, its normalised anchors."""
    obj = indicator(n, pattern=pattern, object_marking_refs=[TLP2_IDS[level]],
                    name=name if name is not None else f"Indicator {n}")
    anchors = anchor_values(pattern) or []
    values = tuple((path, normalise.value(path, value)) for path, value in anchors)
    return Item(obj["id"], orjson.dumps(obj), level, values, score, obj["name"], producer)


def varied() -> list[Item]:
    """Return items of every kind of value, hostile names and values among them."""
    many = ", ".join(f"'10.{i // 250}.{i % 250}.1'" for i in range(1500))
    patterns = [
        "[ipv4-addr:value = '198.51.100.7' OR ipv6-addr:value = '2001:DB8::1']",
        "[ipv4-addr:value = '203.0.113.0/24' OR ipv6-addr:value = '2001:db8:1::/48']",
        "[domain-name:value = 'bücher.example']",
        "[domain-name:value = 'xn--80ak6aa92e.example' OR domain-name:value = '_dmarc.bad.example']",
        "[url:value = 'http://bad.example/path;x=1?q=\"a\"|b\\\\c']",
        "[url:value = 'https://Bad.Example:8443/a%2fb?c=%41']",
        "[url:value = 'ftp://files.bad.example/x']",
        "[file:hashes.'SHA-256' = '" + "A" * 64 + "' OR file:hashes.MD5 = '" + "b" * 32 + "']",
        "[x509-certificate:hashes.'SHA-1' = '" + "c" * 40 + "']",
        "[x509-certificate:hashes.'SHA-256' = '" + "d" * 64 + "']",
        "[email-addr:value = 'Phish@Bad.Example']",
        "[email-message:from_ref.value = 'boss@bad.example']",
        "[network-traffic:src_ref.value = '192.0.2.5']",
        "[network-traffic:dst_ref.value = 'c2.bad.example']",
        f"[ipv4-addr:value IN ({many})]",
        "[url:value = 'http://long.example/" + "a" * 7000 + "']",
    ]
    items = [item(n, p, name=HOSTILE_NAMES[n % len(HOSTILE_NAMES)],
                  producer='Org "X"; sid:2' if n % 3 else "=HYPERLINK(\"x\")")
             for n, p in enumerate(patterns)]
    items += [
        item(90, "[file:name LIKE '%.exe']"),  # not plain lookups
        item(91, "[mutex:name = 'Global\\\\x' OR network-traffic:dst_port = 443]"),
        item(92, "[ipv4-addr:value = '0.0.0.0/0' OR domain-name:value = 'com']"),  # too broad
        item(93, "[ipv4-addr:value = '999.1.1.1' OR domain-name:value = 'evil .example']"),
        item(94, "[url:value = 'http://bad.example/a b' OR email-addr:value = 'a b@x.example']"),
        item(95, "[ipv4-addr:value = '198.51.100.99']", level=Tlp.AMBER_STRICT),  # above level
        item(96, "[ipv4-addr:value = '198.51.100.7']"),  # a value met again
        item(97, "[email-addr:value = '#fields@bad.example']"),
    ]
    return items


def export(format: str, items: list[Item], level: Tlp = Tlp.AMBER) -> tuple[int, bytes]:
    out = io.BytesIO()
    count = write(format, items, out, level=level, generated_us=NOW_US, source="node.example")
    return count, out.getvalue()


def test_every_format_is_listed_with_its_media_type() -> None:
    assert set(FORMATS) == {"suricata", "zeek-intel", "csv", "stix", "misp", "plain"}
    assert all(f.media_type and f.extension for f in FORMATS.values())
    with pytest.raises(BadRequest, match="not an export format"):
        write("snort", [], io.BytesIO(), level=Tlp.CLEAR, generated_us=NOW_US, source="")
    with pytest.raises(BadRequest, match="RED"):
        write("csv", [], io.BytesIO(), level=Tlp.RED, generated_us=NOW_US, source="")


@pytest.mark.parametrize("path, value, expected", [
    ("ipv6-addr:value", "2001:DB8:0::1", ("ipv6", "2001:db8::1")),
    ("ipv4-addr:value", "198.51.100.0/24", ("ipv4-net", "198.51.100.0/24")),
    ("ipv4-addr:value", "198.51.100.7/32", ("ipv4", "198.51.100.7")),
    ("ipv4-addr:value", "10.0.0.0/7", "too broad"),
    ("ipv6-addr:value", "::1", "too broad"),
    ("ipv4-addr:value", "224.0.0.1", "too broad"),
    ("domain-name:value", "Bücher.Example.", ("domain", "xn--bcher-kva.example")),
    ("domain-name:value", "example", "too broad"),
    ("domain-name:value", "a\"b.example", "malformed"),
    ("domain-name:value", "x" * 64 + ".example", "malformed"),
    ("url:value", "http://x.example/a\u2028b", "malformed"),
    ("url:value", "x.example/path", "malformed"),
    ("file:hashes.'SHA-1'", "A" * 40, ("sha1", "a" * 40)),
    ("file:hashes.'SHA-1'", "g" * 40, "malformed"),
    ("file:hashes.'SSDEEP'", "3:abc:def", "unsupported"),
    ("email-addr:value", "a..b@x.example", "malformed"),
    ("network-traffic:dst_port", 443, "unsupported"),
])
def test_values_are_checked_before_export(path: str, value: object, expected: object) -> None:
    found = classify(path, value)
    assert (found if isinstance(found, str) else (found.kind, found.value)) == expected


# -- Suricata -------------------------------------------------------------------------
_OPTION = re.compile(r'\s*([a-z_.]+)(?::((?:[^;"\\]|\\.|"(?:[^"\\]|\\.)*")*))?;')


def options(rule: str) -> list[tuple[str, str]]:
    """Split a rule's options the way Suricata does: at each ``;`` not escaped."""
    body = rule[rule.index("(") + 1:rule.rindex(")")]
    found = _OPTION.findall(body)
    assert "".join(m.group(0) for m in _OPTION.finditer(body)).strip() == body.strip()
    return found


def rule_lines(text: bytes) -> list[str]:
    return [line for line in text.decode().splitlines() if line and not line.startswith("#")]


def test_suricata_rules_keep_hostile_names_and_values_in_their_place() -> None:
    count, text = export("suricata", varied())
    rules = rule_lines(text)
    assert count == len(rules) > 0
    assert text.decode().splitlines()[0].startswith("# TLP:AMBER - ")
    allowed = {"msg", "metadata", "sid", "rev", "content", "nocase", "bsize", "dns.query",
               "tls.sni", "http.host", "http.uri", "http.uri.raw", "tls.cert_fingerprint"}
    sids = []
    for rule in rules:
        assert len(rule.encode()) < 8000 and rule.isascii()
        found = options(rule)
        names = Counter(name for name, _ in found)
        assert set(names) <= allowed, rule
        assert names["msg"] == names["sid"] == names["rev"] == names["metadata"] == 1
        msg = dict(found)["msg"]
        assert msg.startswith('"Communique TLP:') and msg.count('"') == 2
        assert re.fullmatch(r"stix_id indicator--[0-9a-f-]{36}, tlp [a-z+]+, score \d+"
                            r"(, producer [A-Za-z0-9_.+-]+)?", dict(found)["metadata"])
        sids.append(int(dict(found)["sid"]))
    assert len(set(sids)) == len(sids)
    assert all(1_000_000_000 <= sid < 2_000_000_000 for sid in sids)
    closing = text.decode().splitlines()[-1]
    assert closing.startswith(f"# {count} rules; left out:")
    for reason in ("file hashes", "e-mail addresses", "certificate hashes other than SHA-1",
                   "other than http", "too long", "not plain", "too broad", "not well formed"):
        assert reason in closing


def test_a_hostile_name_cannot_add_a_rule_option() -> None:
    hostile = item(1, "[domain-name:value = 'bad.example']",
                   name='x"; sid:1; pcre:"/a/"; reference:url,evil; \\";',
                   producer="p; sid:3; flowbits:set,x")
    out = io.BytesIO()
    write("suricata", [hostile], out, level=Tlp.GREEN, generated_us=NOW_US,
          source="node\nalert ip any any -> any any (sid:5; rev:1;)")
    text = out.getvalue().decode()
    rules = rule_lines(out.getvalue())
    assert len(rules) == 3 and all(line.startswith(("#", "alert dns", "alert tls", "alert http"))
                                   for line in text.splitlines())
    for rule in rules:
        names = [name for name, _ in options(rule)]
        assert names.count("sid") == 1 and "pcre" not in names and "flowbits" not in names
        assert "reference" not in names
        assert "msg:\"Communique TLP:GREEN x', sid:1, pcre:'/a/', reference:url,evil, /',\";" \
            in rule


def test_suricata_groups_addresses_and_writes_exact_matches() -> None:
    _, text = export("suricata", varied())
    rules = rule_lines(text)
    grouped = [r for r in rules if r.startswith("alert ip [10.")]
    assert len(grouped) > 1 and sum(r.count(",10.") + 1 for r in grouped) == 1500
    assert any("[198.51.100.7,2001:db8::1] any <> any any" in r for r in rules)
    assert any("[203.0.113.0/24,2001:db8:1::/48]" in r for r in rules)
    for buffer in ("dns.query", "tls.sni"):
        assert any(f'{buffer}; content:"xn--bcher-kva.example"; nocase; bsize:21;' in r
                   for r in rules)
    assert any('http.host; content:"xn--bcher-kva.example"; bsize:21;' in r for r in rules)
    hostile = next(r for r in rules if "path" in r)
    assert 'http.uri; content:"/path|3B|x=1?q=|22|a|22||7C|b|5C|c";' in hostile
    escaped = next(r for r in rules if "8443" in r or "a%2F" in r)
    assert 'http.uri.raw; content:"/a%2Fb?c=A"; nocase; bsize:10;' in escaped
    assert any('tls.cert_fingerprint; content:"' + ":".join(["cc"] * 20) + '"' in r
               for r in rules)


def test_suricata_sids_are_stable_and_collisions_move_on(monkeypatch: pytest.MonkeyPatch) -> None:
    items = varied()
    assert export("suricata", items)[1] == export("suricata", items)[1]
    monkeypatch.setattr(suricata_format, "SID_COUNT", 7)
    used: set[int] = set()
    sids = [suricata_format._sid(used, "indicator--x", "ip", str(n)) for n in range(7)]
    assert sorted(sids) == list(range(1_000_000_000, 1_000_000_007))


SURICATA_YAML = """%YAML 1.1
---
app-layer:
  protocols:
    dns:
      tcp: {enabled: yes}
      udp: {enabled: yes}
    tls: {enabled: yes}
    http: {enabled: yes}
"""


@pytest.mark.skipif(shutil.which("suricata") is None,
                    reason="suricata is not installed (Debian: apt-get install suricata)")
def test_suricata_loads_every_rule_written(tmp_path: Path) -> None:
    count, text = export("suricata", varied())
    (tmp_path / "rules.rules").write_bytes(text)
    (tmp_path / "suricata.yaml").write_text(SURICATA_YAML)
    run = subprocess.run(["suricata", "-T", "-S", str(tmp_path / "rules.rules"),
                          "-c", str(tmp_path / "suricata.yaml"), "-l", str(tmp_path)],
                         capture_output=True, text=True, timeout=300, check=False)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    loaded = re.search(r"(\d+) rules successfully loaded, (\d+) rules failed", output)
    assert loaded, output
    assert (int(loaded.group(1)), int(loaded.group(2))) == (count, 0)


# -- Zeek ---------------------------------------------------------------------------------
def read_zeek(text: bytes) -> tuple[list[str], list[dict[str, str | None]]]:
    """Read an Intel file as Zeek's ASCII reader does: '#' lines skipped, '\\xNN' decoded."""
    fields: list[str] = []
    rows: list[dict[str, str | None]] = []
    for line in text.split(b"\n"):
        if line.startswith(b"#fields\t"):
            fields = line.decode().split("\t")[1:]
        elif line and not line.startswith(b"#"):
            cells = line.split(b"\t")
            assert len(cells) == len(fields), line
            rows.append({name: None if cell == b"-" else re.sub(
                rb"\\x([0-9a-f]{2})", lambda m: bytes([int(m.group(1), 16)]), cell).decode()
                for name, cell in zip(fields, cells)})
    return fields, rows


def test_zeek_intel_reads_back_row_for_row() -> None:
    items = varied()
    count, text = export("zeek-intel", items)
    fields, rows = read_zeek(text)
    assert text.startswith(b"# TLP:AMBER - ")
    assert fields == ["indicator", "indicator_type", "meta.source", "meta.desc", "meta.url"]
    assert count == len(rows)
    found = {(r["indicator"], r["indicator_type"]) for r in rows}
    assert {("198.51.100.7", "Intel::ADDR"), ("2001:db8::1", "Intel::ADDR"),
            ("203.0.113.0/24", "Intel::SUBNET"), ("xn--bcher-kva.example", "Intel::DOMAIN"),
            ("bad.example:8443/a%2Fb?c=A", "Intel::URL"), ("a" * 64, "Intel::FILE_HASH"),
            ("c" * 40, "Intel::CERT_HASH"), ("phish@bad.example", "Intel::EMAIL"),
            ("c2.bad.example", "Intel::DOMAIN"), ("#fields@bad.example", "Intel::EMAIL")} <= found
    assert not any(r["indicator"].startswith(("http://", "https://")) for r in rows)
    assert all(r["meta.url"] is None for r in rows)
    assert any(r["meta.desc"].startswith(HOSTILE_NAMES[1]) for r in rows)  # tab, newline kept
    assert any(r["meta.source"] == 'Org "X"; sid:2' for r in rows)


# -- CSV ----------------------------------------------------------------------------------
def test_csv_reads_back_and_defuses_formulas() -> None:
    count, text = export("csv", varied())
    rows = list(csv.reader(io.StringIO(text.decode(), newline="")))
    assert rows[0] == ["value", "type", "indicator_id", "name", "tlp", "score", "producer"]
    assert count == len(rows) - 1 and all(len(row) == 7 for row in rows)
    assert text.endswith(b"\r\n") and not text.startswith(b"\xef\xbb\xbf")
    for row in rows[1:]:
        assert not row[3].startswith(("=", "+", "-", "@")) and "\n" not in row[3]
        assert not row[6].startswith(("=", "+", "-", "@"))
        assert row[4] in ("TLP:GREEN", "TLP:AMBER") and 0 <= float(row[5]) <= 100
    assert ["198.51.100.7", "ipv4"] in [row[:2] for row in rows]
    assert any(row[3] == "'=cmd|' /C calc'!A0" for row in rows)
    assert any(row[6] == "'=HYPERLINK(\"x\")" for row in rows)
    assert any(row[3] == HOSTILE_NAMES[0] for row in rows)  # quotes and semicolons intact
    assert ("198.51.100.99", "ipv4") not in {(row[0], row[1]) for row in rows}  # above level


# -- STIX ---------------------------------------------------------------------------------
def test_stix_bundle_is_valid_and_keeps_markings() -> None:
    items = varied()
    broken = Item("indicator--00000000-0000-4000-8000-000000000000", b'{"type": "indic',
                  Tlp.GREEN, (), 1.0, "", "")
    count, text = export("stix", [*items, broken], level=Tlp.AMBER)
    bundle = json.loads(text)
    results = validate_instance(bundle, ValidationOptions(version="2.1"))
    assert results.is_valid, [str(e) for e in results.errors]
    indicators = [o for o in bundle["objects"] if o["type"] == "indicator"]
    assert count == len(indicators) == len(items) - 1  # the AMBER+STRICT one is above level
    assert [o["type"] for o in bundle["objects"]][-1] == "marking-definition"
    assert {o["id"] for o in bundle["objects"] if o["type"] == "marking-definition"} \
        == {TLP2_IDS[Tlp.GREEN]}
    assert all(o["object_marking_refs"] == [TLP2_IDS[Tlp.GREEN]] for o in indicators)


# -- MISP ---------------------------------------------------------------------------------
def test_misp_event_holds_one_attribute_per_value() -> None:
    items = varied()
    count, text = export("misp", items, level=Tlp.AMBER_STRICT)
    event = json.loads(text)["Event"]
    assert event["Tag"] == [{"name": "tlp:amber+strict"}]
    attributes = event["Attribute"]
    assert count == len(attributes)
    pairs = [(a["type"], a["value"]) for a in attributes]
    assert len(pairs) == len(set(pairs))
    assert {("ip-dst", "198.51.100.7"), ("ip-dst", "2001:db8::1"), ("ip-dst", "203.0.113.0/24"),
            ("domain", "xn--bcher-kva.example"), ("sha256", "a" * 64), ("md5", "b" * 32),
            ("x509-fingerprint-sha1", "c" * 40), ("email", "phish@bad.example"),
            ("email-src", "boss@bad.example"), ("ip-src", "192.0.2.5"),
            ("domain", "c2.bad.example"), ("ip-dst", "198.51.100.99"),
            ("url", "https://bad.example:8443/a%2Fb?c=A")} <= set(pairs)
    assert all(a["to_ids"] is True and a["Tag"][0]["name"].startswith("tlp:") for a in attributes)
    assert {a["category"] for a in attributes} == {"Network activity", "Payload delivery"}
    assert len({a["uuid"] for a in attributes}) == len(attributes)
    assert json.loads(export("misp", items, level=Tlp.AMBER_STRICT)[1]) == {"Event": event}


# -- plain --------------------------------------------------------------------------------
def test_plain_list_holds_each_value_once() -> None:
    count, text = export("plain", varied())
    lines = text.decode().splitlines()
    assert lines[0].startswith("# TLP:AMBER - share only with those who need to know")
    values = [line for line in lines if not line.startswith("#")]
    assert count == len(values) == len(set(values))
    assert all(" " not in v and "\t" not in v for v in values)
    assert {"198.51.100.7", "2001:db8::1", "xn--bcher-kva.example", "phish@bad.example",
            "203.0.113.0/24"} <= set(values)
    assert "#fields@bad.example" not in values and "would read as comments: 1" in lines[-1]


# -- streaming ----------------------------------------------------------------------------
@pytest.mark.parametrize("format", sorted(FORMATS))
def test_formats_write_as_they_read(format: str) -> None:
    out = io.BytesIO()
    template = item(0, "[ipv4-addr:value = '198.51.100.1']")

    def items() -> Iterator[Item]:
        for n in range(3000):
            if n == 2500:  # most of the items are out before the last is read
                assert out.tell() > 0
            third, rest = divmod(n, 250)
            yield Item(f"indicator--{n:08x}-0000-4000-8000-000000000000", template.body,
                       Tlp.GREEN, (("ipv4-addr:value", f"198.51.{third}.{rest}"),), 50.0, "", "")

    assert write(format, items(), out, level=Tlp.GREEN, generated_us=NOW_US, source="n") == 3000
