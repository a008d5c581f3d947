"""A hunt over a member's events with the indicators it may read, and the sightings it makes."""

from __future__ import annotations

from pathlib import Path

import pytest
from stix2validator import ValidationOptions, validate_instance

from communique import accounts, importer, node, timestamps
from communique.cli import add_collection
from communique.detect import decay, hunt, standing
from communique.detect.events import Event
from communique.settings import Settings
from communique.stix.markings import RECIPIENTS_EXTENSION, TLP2_IDS, Tlp
from communique.stix.validate import validate
from communique.store import open_store
from tests.support import indicator, ts

NOW = timestamps.parse("2026-11-27T12:00:00Z")


def marked(n: int, value: str, level: Tlp, **extra: object) -> dict:
    return indicator(n, pattern=f"[ipv4-addr:value = '{value}']",
                     object_marking_refs=[TLP2_IDS[level]], **extra)


@pytest.fixture
def world(database_url: str):  # type: ignore[no-untyped-def]
    store = open_store(database_url)
    for org in ("CERT", "Other"):
        accounts.add_organisation(store, org)
    accounts.add_user(store, "hunter@cert.example", org="CERT", role="analyst")
    shared = add_collection(store, "Shared", root="default", read=("CERT", "Other"),
                            write=("Other",))
    hidden = add_collection(store, "Hidden", root="default", read=("Other",), write=("Other",))
    # These indicators date from 2024: let them keep their score, decay is tested apart.
    standing.set_model(store, "ipv4-addr", decay.Model(lifetime_days=100 * 365))
    settings = Settings(database=database_url)
    provenance = node.local_provenance(store, settings, node.signer(store, settings))
    objects = [
        marked(1, "198.51.100.1", Tlp.GREEN),
        marked(2, "198.51.100.2", Tlp.AMBER),
        marked(3, "198.51.100.3", Tlp.GREEN, valid_until=ts(10, year=2025)),   # expired
        marked(4, "198.51.100.4", Tlp.GREEN, valid_from=ts(0, year=2030),      # not yet
               created=ts(0, year=2030), modified=ts(0, year=2030)),
        marked(5, "198.51.100.5", Tlp.GREEN, revoked=True),
        marked(6, "198.51.100.6", Tlp.RED, extensions={RECIPIENTS_EXTENSION: {
            "extension_type": "property-extension", "recipient_organizations": ["Other"]}}),
        indicator(7, pattern="[ipv4-addr:value = '198.51.100.7'] WITHIN 5 SECONDS",
                  object_marking_refs=[TLP2_IDS[Tlp.GREEN]]),
    ]
    importer.import_objects(store, shared, objects, "2.1", provenance=provenance)
    importer.import_objects(store, hidden, [marked(8, "198.51.100.8", Tlp.CLEAR)], "2.1",
                            provenance=provenance)
    yield store, [shared, hidden], objects
    store.close()


def events(*addresses: str) -> list[Event]:
    return [Event(NOW + n * 1_000_000, {"ipv4-addr:value": (a,)}, f"conn.log:{n + 1}")
            for n, a in enumerate(addresses)]


def test_only_indicators_valid_now_that_the_member_may_read_take_part(world) -> None:  # type: ignore[no-untyped-def]
    store, collections, objects = world
    principal = accounts.principal_for(store, "hunter@cert.example")
    active = list(hunt.active_indicators(store, principal, collections, now_us=NOW))
    assert sorted(i.id for i in active) == sorted([objects[0]["id"], objects[1]["id"],
                                                  objects[6]["id"]])
    found = hunt.run(active, events(*(f"198.51.100.{n}" for n in range(1, 9)), "198.51.100.1"))
    assert found.events == 9 and found.indicators == 3  # the WITHIN one runs in the sequencer
    assert found.unsupported == {}
    first = found.seen[objects[0]["id"]]
    assert first.count == 2 and first.first_us == NOW and first.last_us == NOW + 8_000_000
    assert first.examples == ["conn.log:1", "conn.log:9"]
    assert set(found.seen) == {objects[0]["id"], objects[1]["id"], objects[6]["id"]}
    assert found.seen[objects[6]["id"]].count == 1


