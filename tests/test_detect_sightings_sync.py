"""The feedback loop between nodes: indicators go out, sightings of them come back.

Node A holds CERT-A's indicators (TLP:GREEN and TLP:AMBER) in 'intel', which CERT-B
may read and write. Node B pulls 'intel' into 'from-a', which only CERT-B reads. A
CERT-B analyst hunts a log on B with ``--report``: the sightings land in 'from-a',
signed by B, and B's push link takes them to A. An AMBER sighting goes too, though
CERT-A does not read 'from-a': it is a sighting made on B of an indicator B pulled
from A, so it goes back to the indicator's producer (``access.refusal_to_push``,
``back_to_producer``). Any other AMBER object stays on B, its reason recorded.
Everything runs for real: two nodes on loopback, the real command line, real sync.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest

from communique import access, node, timestamps
from communique.detect import hunt
from communique.provenance.signatures import PROVENANCE_EXTENSION, Status
from communique.stix.markings import TLP2_IDS, Tlp
from communique.store.base import PeerLink, Record
from communique.sync import engine, peers
from communique.sync.peers import Mapping
from communique.taxii import filters
from communique.taxii.filters import Query
from tests.cli_support import communique
from tests.conftest import BACKENDS, fresh_database
from tests.support import Member, Node, indicator, running_node

A, B = "CERT-A", "CERT-B"
HELD_AMBER = "TLP:AMBER goes only to nodes of organisations that may read it here"

# value looked for -> (name, level); the last two are in no log
INDICATORS = {"198.51.100.11": ("green seen", Tlp.GREEN),
              "198.51.100.21": ("amber seen", Tlp.AMBER),
              "198.51.100.12": ("green seen later", Tlp.GREEN),
              "198.51.100.22": ("amber never seen", Tlp.AMBER)}
G1, A1, G2, A2 = INDICATORS
B_OWN = "198.51.100.31"  # CERT-B's own AMBER indicator, made on B

T0 = 1_795_780_800  # 2026-11-27T12:00:00Z
ZEEK_CONN = f"""#separator \\x09
#set_separator\t,
#empty_field\t(empty)
#unset_field\t-
#path\tconn
#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration
#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval
{T0}.000000\tC1\t10.0.0.5\t51000\t{G1}\t443\ttcp\tssl\t1.5
{T0 + 1}.250000\tC2\t10.0.0.6\t51001\t203.0.113.50\t80\ttcp\thttp\t0.2
{T0 + 2}.500000\tC3\t10.0.0.5\t51002\t{A1}\t8443\ttcp\t-\t-
{T0 + 3}.000000\tC4\t10.0.0.7\t51003\t{G1}\t443\ttcp\tssl\t3.0
{T0 + 5}.750000\tC5\t{G1}\t40000\t10.0.0.8\t22\ttcp\tssh\t0.1
"""


def eve(moment: str, source: str, destination: str) -> str:
    """One Suricata EVE flow event on 2026-11-28, as a JSON line."""
    return json.dumps({"timestamp": f"2026-11-28T{moment}+0000", "event_type": "flow",
                       "src_ip": source, "src_port": 50000, "dest_ip": destination,
                       "dest_port": 443, "proto": "TCP"})


ZEEK_B_OWN = f"{T0 + 7}.000000\tC6\t10.0.0.5\t51004\t{B_OWN}\t443\ttcp\tssl\t0.5\n"
EVE_NEXT_DAY = "\n".join([eve("09:00:00.500000", "10.0.0.5", G2),
                          eve("09:00:01.000000", "10.0.0.6", "203.0.113.60"),
                          eve("09:00:02.000000", "10.0.0.5", A1),
                          eve("09:00:03.000000", "10.0.0.9", G1),
                          eve("09:00:04.000000", G2, "10.0.0.5")]) + "\n"


def at(seconds: float) -> str:
    """The STIX timestamp (milliseconds) of a log time given in epoch seconds."""
    return timestamps.format_ms(round(seconds * 1_000_000))


@dataclass
class Loop:
    """Node A (the producer) and node B (the consumer), peered both ways."""

    a: Node
    b: Node
    producer: Member   # CERT-A analyst on A
    hunter: Member     # CERT-B analyst on B
    intel: str         # on A: CERT-A's indicators; CERT-B reads and writes
    feedback: str      # on A: only CERT-A reads; CERT-B may write
    from_a: str        # on B: the copy of 'intel'; only CERT-B reads, CERT-A may write
    b_token: Path      # CERT-B's token on A
    indicators: dict[str, dict]  # value -> the indicator A holds

    def peer_b_with_a(self, *, push_into: str) -> None:
        """On B: pull A's 'intel' into 'from-a', push 'from-a' into ``push_into`` on A."""
        peers.add_peer(self.b.store, name="a", url=f"{self.a.root}/", token_file=str(self.b_token),
                       pulls=[Mapping(self.intel, self.from_a)],
                       pushes=[Mapping(push_into, self.from_a)], every_seconds=60,
                       max_tlp=Tlp.AMBER, org=A, as_org=B)

    def sync(self, on: Node, name: str) -> dict[str, engine.LinkRun]:
        """Run every link of a peer once on ``on``; return the runs by direction."""
        with on.store.read() as tx:
            peer = tx.find_peer(name)
        assert peer is not None
        runs = engine.sync_peer(on.store, peer)
        assert [r.error for r in runs] == [None] * len(runs), runs
        return {r.link.direction: r for r in runs}

    def hunt(self, on: Node, member: Member, log: Path, *, reported: int) -> None:
        """Run `communique hunt LOG --as MEMBER --report` on ``on``, as a user would."""
        run = communique("hunt", str(log), "--as", member.email, "--report",
                         "--include-warninglisted", database=on.database_url)
        assert run.code == 0, run.err
        assert f"{reported} sightings written to" in run.err, run.err

    def id_of(self, value: str) -> str:
        """The id of the indicator A holds for a value."""
        return self.indicators[value]["id"]


