"""Detection over real HTTP: hunt a batch of events, correlate a value, export for sensors."""

from __future__ import annotations

import csv
import gzip
import io
import json

import requests

from communique import accounts, timestamps
from communique.detect import flags
from communique.stix.markings import TLP2_IDS, Tlp
from tests.support import Node, indicator

DAY = 86_400_000_000


def recent(days_ago: float = 1) -> str:
    return timestamps.format_ms(timestamps.now_us() - int(days_ago * DAY))


def ioc(n: int, pattern: str, level: Tlp = Tlp.GREEN, **extra: object) -> dict:
    when = recent()
    return indicator(n, pattern=pattern, created=when, modified=when,
                     object_marking_refs=[TLP2_IDS[level]], **extra)


def setup(node: Node):  # type: ignore[no-untyped-def]
    producer = node.member("CERT-A")
    reader = node.member("CERT-B")
    outsider = node.member("Outsider")
    feed = node.collection("Feed", read=("CERT-A", "CERT-B"), write=("CERT-A",), alias="feed")
    objects = [ioc(1, "[ipv4-addr:value = '45.155.205.233']"),
               ioc(2, "[domain-name:value = 'evil.example']", Tlp.AMBER),
               ioc(3, "[ipv4-addr:value = '8.8.8.8']"),  # a public resolver: warning-listed
               ioc(4, "[ipv4-addr:value = '45.155.205.66']", Tlp.RED)]
    node.post(producer, feed, objects)
    flags.check_pending(node.store)  # what the node's background check does after ingest
    return producer, reader, outsider, feed, objects


def test_hunting_a_batch_of_events_returns_the_matches_the_caller_may_see(node: Node) -> None:
    producer, reader, outsider, feed, objects = setup(node)
    events = {"events": [
        {"time": recent(0.01), "values": {"ipv4-addr:value": ["45.155.205.233"]}, "source": "fw:1"},
        {"values": {"domain-name:value": ["EVIL.example."]}},
        {"values": {"ipv4-addr:value": ["8.8.8.8", "45.155.205.66"]}},
        {"values": {"url:value": ["http://nothing.example/"]}},
    ]}
    answer = requests.post(f"{node.url}/detect/hunt", json=events, headers=reader.headers,
                           timeout=120)
    assert answer.status_code == 200, answer.text
    found = answer.json()
    assert found["events"] == 4 and found["left_out"] == 1  # the warning-listed one
    assert {(m["event"], m["indicator"]) for m in found["matches"]} == {
        (0, objects[0]["id"]), (1, objects[1]["id"])}  # never the RED one of another org
    assert {s["indicator"]: s["tlp"] for s in found["seen"]} == {
        objects[0]["id"]: "TLP:GREEN", objects[1]["id"]: "TLP:AMBER"}
    mine = requests.post(f"{node.url}/detect/hunt", json=events, headers=producer.headers,
                         timeout=120).json()
    assert (2, objects[3]["id"]) in {(m["event"], m["indicator"]) for m in mine["matches"]}
    nothing = requests.post(f"{node.url}/detect/hunt", json=events, headers=outsider.headers,
                            timeout=120).json()
    assert nothing["matches"] == [] and nothing["indicators"] == 0


def test_hunting_log_lines_sent_as_they_are(node: Node) -> None:
    _, reader, _, _, objects = setup(node)
    lines = b"\n".join(json.dumps({"timestamp": "2026-11-27T10:00:00.000000+0000",
                                   "event_type": "dns", "src_ip": "192.0.2.1",
                                   "dest_ip": "192.0.2.53",
                                   "dns": {"type": "query", "rrname": name}}).encode()
                       for name in ("good.example", "evil.example")) + b"\n{broken"
    for body in (lines, gzip.compress(lines)):
        answer = requests.post(f"{node.url}/detect/hunt?format=eve", data=body,
                               headers={**reader.headers, "Content-Type": "text/plain"},
                               timeout=120)
        assert answer.status_code == 200, answer.text
        found = answer.json()
        assert [m["indicator"] for m in found["matches"]] == [objects[1]["id"]]
        assert sum(found["skipped"].values()) == 1


def test_hostile_hunts_get_clear_errors(node: Node) -> None:
    _, reader, _, _, _ = setup(node)
    address = f"{node.url}/detect/hunt"
    assert requests.post(address, json={"events": []}, timeout=30).status_code == 401
    for body in ({"events": "x"}, {"events": [{"values": {"no-path": ["x"]}}]},
                 {"events": [{"values": {"ipv4-addr:value": [{"a": 1}]}}]},
                 {"events": [{"time": "yesterday", "values": {}}]},
                 {"events": [{"values": {"url:value": ["x" * 5000]}}]}, [1, 2]):
        answer = requests.post(address, json=body, headers=reader.headers, timeout=30)
        assert answer.status_code == 400, (body, answer.text)
        assert answer.json()["http_status"] == "400"
    bad = requests.post(address, data=b"{not json", headers={
        **reader.headers, "Content-Type": "application/json"}, timeout=30)
    assert bad.status_code == 400
    assert requests.post(address + "?format=nope", data=b"x", headers=reader.headers,
                         timeout=30).status_code == 400
    assert requests.post(address + "?collection=unknown", json={"events": []},
                         headers=reader.headers, timeout=30).status_code == 404
    huge = requests.post(address, data=b"x" * (node.settings.max_content_length + 1),
                         headers={**reader.headers, "Content-Type": "application/json"},
                         timeout=60)
    assert huge.status_code == 413


