"""Facts filed beside indicators, correlation, decay applied, warning-list flags and overrides."""

from __future__ import annotations

import json

import pytest

from communique import accounts, importer, node, timestamps
from communique.cli import add_collection
from communique.detect import correlation, decay, filing, flags, hunt, standing
from communique.detect.warninglists import WarningLists
from communique.settings import Settings
from communique.stix.markings import TLP2_IDS, Tlp
from communique.store import open_store
from communique.taxii import filters
from communique.taxii.filters import Query
from tests.cli_support import communique
from tests.support import indicator, stix_id

DAY = 86_400_000_000


def recent(days_ago: float = 1) -> str:
    return timestamps.format_ms(timestamps.now_us() - int(days_ago * DAY))


def ioc(n: int, pattern: str, level: Tlp = Tlp.GREEN, *, days_ago: float = 1,
        **extra: object) -> dict:
    when = recent(days_ago)
    return indicator(n, pattern=pattern, created=when, modified=when,
                     object_marking_refs=[TLP2_IDS[level]], **extra)


LISTS = WarningLists([
    {"name": "Public resolvers", "description": "", "type": "string",
     "list": ["8.8.8.8", "1.1.1.1"], "matching_attributes": ["ip-dst", "ip-src"]},
])


@pytest.fixture
def world(database_url: str):  # type: ignore[no-untyped-def]
    store = open_store(database_url)
    for org in ("CERT-A", "CERT-B", "Outsider"):
        accounts.add_organisation(store, org)
    accounts.add_user(store, "a@cert-a.example", org="CERT-A", role="analyst")
    accounts.add_user(store, "b@cert-b.example", org="CERT-B", role="analyst")
    accounts.add_user(store, "x@outsider.example", org="Outsider", role="analyst")
    a = add_collection(store, "A feed", root="default", alias="a-feed",
                       read=("CERT-A", "CERT-B"), write=("CERT-A",))
    b = add_collection(store, "B feed", root="default", alias="b-feed",
                       read=("CERT-A", "CERT-B"), write=("CERT-B",))
    settings = Settings(database=database_url)
    provenance = node.local_provenance(store, settings, node.signer(store, settings))

    def add(collection, objects, org):  # type: ignore[no-untyped-def]
        org_id = accounts.principal_for(store, org).org_id
        summary = importer.import_objects(store, collection, objects, "2.1",
                                          provenance=provenance, producer_org=org_id)
        assert summary.counts["refused"] == 0, summary.refusals
    yield store, a, b, add
    store.close()


def test_facts_are_filed_at_ingest_replaced_by_new_versions_and_dropped_with_them(world) -> None:  # type: ignore[no-untyped-def]
    store, a, _, add = world
    first = ioc(1, "[ipv4-addr:value = '203.0.113.9' OR domain-name:value = 'EVIL.example']",
                confidence=90)
    add(a, [first], "a@cert-a.example")
    principal = accounts.principal_for(store, "a@cert-a.example")
    seen = standing.views(store, principal, [a], leaving=False)
    with store.read() as tx:
        rows = tx.indicator_rows(seen)
        assert [r.stix_id for r in rows] == [first["id"]]
        assert rows[0].confidence == 90 and rows[0].kinds == "domain-name,ipv4-addr"
        assert sorted(tx.values_of([rows[0].pk])[rows[0].pk]) == [
            ("domain-name:value", "evil.example"), ("ipv4-addr:value", "203.0.113.9")]
    newer = dict(first, modified=recent(0.5), pattern="[ipv4-addr:value = '203.0.113.10']")
    add(a, [newer], "a@cert-a.example")
    with store.read() as tx:
        rows = tx.indicator_rows(seen)
        assert len(rows) == 1 and tx.values_of([rows[0].pk])[rows[0].pk] == [
            ("ipv4-addr:value", "203.0.113.10")]
    with store.write() as tx:  # the last version goes: the one before stands again
        tx.delete_object(a.id, first["id"], Query(), visibility=seen[a.id])
    with store.read() as tx:
        (row,) = tx.indicator_rows(seen)
        assert len(tx.values_of([row.pk])[row.pk]) == 2
    with store.write() as tx:
        tx.delete_object(a.id, first["id"], Query(versions=filters.ALL_VERSIONS),
                         visibility=seen[a.id])
    with store.read() as tx:
        assert tx.indicator_rows(seen) == []
        assert tx.values_of([row.pk]) == {row.pk: []}  # dropped with their version