def test_sightings_are_valid_stix_and_no_wider_than_their_indicator(world) -> None:  # type: ignore[no-untyped-def]
    store, collections, objects = world
    principal = accounts.principal_for(store, "hunter@cert.example")
    active = list(hunt.active_indicators(store, principal, collections, now_us=NOW))
    found = hunt.run(active, events("198.51.100.1", "198.51.100.2", "198.51.100.2"))
    made = {s["sighting_of_ref"]: s for s in hunt.sightings(found, principal, now_us=NOW)}
    assert set(made) == {objects[0]["id"], objects[1]["id"]}
    amber = made[objects[1]["id"]]
    assert amber["count"] == 2 and amber["object_marking_refs"] == [TLP2_IDS[Tlp.AMBER]]
    assert amber["where_sighted_refs"] == [hunt.organisation_identity("CERT")]
    assert amber["first_seen"] <= amber["last_seen"]
    options = ValidationOptions(version="2.1", strict=False)
    for sighting in made.values():
        validate(sighting)
        assert validate_instance(sighting, options).is_valid


def test_indicators_whose_values_are_all_on_warning_lists_are_left_out(world) -> None:  # type: ignore[no-untyped-def]
    from communique.detect.warninglists import WarningLists

    lists = WarningLists([{"name": "Resolvers", "description": "public DNS", "type": "cidr",
                           "list": ["198.51.100.1/32"], "matching_attributes": ["ip-dst"]}])
    store, collections, objects = world
    principal = accounts.principal_for(store, "hunter@cert.example")
    active = list(hunt.active_indicators(store, principal, collections, now_us=NOW))
    either = hunt.Indicator("indicator--5b8f6f4e-2b5c-4b8e-9d6a-3f2e1c0b9a87",
                            "[ipv4-addr:value = '198.51.100.1' OR ipv4-addr:value = '203.0.113.1']",
                            Tlp.GREEN, collections[0])
    found = hunt.run([*active, either], events("198.51.100.1", "198.51.100.2", "203.0.113.1"),
                     warninglists=lists)
    assert found.suppressed == {objects[0]["id"]: ["Resolvers"]}
    assert set(found.seen) == {objects[1]["id"], either.id}  # one value off the lists: kept
    assert hunt.warninglisted("[url:value MATCHES 'x']", lists) is None