@pytest.fixture(params=BACKENDS)
def loop(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Loop]:
    with running_node(fresh_database(request, request.param, tmp_path)) as a, \
            running_node(fresh_database(request, request.param, tmp_path)) as b:
        for org in (A, B):
            a.org(org)
            b.org(org)
        intel = a.collection("Intel", read=(A, B), write=(A, B), alias="intel")
        feedback = a.collection("Feedback", read=(A,), write=(A, B), alias="feedback")
        from_a = b.collection("From A", read=(B,), write=(B, A), alias="from-a")
        producer = a.member(A)
        # made a minute ago: valid now, and fresh enough that no decay model leaves it out
        made = timestamps.format_ms(timestamps.now_us() - 60_000_000)
        posted = {value: indicator(n, created=made, name=name,
                                   pattern=f"[ipv4-addr:value = '{value}']",
                                   object_marking_refs=[TLP2_IDS[level]])
                  for n, (value, (name, level)) in enumerate(INDICATORS.items())}
        a.post(producer, intel, list(posted.values()))
        b_token = token_file(tmp_path / "b-on-a.token", a.member(B))
        # A peers with B too: it pins B's key (so that it verifies what B pushes) and it
        # pushes 'intel' into B's 'from-a'
        peers.add_peer(a.store, name="b", url=f"{b.root}/",
                       token_file=str(token_file(tmp_path / "a-on-b.token", b.member(A))),
                       pulls=[], pushes=[Mapping(from_a, intel)], every_seconds=60,
                       max_tlp=Tlp.AMBER, org=B, as_org=A)
        yield Loop(a, b, producer, b.member(B), intel, feedback, from_a, b_token, posted)


def token_file(path: Path, member: Member) -> Path:
    """Write a member's token where a peer link reads it (owner-only, as required)."""
    path.write_text(member.token + "\n")
    path.chmod(0o600)
    return path


def write_log(path: Path, text: str) -> Path:
    """Write a log file, gzipped when its name ends in .gz."""
    path.write_bytes(gzip.compress(text.encode()) if path.suffix == ".gz" else text.encode())
    return path


def stored(on: Node, collection_id: str, stix_type: str) -> list[tuple[dict, Record]]:
    """Every stored version of one type in a collection (the operator's view)."""
    with on.store.read() as tx:
        collection = tx.get_collection("default", collection_id)
        assert collection is not None
        page = tx.list_objects(collection.id, Query(types=(stix_type,), limit=100_000,
                                                    versions=filters.ALL_VERSIONS),
                               visibility=access.operator_view(collection), after=None)
    return [(orjson.loads(r.body or b"{}"), r) for r in page.records]


