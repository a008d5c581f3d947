"""Federation between real nodes on loopback: pull and push under TLP, with signed provenance."""

from __future__ import annotations

import httpx
import orjson
import pytest

from communique.provenance.signatures import PROVENANCE_EXTENSION, Status
from communique.stix.markings import RECIPIENTS_EXTENSION, TLP2_IDS, Tlp
from communique.sync import engine, peers
from communique.sync.peers import Mapping
from tests.federation_support import A, B, Pair, marked

def test_pull_stores_what_tlp_allows_and_verifies_the_producer(pair: Pair) -> None:
    """CLEAR to AMBER+STRICT and the unmarked object arrive, signed by B and verified; RED never."""
    levels = [Tlp.CLEAR, Tlp.GREEN, Tlp.AMBER, Tlp.AMBER_STRICT, Tlp.RED, None]
    posted = [marked(i, level) for i, level in enumerate(levels)]
    posted[4]["extensions"] = {RECIPIENTS_EXTENSION: {  # so that B serves it to CERT-A
        "extension_type": "property-extension", "recipient_organizations": [A]}}
    pair.b.post(pair.writer, pair.intel, posted)
    added = pair.add_peer()
    assert added.kid is not None
    [run] = pair.sync()
    assert run.error is None and run.moved is not None
    assert run.moved.added == 5 and run.moved.refused == 1
    assert any("TLP:RED never travels" in reason for reason in run.moved.reasons or {})
    stored = pair.stored_on_a()
    assert sorted(s[0] for s in stored) == sorted(o["id"] for o in posted if o is not posted[4])
    assert {s[2] for s in stored} == {Status.VERIFIED}


def test_sync_resumes_exactly_once(pair: Pair) -> None:
    """A second run moves nothing; new objects on B arrive once; each version is stored once."""
    pair.b.post(pair.writer, pair.intel, [marked(i, Tlp.GREEN) for i in range(25)])
    pair.add_peer()
    small = engine.Options(page_size=7)
    [first] = pair.sync(small)
    assert first.error is None and first.moved and first.moved.added == 25
    assert first.moved.pages == 4
    [again] = pair.sync(small)
    assert again.moved and again.moved.added == 0 and again.moved.duplicate == 0
    pair.b.post(pair.writer, pair.intel, [marked(100 + i, Tlp.GREEN) for i in range(3)])
    [third] = pair.sync(small)
    assert third.moved and third.moved.added == 3
    stored = pair.stored_on_a()
    assert len(stored) == 28 == len({(s[0], s[1]) for s in stored})


class Faulty(httpx.BaseTransport):
    """Real HTTP to the peer, with one fault injected into the Nth Get Objects request."""

    def __init__(self, fault: str, at: int, lasting: bool = False) -> None:
        self.inner = httpx.HTTPTransport()
        self.fault, self.at, self.seen, self.lasting = fault, at, 0, lasting

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        is_page = request.method == "GET" and request.url.path.endswith("/objects/")
        if is_page:
            self.seen += 1
        if is_page and (self.seen == self.at or (self.lasting and self.seen > self.at)):
            if self.fault == "reset":
                raise httpx.ReadError("connection reset by peer")
            if self.fault == "500":
                return httpx.Response(500, json={"title": "boom"},
                                      headers={"Content-Type": "application/taxii+json;version=2.1"})
            if self.fault == "garbage":
                return httpx.Response(200, content=b"<html>not taxii</html>",
                                      headers={"Content-Type": "application/taxii+json;version=2.1"})
        response = self.inner.handle_request(request)
        if is_page and self.seen == self.at and self.fault == "tamper":
            response.read()
            envelope = orjson.loads(response.content)
            envelope["objects"][0]["name"] = "changed after signing"
            return httpx.Response(200, content=orjson.dumps(envelope), headers=response.headers)
        return response


@pytest.mark.parametrize("fault", ["reset", "garbage"])
def test_a_passing_fault_mid_sync_is_recovered_in_the_run(pair: Pair, fault: str) -> None:
    """A failed page request is asked again from the saved point: nothing lost, nothing twice."""
    pair.b.post(pair.writer, pair.intel, [marked(i, Tlp.GREEN) for i in range(20)])
    pair.add_peer()
    [run] = pair.sync(engine.Options(page_size=5, attempts=1, transport=Faulty(fault, 2)))
    assert run.error is None and run.moved and run.moved.added == 20
    stored = pair.stored_on_a()
    assert len(stored) == 20 == len({s[0] for s in stored})