def test_backfill_files_what_was_stored_before_facts_were_kept(world) -> None:  # type: ignore[no-untyped-def]
    store, a, _, add = world
    add(a, [ioc(1, "[ipv4-addr:value = '203.0.113.1']")], "a@cert-a.example")
    with store.write() as tx:  # as a node upgraded from before detection facts
        tx.conn.execute(__import__("sqlalchemy").text("DELETE FROM indicator_facts"))
        tx.conn.execute(__import__("sqlalchemy").text("DELETE FROM indicator_values"))
        tx.put_setting(filing.BACKFILLED, "0")
    assert filing.backfill(store) == 1
    assert filing.backfill(store) == 0  # once
    principal = accounts.principal_for(store, "a@cert-a.example")
    with store.read() as tx:
        assert len(tx.indicator_rows(standing.views(store, principal, [a], leaving=False))) == 1


def test_a_value_reported_by_two_members_is_correlated_once_per_value(world) -> None:  # type: ignore[no-untyped-def]
    store, a, b, add = world
    add(a, [ioc(1, "[ipv4-addr:value = '203.0.113.5']", days_ago=3)], "a@cert-a.example")
    add(b, [ioc(2, "[network-traffic:dst_ref.value = '203.0.113.5']"),
            ioc(3, "[file:hashes.'SHA-256' = '" + "AB" * 32 + "']"),
            ioc(4, "[ipv4-addr:value = '203.0.113.5']", Tlp.RED)], "b@cert-b.example")
    add(a, [ioc(5, "[file:hashes.MD5 = '" + "cd" * 16 + "']")], "a@cert-a.example")
    reader = accounts.principal_for(store, "a@cert-a.example")
    now = timestamps.now_us()
    reports = correlation.correlate(store, reader, "203.0.113.5", now_us=now)
    assert [(r.organisation, r.collection, r.level) for r in reports] == [
        ("CERT-A", "a-feed", Tlp.GREEN), ("CERT-B", "b-feed", Tlp.GREEN)]  # never the RED one
    assert correlation.reporters(reports) == 2
    assert reports[0].path == "ipv4-addr:value" and reports[1].path == "network-traffic:dst_ref.value"
    # hash case does not matter
    assert len(correlation.correlate(store, reader, "ab" * 32, now_us=now)) == 1
    shared = correlation.shared(store, reader)
    assert [(s.value, s.reporters, s.indicators) for s in shared] == [("203.0.113.5", 2, 2)]
    outsider = accounts.principal_for(store, "x@outsider.example")
    assert correlation.correlate(store, outsider, "203.0.113.5", now_us=now) == []
    assert correlation.shared(store, outsider) == []
    shown = communique("correlate", "203.0.113.5", "--as", "a@cert-a.example", "--json",
                       database=store.url)
    assert shown.code == 0, shown.err
    assert json.loads(shown.out)["reporters"] == 2
    listed = communique("correlate", "--shared", "--as", "a@cert-a.example", "--json",
                        database=store.url)
    assert json.loads(listed.out) == [{"path": "ipv4-addr:value", "value": "203.0.113.5",
                                       "reporters": 2, "indicators": 2}]


def test_sightings_count_toward_correlation_and_refresh_the_decayed_score(world) -> None:  # type: ignore[no-untyped-def]
    store, a, _, add = world
    old = ioc(1, "[ipv4-addr:value = '203.0.113.7']", days_ago=40)
    add(a, [old], "a@cert-a.example")
    reader = accounts.principal_for(store, "a@cert-a.example")
    now = timestamps.now_us()
    (report,) = correlation.correlate(store, reader, "203.0.113.7", now_us=now)
    assert report.score == 0 and report.excluded.startswith("decayed")
    left_out: dict[str, str] = {}
    assert list(hunt.active_indicators(store, reader, [a], now_us=now, left_out=left_out)) == []
    assert left_out[old["id"]].startswith("decayed: score 0 below 30")
    seen_at = recent(0.1)
    add(a, [{"type": "sighting", "spec_version": "2.1", "id": stix_id("sighting"),
             "created": seen_at, "modified": seen_at, "sighting_of_ref": old["id"],
             "count": 7, "first_seen": seen_at, "last_seen": seen_at,
             "object_marking_refs": [TLP2_IDS[Tlp.GREEN]]}], "a@cert-a.example")
    (report,) = correlation.correlate(store, reader, "203.0.113.7", now_us=now)
    assert report.sightings == 7 and report.excluded is None and report.score > 79
    assert [i.id for i in hunt.active_indicators(store, reader, [a], now_us=now)] == [old["id"]]