def by_indicator(on: Node, collection_id: str) -> dict[str, list[dict]]:
    """The sightings stored in a collection, grouped by the indicator they report."""
    found: dict[str, list[dict]] = {}
    for raw, _ in stored(on, collection_id, "sighting"):
        found.setdefault(raw["sighting_of_ref"], []).append(raw)
    return found


def identity_of(on: Node) -> str:
    """The STIX identity a node signs with."""
    with on.store.read() as tx:
        identity = tx.get_setting(node.IDENTITY)
    assert identity is not None
    return identity


def peer_id(on: Node, name: str) -> int:
    """The id a node knows one of its peers by (what ``origin_peer`` holds)."""
    with on.store.read() as tx:
        peer = tx.find_peer(name)
    assert peer is not None
    return peer.id


def push_link(on: Node) -> PeerLink:
    """The one push link a node has, as it stands now."""
    with on.store.read() as tx:
        [link] = [x for x in tx.links_of() if x.direction == "push"]
    return link


def first_round(loop: Loop, tmp_path: Path) -> dict[str, engine.LinkRun]:
    """B pulls A's indicators, a CERT-B analyst hunts a Zeek log, B syncs (pushes)."""
    pulled = loop.sync(loop.b, "a")
    assert pulled["pull"].moved and pulled["pull"].moved.added == 4
    assert pulled["push"].moved and pulled["push"].moved.added == 0  # A's own: never back
    assert pulled["push"].moved.refused == 0  # not even offered, so not held either
    loop.hunt(loop.b, loop.hunter, write_log(tmp_path / "conn.log.gz", ZEEK_CONN), reported=2)
    return loop.sync(loop.b, "a")


def assert_came_back(loop: Loop, collection_id: str, made_on_b: dict[str, list[dict]]) -> None:
    """Both of B's sightings are on A in ``collection_id``: the very objects B signed,
    verified against B's key, recorded as received from B, at their own TLP level."""
    on_a = {raw["sighting_of_ref"]: (raw, record)
            for raw, record in stored(loop.a, collection_id, "sighting")}
    assert sorted(on_a) == sorted([loop.id_of(G1), loop.id_of(A1)])
    assert len(stored(loop.a, collection_id, "sighting")) == 2  # one version of each
    from_b = peer_id(loop.a, "b")
    for value, level, count, seen in ((G1, Tlp.GREEN, 3, (at(T0), at(T0 + 5.75))),
                                      (A1, Tlp.AMBER, 1, (at(T0 + 2.5), at(T0 + 2.5)))):
        sighting, record = on_a[loop.id_of(value)]
        assert [sighting] == made_on_b[loop.id_of(value)]  # the very object B signed
        assert sighting["extensions"][PROVENANCE_EXTENSION]["signed_by"] == identity_of(loop.b)
        assert record.signature == Status.VERIFIED and record.origin_peer == from_b
        assert sighting["object_marking_refs"] == [TLP2_IDS[level]] and record.tlp == level
        assert sighting["count"] == count
        assert (sighting["first_seen"], sighting["last_seen"]) == seen
        assert sighting["where_sighted_refs"] == [hunt.organisation_identity(B)]