@pytest.mark.parametrize("fault", ["reset", "garbage"])
def test_a_lasting_fault_mid_sync_is_recorded_and_the_next_run_completes(pair: Pair,
                                                                        fault: str) -> None:
    """The failed page is not stored, the error is on the link, and a later run fills the gap."""
    pair.b.post(pair.writer, pair.intel, [marked(i, Tlp.GREEN) for i in range(20)])
    pair.add_peer()
    [broken] = pair.sync(engine.Options(page_size=5, attempts=1,
                                        transport=Faulty(fault, 2, lasting=True)))
    assert broken.error is not None
    assert len(pair.stored_on_a()) == 5
    with pair.a.store.read() as tx:
        [link] = tx.links_of()
    assert link.last_error == broken.error and link.errors_in_row == 1
    [fixed] = pair.sync(engine.Options(page_size=5))
    assert fixed.error is None and fixed.moved and fixed.moved.added == 15
    stored = pair.stored_on_a()
    assert len(stored) == 20 == len({s[0] for s in stored})


def test_a_500_on_one_page_is_retried(pair: Pair) -> None:
    pair.b.post(pair.writer, pair.intel, [marked(i, Tlp.GREEN) for i in range(10)])
    pair.add_peer()
    [run] = pair.sync(engine.Options(page_size=5, attempts=3, transport=Faulty("500", 2)))
    assert run.error is None and run.moved and run.moved.added == 10


def test_a_tampered_object_is_refused_and_recorded(pair: Pair) -> None:
    """One property changed after signing: refused (invalid signature), audited; the rest stored."""
    pair.b.post(pair.writer, pair.intel, [marked(i, Tlp.GREEN) for i in range(3)])
    pair.add_peer()
    [run] = pair.sync(engine.Options(transport=Faulty("tamper", 1)))
    assert run.error is None and run.moved and run.moved.added == 2 and run.moved.refused == 1
    assert any("invalid signature" in r for r in run.moved.reasons or {})
    with pair.a.store.read() as tx:
        entries = tx.audit_entries(action="object.invalid_signature")
    assert len(entries) == 1


def test_pull_into_a_collection_others_read_is_refused(pair: Pair) -> None:
    shared = pair.a.collection("Shared", read=(A, "Other"), alias="shared")
    with pytest.raises(Exception, match="only your organisation reads"):
        pair.add_peer(pulls=[Mapping(pair.intel, shared)])
    pair.add_peer(name="b-green", pulls=[Mapping(pair.intel, shared)], max_tlp=Tlp.GREEN)


def test_a_wrong_fingerprint_is_not_pinned(pair: Pair) -> None:
    with pytest.raises(Exception, match="fingerprint"):
        pair.add_peer(fingerprint="not-the-key")
    with pair.a.store.read() as tx:
        assert tx.list_peers() == []


def test_push_sends_what_the_peer_org_may_read_and_never_returns_an_object(pair: Pair) -> None:
    """A pushes its 'outbox' to B's 'inbox': objects pulled from B are never pushed back."""
    outbox = pair.a.collection("Outbox", read=(A, B), write=(A,), alias="outbox")
    inbox = pair.b.collection("Inbox", read=(B,), write=(A,), alias="inbox")
    pusher = pair.b.member(A, role="analyst")
    push_token = pair.token_file.parent / "push.token"
    push_token.write_text(pusher.token)
    push_token.chmod(0o600)
    author = pair.a.member(A)
    levels = [Tlp.CLEAR, Tlp.GREEN, Tlp.AMBER, Tlp.RED, None]
    pair.a.post(author, outbox, [marked(i, level) for i, level in enumerate(levels)])
    peers.add_peer(pair.a.store, name="b-push", url=f"{pair.b.root}/", token_file=str(push_token),
                   pulls=[], pushes=[Mapping(inbox, outbox)], every_seconds=60,
                   max_tlp=Tlp.AMBER, org=B, as_org=A)
    with pair.a.store.read() as tx:
        peer = tx.find_peer("b-push")
    [run] = engine.sync_peer(pair.a.store, peer)  # type: ignore[arg-type]
    # RED is never offered at all; the unmarked (AMBER by default here) is held back
    assert run.error is None and run.moved and run.moved.added == 3 and run.moved.refused == 1
    listing = httpx.get(pair.b.objects_url(inbox), headers=pair.writer.headers).json()
    names = sorted(o["name"] for o in listing["objects"])
    assert names == ["Indicator 0", "Indicator 1", "Indicator 2"]
    assert all(PROVENANCE_EXTENSION in o["extensions"] for o in listing["objects"])
    [again] = engine.sync_peer(pair.a.store, peer)  # type: ignore[arg-type]
    assert again.moved and again.moved.added == 0