def test_decay_follows_the_node_model_per_type(world) -> None:  # type: ignore[no-untyped-def]
    store, a, _, add = world
    add(a, [ioc(1, "[domain-name:value = 'old.example']", days_ago=60, confidence=100)],
        "a@cert-a.example")
    reader = accounts.principal_for(store, "a@cert-a.example")
    now = timestamps.now_us()
    (report,) = correlation.correlate(store, reader, "old.example", now_us=now)
    # MISP's NIDS model for domains: τ 120 days, δ 2 → 100 × (1 − (60/120)^(1/2)) ≈ 29.3
    assert report.score == pytest.approx(100 * (1 - (60 / 120) ** 0.5), abs=0.1)
    assert report.excluded == "decayed: score 29 below 30"
    assert communique("decay", "set", "domain-name", "--days", "365", "--speed", "2",
                      database=store.url).code == 0
    assert standing.models(store)["domain-name"] == decay.Model(365, 2, 30)
    (report,) = correlation.correlate(store, reader, "old.example", now_us=now)
    assert report.excluded is None
    assert "domain-name" in communique("decay", "show", database=store.url).out
    assert communique("decay", "set", "url", "--days", "-1", database=store.url).code == 1


def test_warning_listed_indicators_are_flagged_with_the_list_and_an_analyst_may_override(world) -> None:  # type: ignore[no-untyped-def]
    store, a, _, add = world
    resolver = ioc(1, "[ipv4-addr:value = '8.8.8.8']")
    mixed = ioc(2, "[ipv4-addr:value = '8.8.8.8' OR ipv4-addr:value = '203.0.113.77']")
    add(a, [resolver, mixed], "a@cert-a.example")
    assert flags.pending(store)
    assert flags.check_pending(store, load=lambda: LISTS) == 2
    assert not flags.pending(store)
    reader = accounts.principal_for(store, "a@cert-a.example")
    now = timestamps.now_us()
    judged = {s.row.stix_id: s for s in standing.standings(
        store, standing.views(store, reader, [a], leaving=False), now_us=now,
        per_type=standing.models(store))}
    assert judged[resolver["id"]].warninglists == ["Public resolvers"]
    assert judged[resolver["id"]].excluded == "on warning lists: Public resolvers"
    assert judged[mixed["id"]].excluded is None  # one of its values is not listed
    assert [i.id for i in hunt.active_indicators(store, reader, [a], now_us=now)] == [mixed["id"]]
    assert communique("indicator", "allow", resolver["id"], "--collection", "a-feed", "--as",
                      "b@cert-b.example", "--reason", "x", database=store.url).code == 1  # read-only
    allowed = communique("indicator", "allow", resolver["id"], "--collection", "a-feed", "--as",
                         "a@cert-a.example", "--reason", "we watch our own resolver",
                         database=store.url)
    assert allowed.code == 0, allowed.err
    assert sorted(i.id for i in hunt.active_indicators(store, reader, [a], now_us=now)) == sorted(
        [resolver["id"], mixed["id"]])
    with store.read() as tx:
        assert [e.action for e in tx.audit_entries()][-1] == "indicator.allow"
    held = communique("indicator", "hold", resolver["id"], "--collection", "a-feed", "--as",
                      "a@cert-a.example", database=store.url)
    assert held.code == 0 and "held" in held.out
    assert [i.id for i in hunt.active_indicators(store, reader, [a], now_us=now)] == [mixed["id"]]
    unknown = communique("indicator", "allow", "indicator--00000000-0000-4000-8000-000000000000",
                         "--collection", "a-feed", "--as", "a@cert-a.example", "--reason", "x",
                         database=store.url)
    assert unknown.code == 1 and "no indicator" in unknown.err


@pytest.mark.parametrize("chosen", ["suricata", "zeek-intel", "csv", "stix", "misp", "plain"])
def test_the_export_command_writes_each_sensor_format_with_its_tlp(world, chosen: str) -> None:  # type: ignore[no-untyped-def]
    store, a, b, add = world
    add(a, [ioc(1, "[ipv4-addr:value = '45.155.205.233']", Tlp.AMBER),
            ioc(2, "[domain-name:value = 'evil.example']"),
            ioc(3, "[ipv4-addr:value = '45.155.205.66']", Tlp.RED),
            ioc(4, "[domain-name:value = 'stale.example']", days_ago=400)], "a@cert-a.example")
    run = communique("export", "--format", chosen, "--as", "a@cert-a.example",
                     database=store.url)
    assert run.code == 0, run.err
    assert "exported at TLP:AMBER" in run.err
    assert "TLP:AMBER" in run.out.upper() or "tlp:amber" in run.out
    assert "evil.example" in run.out and "45.155.205.233" in run.out
    assert "45.155.205.66" not in run.out  # RED never leaves
    assert "stale.example" not in run.out  # decayed
    only = communique("export", "--format", chosen, "--as", "a@cert-a.example", "--type",
                      "domain-name", "--collection", "a-feed", database=store.url)
    assert only.code == 0, only.err
    if chosen == "plain":
        assert [line for line in only.out.splitlines()
                if line and not line.startswith("#")] == ["evil.example"]
    with store.read() as tx:
        assert [e.action for e in tx.audit_entries()][-1] == "indicators.export"