def test_sightings_come_back_to_the_producer_signed_and_verified(loop: Loop,
                                                                 tmp_path: Path) -> None:
    """Both sightings made on B, the GREEN one and the AMBER one, reach A's 'intel', next
    to the indicators they report on. A accepts the AMBER one there although CERT-B reads
    'intel': CERT-B runs the node that pushed it, so its reading it widens nothing."""
    loop.peer_b_with_a(push_into=loop.intel)
    runs = first_round(loop, tmp_path)
    on_b = {raw["id"]: record for raw, record in stored(loop.b, loop.from_a, "indicator")}
    assert sorted(on_b) == sorted(loop.id_of(v) for v in INDICATORS)
    assert {record.signature for record in on_b.values()} == {Status.VERIFIED}
    # what lets the AMBER sighting go back: its indicator's last version in 'from-a' came
    # from A, and the sighting itself was made here
    assert {record.origin_peer for record in on_b.values()} == {peer_id(loop.b, "a")}
    made_on_b = by_indicator(loop.b, loop.from_a)
    assert set(made_on_b) == {loop.id_of(G1), loop.id_of(A1)}
    assert {r.origin_peer for _, r in stored(loop.b, loop.from_a, "sighting")} == {None}
    pushed = runs["push"].moved
    assert pushed and pushed.added == 2 and pushed.refused == 0 and pushed.reasons is None
    assert push_link(loop.b).moved == 2 and push_link(loop.b).refused == 0
    with loop.b.store.read() as tx:
        [entry] = tx.audit_entries(action="sync.push")
    assert entry.outcome == "ok" and entry.actor == "peer:a"
    assert (entry.details["pushed"], entry.details["held"]) == (2, 0)

    assert_came_back(loop, loop.intel, made_on_b)
    assert not by_indicator(loop.a, loop.feedback)
    [(own, own_record)] = [(raw, r) for raw, r in stored(loop.a, loop.intel, "indicator")
                           if raw["id"] == loop.id_of(A1)]
    assert own_record.origin_peer is None  # A's own indicator, not a copy from elsewhere
    assert own["extensions"][PROVENANCE_EXTENSION]["signed_by"] == identity_of(loop.a)

    # the producer reads both over TAXII, like any object in its collection; so does
    # CERT-B, which may read 'intel' on A
    made = sorted(s["id"] for sightings in made_on_b.values() for s in sightings)
    for member in (loop.producer, loop.a.member(B)):
        listing = httpx.get(loop.a.objects_url(loop.intel), params={"match[type]": "sighting"},
                            headers=member.headers, timeout=60).json()
        assert sorted(o["id"] for o in listing["objects"]) == made

    # loop rule, the other way: A's push link ('intel' -> B's 'from-a') offers A's own
    # indicators (B holds them already) but never the sightings B sent
    held_on_b = sorted((raw["id"], r.version) for raw, r in stored(loop.b, loop.from_a,
                                                                   "sighting"))
    back = loop.sync(loop.a, "b")["push"].moved
    assert back and back.added == 4 and back.refused == 0  # 4 indicators, 0 sightings
    assert sorted((raw["id"], r.version) for raw, r in stored(loop.b, loop.from_a,
                                                              "sighting")) == held_on_b
    assert len(held_on_b) == 2


def test_amber_sightings_reach_the_producer_where_only_it_reads(loop: Loop,
                                                                tmp_path: Path) -> None:
    """A's 'feedback' collection is read by CERT-A alone, and CERT-B may write there: both
    sightings of CERT-A's indicators arrive, the AMBER one too, and nothing in 'intel'."""
    loop.peer_b_with_a(push_into=loop.feedback)
    runs = first_round(loop, tmp_path)
    pushed = runs["push"].moved
    assert pushed and pushed.added == 2 and pushed.refused == 0 and pushed.reasons is None
    assert_came_back(loop, loop.feedback, by_indicator(loop.b, loop.from_a))
    assert not by_indicator(loop.a, loop.intel)
    listing = httpx.get(loop.a.objects_url(loop.feedback), params={"match[type]": "sighting"},
                        headers=loop.producer.headers, timeout=60).json()
    assert {o["sighting_of_ref"] for o in listing["objects"]} == {loop.id_of(G1),
                                                                  loop.id_of(A1)}