def test_correlation_over_http(node: Node) -> None:
    producer, reader, outsider, feed, objects = setup(node)
    other = node.collection("B feed", read=("CERT-A", "CERT-B"), write=("CERT-B",))
    node.post(reader, other, [ioc(9, "[network-traffic:dst_ref.value = '45.155.205.233']")])
    answer = requests.get(f"{node.url}/detect/correlate", params={"value": "45.155.205.233"},
                          headers=reader.headers, timeout=60)
    assert answer.status_code == 200, answer.text
    assert answer.json()["reporters"] == 2
    shared = requests.get(f"{node.url}/detect/correlate", params={"shared": "true"},
                          headers=producer.headers, timeout=60).json()
    assert [(s["value"], s["reporters"]) for s in shared] == [("45.155.205.233", 2)]
    assert requests.get(f"{node.url}/detect/correlate", params={"value": "45.155.205.233"},
                        headers=outsider.headers, timeout=60).json()["reports"] == []
    assert requests.get(f"{node.url}/detect/correlate", headers=reader.headers,
                        timeout=60).status_code == 400


def test_exports_over_http_hold_what_runs_never_red_and_are_audited(node: Node) -> None:
    producer, reader, _, _, objects = setup(node)
    answer = requests.get(f"{node.url}/detect/export", params={"format": "csv"},
                          headers=producer.headers, timeout=120)
    assert answer.status_code == 200, answer.text
    assert answer.headers["X-TLP"] == "TLP:AMBER"
    text = answer.text
    rows = [row for row in csv.reader(io.StringIO(text)) if row and not row[0].startswith("#")]
    assert rows[0][:2] == ["value", "type"]
    values = {row[0] for row in rows[1:]}
    assert {"45.155.205.233", "evil.example"} <= values
    assert "8.8.8.8" not in values and "45.155.205.66" not in values  # warning list; RED
    plain = requests.get(f"{node.url}/detect/export", params={"format": "plain",
                                                               "type": "ipv4-addr"},
                         headers=reader.headers, timeout=120).text
    assert [line for line in plain.splitlines() if not line.startswith("#")] == ["45.155.205.233"]
    assert requests.get(f"{node.url}/detect/export", params={"format": "exe"},
                        headers=reader.headers, timeout=30).status_code == 400
    assert requests.get(f"{node.url}/detect/export", params={"format": "csv", "min_score": "x"},
                        headers=reader.headers, timeout=30).status_code == 400
    with node.store.read() as tx:
        actions = [e.action for e in tx.audit_entries(actor=accounts.principal_for(
            node.store, producer.email).email)]
    assert "indicators.export" in actions


def test_a_gzip_bomb_is_refused(node: Node) -> None:
    _, reader, _, _, _ = setup(node)
    bomb = gzip.compress(b"\n" * (300 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < node.settings.max_content_length
    answer = requests.post(f"{node.url}/detect/hunt?format=eve", data=bomb,
                           headers={**reader.headers, "Content-Type": "text/plain"}, timeout=120)
    assert answer.status_code == 413 and "inflates" in answer.json()["description"]


def test_each_hunt_request_is_a_stream_of_its_own(node: Node) -> None:
    producer, reader, _, feed, _ = setup(node)
    chain = ioc(7, "[ipv4-addr:value = '45.155.205.233'] FOLLOWEDBY [domain-name:value = 'x.example']")
    node.post(producer, feed, [chain])
    address = f"{node.url}/detect/hunt"

    def hunt(*events: dict) -> dict:
        answer = requests.post(address, json={"events": list(events)}, headers=reader.headers,
                               timeout=60)
        assert answer.status_code == 200, answer.text
        return answer.json()

    first = {"time": recent(0.02), "values": {"ipv4-addr:value": ["45.155.205.233"]}}
    second = {"time": recent(0.01), "values": {"domain-name:value": ["x.example"]}}
    both = hunt(first, second)
    assert chain["id"] in {m["indicator"] for m in both["matches"]}
    assert chain["id"] not in {m["indicator"] for m in hunt(first)["matches"]}
    # the address of the request before does not complete the sequence now
    assert chain["id"] not in {m["indicator"] for m in hunt(second)["matches"]}