def test_objects_from_a_peer_are_never_pushed_back_to_it(pair: Pair) -> None:
    """Pull B's objects into A, then push that collection to B: nothing goes back."""
    inbox = pair.b.collection("Inbox", read=(B,), write=(A,), alias="inbox")
    pusher = pair.b.member(A, role="analyst")
    pair.token_file.write_text(pusher.token)  # one token to read 'intel' and write 'inbox'
    pair.b.post(pair.writer, pair.intel, [marked(i, Tlp.GREEN) for i in range(4)])
    pair.add_peer(pushes=[Mapping("inbox", pair.from_b)])
    runs = pair.sync()
    assert [r.error for r in runs] == [None, None]
    pulled, pushed = runs
    assert pulled.moved and pulled.moved.added == 4
    assert pushed.moved and pushed.moved.added == 0
    listing = httpx.get(pair.b.objects_url(inbox), headers=pair.writer.headers)
    assert listing.json().get("objects", []) == []


@pytest.mark.slow
def test_attack_and_mixed_indicators_replicate_exactly(pair: Pair) -> None:
    """ATT&CK Enterprise plus 2,000 generated indicators of every level: A ends with exactly
    the non-RED objects, each version once, each verified as B's."""
    import random

    from communique import datasets, importer, node
    from communique.settings import Settings

    objects, version = importer.read_document(datasets.attack_enterprise().read_bytes())
    levels = [Tlp.CLEAR, Tlp.GREEN, Tlp.AMBER, Tlp.AMBER_STRICT, Tlp.RED, None]
    chooser = random.Random(4)
    generated = [marked(i, chooser.choice(levels)) for i in range(2000)]
    settings = Settings(database=pair.b.database_url)
    provenance = node.local_provenance(pair.b.store, settings, node.signer(pair.b.store, settings))
    with pair.b.store.read() as tx:
        intel = tx.get_collection("default", pair.intel)
        org_b = tx.find_organisation(B)
    assert intel is not None and org_b is not None
    for batch, batch_version in ((objects, version), (generated, "2.1")):
        summary = importer.import_objects(pair.b.store, intel, batch, batch_version,
                                          provenance=provenance, producer_org=org_b.id)
        assert summary.counts["refused"] == 0
    pair.add_peer()
    [run] = pair.sync(engine.Options(page_size=1000))
    assert run.error is None and run.moved and run.moved.complete, run
    red = {o["id"] for o in generated if o.get("object_marking_refs") == [TLP2_IDS[Tlp.RED]]}
    assert run.moved.refused == 0, run.moved.reasons  # B never serves its RED objects to A
    stored = pair.stored_on_a()
    assert len(stored) == len({(s[0], s[1]) for s in stored})
    assert {s[0] for s in stored} == {o["id"] for o in objects} | \
        {o["id"] for o in generated} - red
    assert {s[2] for s in stored} == {Status.VERIFIED}
    [again] = pair.sync()
    assert again.moved and again.moved.added == 0


def test_the_same_object_signed_by_two_nodes_is_one_object(pair: Pair) -> None:
    """A and B each import the same public object (each signs its copy): pulled, B's copy is a
    duplicate of A's, not a conflicting version."""
    public = marked(7, Tlp.CLEAR)
    author = pair.a.member(A)
    own = pair.a.collection("Own", read=(A,), write=(A,), alias="own")
    pair.a.post(author, own, [public])
    pair.b.post(pair.writer, pair.intel, [public])
    pair.add_peer(pulls=[Mapping(pair.intel, own)])
    [run] = pair.sync()
    assert run.error is None and run.moved and run.moved.duplicate == 1 and run.moved.added == 0