def test_amber_objects_that_are_not_feedback_are_held_on_b_never_lost(loop: Loop,
                                                                      tmp_path: Path) -> None:
    """CERT-A does not read 'from-a'. What B made there at AMBER that is not a sighting of
    an indicator from A stays on B: CERT-B's own indicator, and B's sighting of it. Each
    is counted as refused on the link, its reason in the run and in B's audit log; A
    never receives either. The AMBER sighting of A's indicator goes, beside them."""
    loop.peer_b_with_a(push_into=loop.intel)
    first = loop.sync(loop.b, "a")
    assert first["pull"].moved and first["pull"].moved.added == 4
    made = timestamps.format_ms(timestamps.now_us() - 60_000_000)
    own = indicator(31, created=made, name="CERT-B's own",
                    pattern=f"[ipv4-addr:value = '{B_OWN}']",
                    object_marking_refs=[TLP2_IDS[Tlp.AMBER]])
    loop.b.post(loop.hunter, loop.from_a, [own])
    log = write_log(tmp_path / "conn.log", ZEEK_CONN + ZEEK_B_OWN)
    loop.hunt(loop.b, loop.hunter, log, reported=3)
    runs = loop.sync(loop.b, "a")

    made_on_b = by_indicator(loop.b, loop.from_a)
    assert set(made_on_b) == {loop.id_of(G1), loop.id_of(A1), own["id"]}
    [of_own] = made_on_b[own["id"]]
    assert of_own["object_marking_refs"] == [TLP2_IDS[Tlp.AMBER]] and of_own["count"] == 1
    [(_, own_record)] = [(raw, r) for raw, r in stored(loop.b, loop.from_a, "indicator")
                         if raw["id"] == own["id"]]
    assert own_record.origin_peer is None and own_record.tlp == Tlp.AMBER

    pushed = runs["push"].moved
    # offered: the own indicator and three sightings (what came from A is never offered);
    # the GREEN sighting and the AMBER one of A's indicator go, the other two are held
    assert pushed and pushed.added == 2 and pushed.refused == 2
    assert pushed.reasons == {HELD_AMBER: 2}
    assert push_link(loop.b).refused == 2 and push_link(loop.b).moved == 2
    with loop.b.store.read() as tx:
        entries = [e for e in tx.audit_entries(action="sync.push") if e.details.get("held")]
    [entry] = entries
    assert entry.outcome == "refused" and entry.details["held"] == 2
    assert entry.details["pushed"] == 2 and entry.actor == "peer:a"

    for collection_id in (loop.intel, loop.feedback):
        assert own["id"] not in {raw["id"] for raw, _ in stored(loop.a, collection_id,
                                                                "indicator")}
        assert own["id"] not in by_indicator(loop.a, collection_id)
    assert set(by_indicator(loop.a, loop.intel)) == {loop.id_of(G1), loop.id_of(A1)}

    # held, not queued: the next run offers nothing again and holds nothing new
    again = loop.sync(loop.b, "a")["push"].moved
    assert again and again.added == 0 and again.refused == 0
    assert push_link(loop.b).refused == 2


def test_amber_sightings_travel_where_the_receiving_organisation_reads_them(
        loop: Loop, tmp_path: Path) -> None:
    """The other direction: CERT-B reads 'intel' on A, so A's AMBER sighting goes to B.
    And B never sends A's sightings back to A (loop rule), though they report on A's
    indicators: only sightings made on B are feedback."""
    loop.peer_b_with_a(push_into=loop.intel)
    loop.sync(loop.b, "a")  # B holds A's indicators (and pins A's key)
    loop.hunt(loop.a, loop.producer, write_log(tmp_path / "conn.log", ZEEK_CONN), reported=2)
    runs = loop.sync(loop.a, "b")
    pushed = runs["push"].moved
    assert pushed and pushed.refused == 0 and not pushed.reasons
    arrived = by_indicator(loop.b, loop.from_a)
    assert set(arrived) == {loop.id_of(G1), loop.id_of(A1)}
    [amber] = arrived[loop.id_of(A1)]
    assert amber["object_marking_refs"] == [TLP2_IDS[Tlp.AMBER]]
    assert amber["where_sighted_refs"] == [hunt.organisation_identity(A)]
    assert amber["extensions"][PROVENANCE_EXTENSION]["signed_by"] == identity_of(loop.a)
    on_b = [record for _, record in stored(loop.b, loop.from_a, "sighting")]
    assert {r.signature for r in on_b} == {Status.VERIFIED}
    assert {r.tlp for r in on_b} == {Tlp.GREEN, Tlp.AMBER}
    assert {r.origin_peer for r in on_b} == {peer_id(loop.b, "a")}  # they came from A

    before = sorted((raw["id"], r.version) for raw, r in stored(loop.a, loop.intel, "sighting"))
    back = loop.sync(loop.b, "a")
    # not offered at all: neither sent (added) nor held (refused), no audit entry either
    assert back["push"].moved and back["push"].moved.added == 0
    assert back["push"].moved.refused == 0 and back["push"].moved.reasons is None
    assert push_link(loop.b).moved == 0 and push_link(loop.b).refused == 0
    with loop.b.store.read() as tx:
        assert tx.audit_entries(action="sync.push") == []
    # B's pull meets them as what it already holds
    assert back["pull"].moved and back["pull"].moved.added == 0
    assert back["pull"].moved.duplicate == 2
    after = stored(loop.a, loop.intel, "sighting")
    assert sorted((raw["id"], r.version) for raw, r in after) == before
    assert {r.origin_peer for _, r in after} == {None}  # A's own, as they were


