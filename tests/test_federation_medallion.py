"""Federation with a foreign TAXII 2.1 server: the OASIS reference server medallion as a peer.

medallion runs as its own process on a loopback port (``tests.medallion_support``),
Communiqué nodes on both database backends. Communiqué pulls from medallion under
the TLP 2.0 rules, resumes from medallion's X-TAXII-Date-Added headers and pages
with its ``next``; it pushes signed objects into medallion, and the signatures
still verify when the objects come back, on the same node or on another one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import orjson
import pytest

from communique import access, node, timestamps
from communique.cli import add_collection
from communique.provenance import signatures
from communique.provenance.signatures import PROVENANCE_EXTENSION, Status
from communique.stix.markings import TLP2_IDS, Tlp
from communique.store.base import Peer, PeerLink, Record
from communique.sync import engine, peers
from communique.sync.peers import Mapping
from communique.taxii import filters
from communique.taxii.filters import Query
from tests.cli_support import communique
from tests.conftest import BACKENDS, fresh_database
from tests.medallion_support import Medallion, running_medallion
from tests.support import Node, indicator, running_node, ts

A, B, FOREIGN = "CERT-A", "CERT-B", "Medallion Operator"
LEVELS = [Tlp.CLEAR, Tlp.GREEN, Tlp.AMBER, Tlp.AMBER_STRICT, Tlp.RED, None]  # None: unmarked


def marked(n: int, level: Tlp | None, **extra: object) -> dict:
    if level is not None:
        extra["object_marking_refs"] = [TLP2_IDS[level]]
    return indicator(n, **extra)  # type: ignore[arg-type]


def foreign_intel() -> tuple[list[dict], dict[str, Tlp | None]]:
    """30 unsigned objects, five of each level, and a second version of the first GREEN one.

    Return every version in the order medallion added them, and each id's level.
    """
    objects = [marked(i, LEVELS[i % len(LEVELS)]) for i in range(30)]
    first = objects[1]
    newer = {**first, "modified": ts(3600), "name": "Indicator 1 (revised)"}
    objects.append(newer)
    return objects, {o["id"]: (LEVELS[i % len(LEVELS)] if i < 30 else Tlp.GREEN)
                     for i, o in enumerate(objects)}


# -- Communiqué nodes ----------------------------------------------------------------------
NodeFactory = Callable[[], Node]


@pytest.fixture(params=BACKENDS)
def new_node(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[NodeFactory]:
    """Start Communiqué nodes on the backend under test; each knows CERT-A, CERT-B, FOREIGN."""
    with ExitStack() as stack:
        def make() -> Node:
            started = stack.enter_context(
                running_node(fresh_database(request, request.param, tmp_path)))
            for org in (A, B, FOREIGN):
                started.org(org)
            return started
        yield make


def add_peer(on: Node, server: Medallion, token_dir: Path, *, name: str = "medallion",
             pulls: tuple[Mapping, ...] = (), pushes: tuple[Mapping, ...] = (),
             as_org: str = A) -> Peer:
    added = peers.add_peer(on.store, name=name, url=server.api_root,
                           token_file=str(server.write_token(token_dir / f"{name}.token")),
                           pulls=list(pulls), pushes=list(pushes), every_seconds=60,
                           max_tlp=Tlp.AMBER, org=FOREIGN, as_org=as_org)
    assert added.kid is None  # medallion publishes no Communiqué identity: no key pinned
    return added.peer


def sync(on: Node, name: str = "medallion",
         options: engine.Options | None = None) -> list[engine.LinkRun]:
    with on.store.read() as tx:
        peer = tx.find_peer(name)
    assert peer is not None
    return engine.sync_peer(on.store, peer, options or engine.Options())


def stored(on: Node, collection: str) -> list[Record]:
    """Every version stored in ``collection``, whatever its TLP."""
    with on.store.read() as tx:
        target = tx.get_collection("default", collection)
        assert target is not None
        page = tx.list_objects(target.id, Query(limit=10_000, versions=filters.ALL_VERSIONS),
                               visibility=access.operator_view(target), after=None)
    return page.records


def link_of(on: Node) -> PeerLink:
    with on.store.read() as tx:
        [link] = tx.links_of()
    return link


# -- pull ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("page_size", "max_page_size"), [(7, 100), (10, 4)],
                         ids=["our-page-size", "medallion-caps-the-page"])
def test_pull_from_medallion_keeps_to_tlp_and_resumes(new_node: NodeFactory, tmp_path: Path,
                                                     page_size: int, max_page_size: int) -> None:
    """CLEAR, GREEN, AMBER and unmarked arrive unsigned, each version once; RED never; the
    resume point is medallion's X-TAXII-Date-Added-Last, paging follows its ``next``."""
    objects, level_of = foreign_intel()
    a = new_node()
    private = a.collection("From medallion", read=(A,), alias="from-medallion")
    with running_medallion(tmp_path / "medallion", objects=objects,
                           max_page_size=max_page_size) as server:
        add_peer(a, server, tmp_path, pulls=(Mapping(server.intel, private),))
        options = engine.Options(page_size=page_size)
        [run] = sync(a, options=options)
        assert run.error is None, run.error
        assert run.moved is not None and run.moved.complete
        served_per_page = min(page_size, max_page_size)
        assert run.moved.pages == -(-len(objects) // served_per_page)  # medallion serves all 31
        allowed = {i for i, level in level_of.items()
                   if level in (Tlp.CLEAR, Tlp.GREEN, Tlp.AMBER, None)}
        expected = [o for o in objects if o["id"] in allowed]
        assert (run.moved.added, run.moved.duplicate, run.moved.refused) == (21, 0, 10)
        assert run.moved.reasons == {
            "TLP:RED never travels between nodes": 5,
            "TLP:AMBER+STRICT is above what this peer may exchange (TLP:AMBER)": 5}

        records = stored(a, private)
        assert sorted((r.stix_id, r.version) for r in records) == sorted(
            (o["id"], timestamps.parse(o["modified"])) for o in expected)
        versioned = objects[1]["id"]
        assert sorted(r.version for r in records if r.stix_id == versioned) == [
            timestamps.parse(ts(0)), timestamps.parse(ts(3600))]
        assert {r.signature for r in records} == {Status.UNSIGNED}
        assert all(r.origin_peer is not None for r in records)
        # unmarked objects are kept at the level they were taken at (AMBER), so that no later
        # change of the collection's default widens them
        assert {r.stix_id: r.tlp for r in records} == {
            i: int(Tlp.AMBER if level_of[i] is None else level_of[i]) for i in allowed}
        by_version = {(o["id"], o["modified"]): o for o in expected}
        for record in records:  # stored as medallion served them: nothing added, nothing lost
            body = orjson.loads(record.body or b"")
            assert body == by_version[(body["id"], body["modified"])]
        link = link_of(a)
        # the resume point is the date_added medallion gave the last version it holds
        last_added = max(timestamps.parse(m["date_added"]) for m in server.manifest(server.intel))
        assert link.position == last_added
        assert link.last_error is None and link.moved == 21 and link.refused == 10

        [again] = sync(a, options=options)
        assert again.error is None and again.moved is not None and again.moved.complete
        # medallion is not a Communiqué node: each run reads again the last seconds it saw
        # (all of this test's objects were added within them); nothing new is stored
        assert again.moved.added == 0
        assert again.moved.duplicate + again.moved.refused == 31
        assert len(stored(a, private)) == 21
        assert link_of(a).position == link.position

        fresh = [marked(100 + i, Tlp.GREEN) for i in range(3)]
        server.add(server.intel, fresh)
        [third] = sync(a, options=options)
        assert third.error is None and third.moved is not None
        assert third.moved.added == 3  # and the overlap read again as duplicates
        assert len(stored(a, private)) == 24
        assert link_of(a).position > link.position


def test_pull_refuses_unmarked_objects_into_a_green_by_default_collection(
        new_node: NodeFactory, tmp_path: Path) -> None:
    """Unmarked from medallion is taken as AMBER: never into a collection whose default is lower."""
    a = new_node()
    cleared = add_collection(a.store, "Green by default", root="default", alias="green-default",
                             read=(A,), default_tlp=Tlp.GREEN).id
    objects = [marked(0, None), marked(1, Tlp.GREEN)]
    with running_medallion(tmp_path / "medallion", objects=objects) as server:
        add_peer(a, server, tmp_path, pulls=(Mapping(server.intel, cleared),))
        [run] = sync(a)
    assert run.moved is not None and (run.moved.added, run.moved.refused) == (1, 1)
    assert [r.stix_id for r in stored(a, cleared)] == [objects[1]["id"]]


# -- push ----------------------------------------------------------------------------------
def signed_outbox(a: Node) -> tuple[str, list[dict]]:
    """An 'outbox' CERT-A and medallion's operator read, filled by a CERT-A analyst.

    Return its id and what was posted: every level, unmarked ones, and two versions of one.
    """
    outbox = a.collection("Outbox", read=(A, FOREIGN), write=(A,), alias="outbox")
    author = a.member(A)
    posted = [marked(i, LEVELS[i % len(LEVELS)]) for i in range(12)]
    posted.append({**posted[1], "modified": ts(60), "name": "Indicator 1 (revised)"})
    a.post(author, outbox, posted)
    return outbox, posted


def pushable(posted: list[dict]) -> list[dict]:
    """What may go to medallion at TLP:AMBER: CLEAR, GREEN, AMBER (marked); RED never."""
    levels = {TLP2_IDS[level]: level for level in (Tlp.CLEAR, Tlp.GREEN, Tlp.AMBER)}
    return [o for o in posted if any(ref in levels for ref in o.get("object_marking_refs", []))]


def test_push_to_medallion_keeps_the_signatures(new_node: NodeFactory, tmp_path: Path) -> None:
    """Signed on ingest, pushed into medallion, read back over plain HTTP: still verified."""
    a = new_node()
    outbox, posted = signed_outbox(a)
    expected = pushable(posted)
    assert len(expected) == 7
    with running_medallion(tmp_path / "medallion") as server:
        add_peer(a, server, tmp_path, pushes=(Mapping(server.inbox, outbox),))
        [run] = sync(a)
        assert run.error is None, run.error
        assert run.moved is not None and run.moved.complete
        # RED is never offered; the unmarked (AMBER here by default) and AMBER+STRICT
        # (above --max-tlp amber) are held back
        assert (run.moved.added, run.moved.refused) == (7, 4)
        assert set(run.moved.reasons or {}) == {
            ("unmarked, this object is TLP:AMBER here only by this collection's default: "
             "mark it before it goes to another node"),
            "TLP:AMBER+STRICT is above what this peer may exchange (TLP:AMBER)"}

        served = server.objects(server.inbox)  # plain HTTP, Basic auth
        # one envelope, so medallion dated all seven alike (see the batch test below)
        assert len({m["date_added"] for m in server.manifest(server.inbox)}) == 1
        assert sorted((o["id"], o["modified"]) for o in served) == sorted(
            (o["id"], o["modified"]) for o in expected)
        keyring = node.keyring(a.store)
        identity = node.signer(a.store, a.settings).identity_id
        ours = {(r.stix_id, r.version): orjson.loads(r.body or b"") for r in stored(a, outbox)}
        for obj in served:
            assert obj["extensions"][PROVENANCE_EXTENSION]["signed_by"] == identity
            verdict = signatures.verify(obj, keyring)
            assert verdict.status is Status.VERIFIED, (obj["id"], verdict.reason)
            assert obj == ours[(obj["id"], timestamps.parse(obj["modified"]))]

        [again] = sync(a)
        assert again.error is None and again.moved is not None
        assert again.moved.added == 0
        assert len(server.objects(server.inbox)) == 7


# -- round trip ----------------------------------------------------------------------------
def test_round_trip_through_medallion_verifies_only_with_the_key_trusted(
        new_node: NodeFactory, tmp_path: Path) -> None:
    """A pushes to medallion, B pulls: unknown signer until B trusts A's key, then verified."""
    a, b = new_node(), new_node()
    outbox, posted = signed_outbox(a)
    expected = sorted((o["id"], timestamps.parse(o["modified"])) for o in pushable(posted))
    before = b.collection("Before trust", read=(B,), alias="before")
    after = b.collection("After trust", read=(B,), alias="after")
    with running_medallion(tmp_path / "medallion") as server:
        add_peer(a, server, tmp_path, pushes=(Mapping(server.inbox, outbox),))
        [pushed] = sync(a)
        assert pushed.moved is not None and pushed.moved.added == 7

        add_peer(b, server, tmp_path, name="medallion", as_org=B,
                 pulls=(Mapping(server.inbox, before),))
        [untrusted] = sync(b)
        assert untrusted.error is None and untrusted.moved is not None
        assert untrusted.moved.added == 7
        records = stored(b, before)
        assert sorted((r.stix_id, r.version) for r in records) == expected
        assert {r.signature for r in records} == {Status.UNKNOWN_SIGNER}

        signer = node.signer(a.store, a.settings)
        identity_file = tmp_path / "a.identity.json"
        identity_file.write_text(json.dumps(signer.identity))
        trusted = communique("key", "trust", str(identity_file), "--fingerprint",
                             signer.key.kid, database=b.database_url)
        assert trusted.code == 0, (trusted.out, trusted.err)

        add_peer(b, server, tmp_path, name="medallion-again", as_org=B,
                 pulls=(Mapping(server.inbox, after),))
        [verified] = sync(b, "medallion-again")
        assert verified.error is None and verified.moved is not None
        assert verified.moved.added == 7
        records = stored(b, after)
        assert sorted((r.stix_id, r.version) for r in records) == expected
        assert {r.signature for r in records} == {Status.VERIFIED}
        keyring = node.keyring(b.store)
        for record in stored(b, before):  # the bodies kept before trust verify now too
            assert signatures.verify(orjson.loads(record.body or b""), keyring).status \
                is Status.VERIFIED



# -- medallion's paging, which differs from Communiqué's own ----------------------------
# medallion gives all objects of one request the same date_added, and its 'next' is used
# up when read: a pull must neither lose part of such a group nor skip a page on a retry.
def test_a_batch_sharing_one_date_added_arrives_whole_across_pages(
        new_node: NodeFactory, tmp_path: Path) -> None:
    """Ten objects added in one request, served four to a page: all ten must arrive."""
    a = new_node()
    private = a.collection("From medallion", read=(A,), alias="from-medallion")
    with running_medallion(tmp_path / "medallion", max_page_size=4) as server:
        server.add(server.intel, [marked(i, Tlp.GREEN) for i in range(10)])
        assert len({m["date_added"] for m in server.manifest(server.intel)}) == 1
        add_peer(a, server, tmp_path, pulls=(Mapping(server.intel, private),))
        [run] = sync(a)
        [again] = sync(a)
    assert run.error is None and run.moved and run.moved.added == 10
    assert again.error is None and again.moved and again.moved.added == 0
    assert len(stored(a, private)) == 10


class LostAnswer(httpx.BaseTransport):
    """Real HTTP to medallion; the answer to the Nth Get Objects request is lost on the way
    back (the connection drops after medallion has sent it)."""

    def __init__(self, at: int) -> None:
        self.inner = httpx.HTTPTransport()
        self.at, self.seen = at, 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.method == "GET" and request.url.path.endswith("/objects/"):
            self.seen += 1
            if self.seen == self.at:
                response.read()
                response.close()
                raise httpx.ReadError("connection reset after the answer was sent")
        return response

    def close(self) -> None:
        self.inner.close()


def test_a_lost_page_answer_is_not_skipped_when_retried(new_node: NodeFactory,
                                                        tmp_path: Path) -> None:
    """The answer to the second page is lost once; the retry must not lose its objects."""
    objects = [marked(i, Tlp.GREEN) for i in range(20)]
    a = new_node()
    private = a.collection("From medallion", read=(A,), alias="from-medallion")
    with running_medallion(tmp_path / "medallion", objects=objects) as server:
        add_peer(a, server, tmp_path, pulls=(Mapping(server.intel, private),))
        [run] = sync(a, options=engine.Options(page_size=5, attempts=3,
                                               transport=LostAnswer(at=2)))
        [later] = sync(a)
    assert run.error is None and later.error is None
    assert sorted(r.stix_id for r in stored(a, private)) == sorted(o["id"] for o in objects)


def test_pushing_again_what_medallion_holds_is_not_a_refusal(new_node: NodeFactory,
                                                             tmp_path: Path) -> None:
    """After a crash between the post and the saved push point, the same objects go again;
    medallion refuses them as already there, which counts as arrived, not as refused."""
    a = new_node()
    outbox, _ = signed_outbox(a)
    with running_medallion(tmp_path / "medallion") as server:
        add_peer(a, server, tmp_path, pushes=(Mapping(server.inbox, outbox),))
        [run] = sync(a)
        assert run.moved is not None and run.moved.added == 7
        with a.store.write() as tx:  # as if the process died before saving the point
            tx.update_link(link_of(a).id, position=None)
        [again] = sync(a)
        assert again.error is None and again.moved is not None
        assert again.moved.added == 7
        assert not any("refused by the peer" in r for r in again.moved.reasons or {})
        with a.store.read() as tx:
            assert tx.due_retries(link_of(a).id, now=2**62, limit=100) == []
        assert len(server.objects(server.inbox)) == 7