def test_an_empty_hunt_and_no_indicators(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store, collections, _ = world
    principal = accounts.principal_for(store, "hunter@cert.example")
    assert hunt.run([], events("198.51.100.1")).seen == {}
    active = list(hunt.active_indicators(store, principal, collections, now_us=NOW))
    empty = hunt.run(active, [])
    assert empty.events == 0 and hunt.sightings(empty, principal, now_us=NOW) == []


ZEEK_CONN = """#separator \\x09
#set_separator\t,
#empty_field\t(empty)
#unset_field\t-
#path\tconn
#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration
#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval
1795780800.000000\tC1\t10.0.0.5\t51000\t198.51.100.1\t443\ttcp\tssl\t1.5
1795780801.250000\tC2\t10.0.0.6\t51001\t203.0.113.50\t80\ttcp\thttp\t0.2
1795780802.500000\tC3\t10.0.0.5\t51002\t198.51.100.2\t8443\ttcp\t-\t-
1795780803.000000\tC4\t10.0.0.7\t51003\t198.51.100.1\t443\ttcp\tssl\t3.0
"""


def test_the_hunt_command_reads_logs_reports_and_writes_back(world, tmp_path: Path,
                                                             database_url: str) -> None:  # type: ignore[no-untyped-def]
    import gzip
    import json

    from tests.cli_support import communique

    store, collections, objects = world
    assert communique("collection", "grant", collections[0].id, "--org", "CERT", "--read",
                      "--write", database=database_url).code == 0
    path = tmp_path / "conn.log.gz"
    path.write_bytes(gzip.compress(ZEEK_CONN.encode()))
    out = tmp_path / "sightings.json"
    listed = communique("hunt", str(path), "--as", "hunter@cert.example", database=database_url)
    # 198.51.100.0/24 is a documentation range (RFC 5737): MISP's shipped lists flag it
    assert listed.code == 0 and "indicators left out" in listed.err
    assert "on the warning list" in listed.err
    assert "0 seen" in listed.err
    run = communique("hunt", str(path), "--as", "hunter@cert.example", "--out", str(out),
                     "--report", "--include-warninglisted", database=database_url)
    assert run.code == 0, run.err
    assert "4 events" in run.err and "2 seen" in run.err
    assert "2 sightings written to" in run.err
    bundle = json.loads(out.read_text())
    counts = {s["sighting_of_ref"]: s["count"] for s in bundle["objects"]}
    assert counts == {objects[0]["id"]: 2, objects[1]["id"]: 1}
    exported = json.loads(communique("export", "--collection", collections[0].id, "--as",
                                     "hunter@cert.example", "--type", "sighting",
                                     database=database_url).out)
    assert sorted(s["sighting_of_ref"] for s in exported["objects"]) == sorted(counts)
    assert all("extensions" in s for s in exported["objects"])  # signed by the node
    later = communique("hunt", str(path), "--as", "hunter@cert.example", "--since",
                       "2026-11-27T12:00:02Z", "--out", "-", "--include-warninglisted",
                       database=database_url)
    assert later.code == 0
    assert {s["sighting_of_ref"]: s["count"] for s in json.loads(later.out)["objects"]} == {
        objects[0]["id"]: 1, objects[1]["id"]: 1}  # from 12:00:02 on: the last two lines


def test_hunts_run_sequences_over_the_event_stream() -> None:
    collection = None  # indicators of a hunt need no store here
    beacon = hunt.Indicator("indicator--00000000-0000-4000-8000-000000000001",
                            "[domain-name:value = 'c2.example'] REPEATS 3 TIMES WITHIN 60 SECONDS",
                            Tlp.GREEN, collection)  # type: ignore[arg-type]
    chain = hunt.Indicator("indicator--00000000-0000-4000-8000-000000000002",
                           "[domain-name:value = 'drop.example'] FOLLOWEDBY "
                           "[ipv4-addr:value = '45.155.205.233']", Tlp.GREEN,
                           collection)  # type: ignore[arg-type]
    odd = hunt.Indicator("indicator--00000000-0000-4000-8000-000000000003",
                         "[ipv4-addr:value ISSUPERSET '10.0.0.0/8']", Tlp.GREEN,
                         collection)  # type: ignore[arg-type]

    def at(second: int, path: str, value: str) -> Event:
        return Event(NOW + second * 1_000_000, {path: (value,)}, f"dns.log:{second}")

    stream = [at(0, "domain-name:value", "c2.example"), at(1, "ipv4-addr:value", "45.155.205.233"),
              at(20, "domain-name:value", "C2.example"), at(30, "domain-name:value", "drop.example"),
              at(50, "domain-name:value", "c2.example."), at(55, "ipv4-addr:value", "45.155.205.233"),
              at(200, "domain-name:value", "c2.example")]
    found = hunt.run([beacon, chain, odd], stream)
    assert found.indicators == 2 and set(found.unsupported) == {odd.id}
    assert found.seen[beacon.id].count == 1  # three within a minute, once; the fourth is alone
    assert (found.seen[beacon.id].first_us, found.seen[beacon.id].last_us) == (NOW, NOW + 50_000_000)
    assert found.seen[chain.id].count == 1  # the address at 1 s came before the domain
    assert found.seen[chain.id].first_us == NOW + 30_000_000