def test_a_second_hunt_adds_its_sightings_and_resends_none(loop: Loop, tmp_path: Path) -> None:
    """A day later, an EVE log: only the new sightings travel, each version once on A, and
    B's next pull brings its own sightings back as duplicates, not as new objects."""
    loop.peer_b_with_a(push_into=loop.intel)
    first_round(loop, tmp_path)  # B's first two sightings (G1 GREEN, A1 AMBER) are on A
    loop.hunt(loop.b, loop.hunter, write_log(tmp_path / "eve.json", EVE_NEXT_DAY), reported=3)
    runs = loop.sync(loop.b, "a")
    # The pull runs first. What A's 'intel' gained since B last pulled is exactly the two
    # sightings B pushed in the first round, GREEN and AMBER (both now travel): B holds
    # both already, so 2 duplicates and nothing added.
    assert runs["pull"].moved and runs["pull"].moved.added == 0
    assert runs["pull"].moved.duplicate == 2
    # The push then offers what 'from-a' gained since its last run: the three new
    # sightings (G2 and G1, GREEN; A1, AMBER, made here of A's indicator: feedback). All
    # three go; nothing is held, and nothing from the first round is offered again.
    pushed = runs["push"].moved
    assert pushed and pushed.added == 3 and pushed.refused == 0 and pushed.reasons is None

    on_a = stored(loop.a, loop.intel, "sighting")
    assert len(on_a) == 5 == len({(raw["id"], r.version) for raw, r in on_a})
    counts = sorted((raw["sighting_of_ref"], raw["count"]) for raw, _ in on_a)
    assert counts == sorted([(loop.id_of(G1), 3), (loop.id_of(A1), 1),  # first round
                             (loop.id_of(G1), 1), (loop.id_of(G2), 2), (loop.id_of(A1), 1)])
    [later] = by_indicator(loop.a, loop.intel)[loop.id_of(G2)]
    assert (later["first_seen"], later["last_seen"]) == ("2026-11-28T09:00:00.500Z",
                                                         "2026-11-28T09:00:04.000Z")
    amber_next_day = [s for s in by_indicator(loop.a, loop.intel)[loop.id_of(A1)]
                      if s["first_seen"].startswith("2026-11-28")]
    assert [(s["first_seen"], s["object_marking_refs"]) for s in amber_next_day] == [
        ("2026-11-28T09:00:02.000Z", [TLP2_IDS[Tlp.AMBER]])]
    assert {r.signature for _, r in on_a} == {Status.VERIFIED}
    assert {r.origin_peer for _, r in on_a} == {peer_id(loop.a, "b")}
    assert sorted(raw["id"] for raw, _ in on_a) == sorted(
        raw["id"] for raw, _ in stored(loop.b, loop.from_a, "sighting"))
    assert len(stored(loop.b, loop.from_a, "sighting")) == 5  # 3 GREEN + 2 AMBER, each once
    assert push_link(loop.b).moved == 5 and push_link(loop.b).refused == 0  # 2 + 3

    again = loop.sync(loop.b, "a")
    # the push has nothing new to offer (duplicates pulled add no version); the pull meets
    # the three sightings of the second round, on A since the last pull, as duplicates
    assert again["push"].moved and again["push"].moved.added == 0
    assert again["push"].moved.refused == 0
    assert again["pull"].moved and again["pull"].moved.added == 0
    assert again["pull"].moved.duplicate == 3
    assert len(stored(loop.a, loop.intel, "sighting")) == 5