def test_the_plain_collection_export_is_unchanged_without_format(world) -> None:  # type: ignore[no-untyped-def]
    store, a, _, add = world
    add(a, [ioc(1, "[ipv4-addr:value = '45.155.205.233']")], "a@cert-a.example")
    run = communique("export", "--collection", "a-feed", "--as", "a@cert-a.example",
                     database=store.url)
    assert run.code == 0 and json.loads(run.out)["type"] == "bundle"
    both = communique("export", "--collection", "a-feed", "--collection", "b-feed", "--as",
                      "a@cert-a.example", database=store.url)
    assert both.code == 1 and "one --collection" in both.err


def test_the_node_scheduler_flags_new_indicators_in_the_background(world) -> None:  # type: ignore[no-untyped-def]
    import time

    from communique.sync import scheduler

    store, a, _, add = world
    add(a, [ioc(1, "[ipv4-addr:value = '8.8.8.8']")], "a@cert-a.example")
    assert flags.pending(store)
    thread, stop = scheduler.start(store)
    try:
        deadline = time.monotonic() + 120
        while flags.pending(store) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        stop.set()
        thread.join(timeout=60)
    reader = accounts.principal_for(store, "a@cert-a.example")
    (judged,) = standing.standings(store, standing.views(store, reader, [a], leaving=False),
                                   now_us=timestamps.now_us(), per_type=standing.models(store))
    assert judged.warninglists and judged.excluded.startswith("on warning lists: ")


def test_facts_of_sequences_are_read_without_the_reference_parser(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from communique.detect import catalogue, pattern_ast

    def refuse(pattern: str) -> None:
        raise AssertionError(f"the reference parser was asked for {pattern!r}")

    monkeypatch.setattr(pattern_ast, "_reference", refuse)
    base = {"id": "indicator--x", "pattern_type": "stix", "valid_from": "2026-11-26T10:00:00Z"}
    sequence = catalogue.indicator_facts({**base, "pattern": (
        "[file:hashes.'SHA-256' = 'ab]['] FOLLOWEDBY [ipv4-addr:value = '198.51.100.1'] "
        "WITHIN 300 SECONDS")}, 1)
    assert sequence.kinds == "file,ipv4-addr" and sequence.values == ()
    monkeypatch.undo()  # a list path is one observation: read through the parser
    listed = catalogue.indicator_facts({**base, "pattern": "[network-traffic:protocols[*] = 'tcp']"}, 1)
    assert listed.kinds == "network-traffic"
    assert [(p, v) for p, v, _ in listed.values] == [("network-traffic:protocols[*]", "tcp")]


def test_custom_paths_too_long_to_file_are_still_stored(world) -> None:  # type: ignore[no-untyped-def]
    store, a, _, add = world
    long_path = ioc(1, "[x-custom:" + "a" * 250 + " = 'value']")
    add(a, [long_path], "a@cert-a.example")  # refused would fail in add()
    reader = accounts.principal_for(store, "a@cert-a.example")
    (judged,) = standing.standings(store, standing.views(store, reader, [a], leaving=False),
                                   now_us=timestamps.now_us(), per_type=standing.models(store))
    assert judged.values == ()


def test_a_sighting_dated_in_the_future_refreshes_no_later_than_its_arrival(world) -> None:  # type: ignore[no-untyped-def]
    store, a, _, add = world
    old = ioc(1, "[ipv4-addr:value = '45.155.205.233']", days_ago=40)
    future = timestamps.format_ms(timestamps.now_us() + 3650 * DAY)
    add(a, [old, {"type": "sighting", "spec_version": "2.1", "id": stix_id("sighting"),
                  "created": recent(0.1), "modified": recent(0.1), "sighting_of_ref": old["id"],
                  "first_seen": recent(0.1), "last_seen": future,
                  "object_marking_refs": [TLP2_IDS[Tlp.GREEN]]}], "a@cert-a.example")
    reader = accounts.principal_for(store, "a@cert-a.example")
    (report,) = correlation.correlate(store, reader, "45.155.205.233",
                                      now_us=timestamps.now_us() + 40 * DAY)
    assert report.last_seen is not None and report.last_seen <= timestamps.now_us()
    assert report.excluded is not None and report.excluded.startswith("decayed")


def test_amber_strict_sightings_never_go_back_to_another_organisation() -> None:
    from communique import access

    for level, allowed in ((Tlp.AMBER, True), (Tlp.AMBER_STRICT, False)):
        rule = access.refusal_to_push(level, stored_level=int(level), max_tlp=Tlp.AMBER_STRICT,
                                      peer_org=2, source_readers=frozenset({1}),
                                      back_to_producer=True)
        assert (rule is None) == allowed
