"""Federation under faults, and three nodes in a ring."""

from __future__ import annotations

import base64
import itertools
from pathlib import Path

import httpx
import orjson
import pytest
import requests
from joserfc import jws
from joserfc.jwk import OKPKey
from sqlalchemy import update

from communique import access, timestamps
from communique.provenance.signatures import PROVENANCE_EXTENSION, Status
from communique.stix.markings import Tlp
from communique.store import schema
from communique.sync import engine, peers
from communique.sync.peers import Mapping
from communique.taxii import filters
from communique.taxii.filters import Query
from tests.conftest import BACKENDS, fresh_database
from tests.federation_support import A, B, Pair, marked
from tests.support import indicator, running_node, ts

HOUR_US = 3_600 * 1_000_000


class Rewriting(httpx.BaseTransport):
    """Real HTTP to the peer; ``change(n, request, response)`` may alter the nth objects page."""

    def __init__(self, change) -> None:  # type: ignore[no-untyped-def]
        self.inner, self.change, self.pages = httpx.HTTPTransport(), change, 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        is_page = request.method == "GET" and request.url.path.endswith("/objects/")
        if is_page:
            self.pages += 1
            request = self.change(self.pages, request, None) or request
        response = self.inner.handle_request(request)
        if is_page:
            response.read()
            return self.change(self.pages, request, response) or response
        return response


def envelope_of(response: httpx.Response) -> dict:
    return orjson.loads(response.content)


def replaced(response: httpx.Response, envelope: dict, **headers: str) -> httpx.Response:
    dropped = {"content-length", *(name.lower() for name in headers)}
    merged = {k: v for k, v in response.headers.items() if k.lower() not in dropped}
    merged.update(headers)
    return httpx.Response(response.status_code, content=orjson.dumps(envelope), headers=merged)


def test_a_peer_dying_mid_page_loses_and_duplicates_nothing(pair: Pair) -> None:
    pair.b.post(pair.writer, pair.intel, [marked(i, Tlp.GREEN) for i in range(12)])
    pair.add_peer()

    def die(n, request, response):  # type: ignore[no-untyped-def]
        if n >= 2 and response is None:  # and stays down
            raise httpx.RemoteProtocolError("peer closed connection without sending complete body")

    [run] = pair.sync(engine.Options(page_size=5, attempts=1, transport=Rewriting(die)))
    assert run.error and "could not be reached" in run.error
    assert len(pair.stored_on_a()) == 5
    [again] = pair.sync(engine.Options(page_size=5))
    assert again.moved and again.moved.added == 7 and again.moved.duplicate == 1  # re-fetched
    assert len({s[0] for s in pair.stored_on_a()}) == 12 == len(pair.stored_on_a())


def test_a_duplicated_page_is_caught_and_the_next_run_completes(pair: Pair) -> None:
    pair.b.post(pair.writer, pair.intel, [marked(i, Tlp.GREEN) for i in range(10)])
    pair.add_peer()
    first: dict = {}

    def repeat(n, request, response):  # type: ignore[no-untyped-def]
        if response is None:
            return None
        if n == 1:
            first["page"] = response
        if n == 2:
            return first["page"]
        return None

    [run] = pair.sync(engine.Options(page_size=4, attempts=1, transport=Rewriting(repeat)))
    assert run.error and "outside the requested filter" in run.error
    [again] = pair.sync(engine.Options(page_size=4))
    assert again.error is None
    stored = pair.stored_on_a()
    assert len(stored) == 10 == len({s[0] for s in stored})


def test_a_peer_clock_an_hour_off_changes_nothing(pair: Pair) -> None:
    """The resume point is the peer's own date_added, so its clock never meets ours."""
    pair.b.post(pair.writer, pair.intel, [marked(i, Tlp.GREEN) for i in range(6)])
    pair.add_peer()

    def skewed(n, request, response):  # type: ignore[no-untyped-def]
        if response is None:  # the peer sees our added_after in its own (skewed) time
            params = dict(request.url.params)
            if "added_after" in params:
                real = timestamps.parse(params["added_after"]) - HOUR_US
                url = request.url.copy_set_param("added_after", timestamps.format_us(real))
                return httpx.Request(request.method, url, headers=request.headers)
            return None
        shifted = {name: timestamps.format_us(timestamps.parse(response.headers[name]) + HOUR_US)
                   for name in ("X-TAXII-Date-Added-First", "X-TAXII-Date-Added-Last")
                   if name in response.headers}
        return replaced(response, envelope_of(response), **shifted)

    options = engine.Options(page_size=4, transport=Rewriting(skewed))
    [run] = pair.sync(options)
    assert run.error is None and run.moved and run.moved.added == 6
    pair.b.post(pair.writer, pair.intel, [marked(10 + i, Tlp.GREEN) for i in range(3)])
    [again] = pair.sync(engine.Options(page_size=4, transport=Rewriting(skewed)))
    assert again.error is None and again.moved and again.moved.added == 3
    assert len(pair.stored_on_a()) == 9


def test_a_forged_signature_is_refused(pair: Pair) -> None:
    """A signature made with another key under the peer's key id is invalid."""
    pair.b.post(pair.writer, pair.intel, [marked(i, Tlp.GREEN) for i in range(2)])
    pair.add_peer()
    forger = OKPKey.generate_key("Ed25519")

    def forge(n, request, response):  # type: ignore[no-untyped-def]
        if response is None:
            return None
        envelope = envelope_of(response)
        entry = envelope["objects"][0]["extensions"][PROVENANCE_EXTENSION]
        header = orjson.loads(base64.urlsafe_b64decode(entry["signature"].split(".")[0] + "=="))
        compact = jws.serialize_compact(header, b"anything", forger, algorithms=["EdDSA"])
        entry["signature"] = jws.detach_content(compact)
        return replaced(response, envelope)

    [run] = pair.sync(engine.Options(transport=Rewriting(forge)))
    assert run.moved and run.moved.added == 1 and run.moved.refused == 1
    assert all(s[2] == Status.VERIFIED for s in pair.stored_on_a())


def test_a_replayed_old_version_is_stored_once_and_stays_old(pair: Pair) -> None:
    first = indicator(1, created=ts(0), modified=ts(0))
    second = {**first, "modified": ts(60), "name": "newer"}
    pair.b.post(pair.writer, pair.intel, [first, second])
    pair.add_peer()
    pair.sync()
    served_old = [o for o in requests.get(
        f"{pair.b.objects_url(pair.intel)}?match[version]=all", headers=pair.writer.headers
    ).json()["objects"] if o["modified"] == ts(0)]
    pair.b.post(pair.writer, pair.intel, [marked(5, Tlp.GREEN)])

    def replay(n, request, response):  # type: ignore[no-untyped-def]
        if response is None:
            return None
        envelope = envelope_of(response)
        envelope["objects"] = envelope["objects"] + served_old
        return replaced(response, envelope)

    [run] = pair.sync(engine.Options(transport=Rewriting(replay)))
    assert run.moved and run.moved.added == 1 and run.moved.duplicate == 1
    with pair.a.store.read() as tx:
        target = tx.get_collection("default", pair.from_b)
        assert target is not None
        latest = tx.list_objects(target.id, Query(limit=10, versions=filters.LAST_VERSION),
                                 visibility=access.operator_view(target), after=None,
                                 object_id=first["id"])
    assert len(latest.records) == 1 and orjson.loads(latest.records[0].body)["name"] == "newer"
    assert len([s for s in pair.stored_on_a() if s[0] == first["id"]]) == 2


def test_an_object_the_peer_refuses_is_retried_until_accepted(pair: Pair) -> None:
    """B already holds another object under the same id and version: refused, kept, retried."""
    inbox = pair.b.collection("Inbox", read=(B,), write=(A, B), alias="inbox")
    outbox = pair.a.collection("Outbox", read=(A, B), write=(A,), alias="outbox")
    pusher = pair.b.member(A)
    push_token = pair.token_file.parent / "push.token"
    push_token.write_text(pusher.token)
    push_token.chmod(0o600)
    clash = marked(1, Tlp.GREEN)
    pair.b.post(pair.writer, inbox, [{**clash, "name": "B's own"}])
    pair.a.post(pair.a.member(A), outbox, [clash, marked(2, Tlp.GREEN)])
    peers.add_peer(pair.a.store, name="b-push", url=f"{pair.b.root}/", token_file=str(push_token),
                   pulls=[], pushes=[Mapping(inbox, outbox)], every_seconds=60,
                   max_tlp=Tlp.GREEN, org=B, as_org=A)
    with pair.a.store.read() as tx:
        peer = tx.find_peer("b-push")
    assert peer is not None
    [run] = engine.sync_peer(pair.a.store, peer)
    assert run.moved and run.moved.added == 1 and run.moved.refused == 1
    assert any("refused by the peer" in r for r in run.moved.reasons or {})
    with pair.a.store.read() as tx:
        [link] = tx.links_of(peer.id)
        assert [(s, a) for s, _, a in tx.due_retries(link.id, now=2**62, limit=10)] == \
            [(clash["id"], 1)]
    requests.delete(f"{pair.b.objects_url(inbox)}{clash['id']}/", headers=pair.writer.headers,
                    timeout=30).raise_for_status()
    with pair.a.store.write() as tx:  # the backoff has passed
        tx.conn.execute(update(schema.push_retries).values(next_try=0))
    [retried] = engine.sync_peer(pair.a.store, peer)
    assert retried.moved and retried.moved.added == 1
    with pair.a.store.read() as tx:
        assert tx.due_retries(link.id, now=2**62, limit=10) == []
    names = sorted(o["name"] for o in requests.get(
        pair.b.objects_url(inbox), headers=pair.writer.headers, timeout=30).json()["objects"])
    assert names == ["Indicator 1", "Indicator 2"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_three_nodes_in_a_ring_converge(request: pytest.FixtureRequest, tmp_path: Path,
                                        backend: str) -> None:
    """A -> B -> C -> A by pull, plus pushes both ways between A and B: every node ends with
    every object once, verified, and a further round moves nothing."""
    orgs = ("X", "Y", "Z")
    with running_node(fresh_database(request, backend, tmp_path)) as x, \
            running_node(fresh_database(request, backend, tmp_path)) as y, \
            running_node(fresh_database(request, backend, tmp_path)) as z:
        nodes = {"X": x, "Y": y, "Z": z}
        for node, org in itertools.product(nodes.values(), orgs):
            node.org(org)
        rings = {name: node.collection("Ring", read=orgs, write=orgs, alias="ring")
                 for name, node in nodes.items()}
        authors = {name: node.member(name) for name, node in nodes.items()}
        for name, node in nodes.items():
            node.post(authors[name], rings[name],
                      [marked(i, Tlp.GREEN) | {"name": f"{name} {i}"} for i in range(5)])
        tokens = {}
        for (here, there) in itertools.permutations(nodes, 2):  # a token of 'here' on 'there'
            member = nodes[there].member(here)
            path = tmp_path / f"{here}-on-{there}.token"
            path.write_text(member.token)
            path.chmod(0o600)
            tokens[here, there] = path

        def link(here: str, there: str, pulls: bool, pushes: bool) -> None:
            peers.add_peer(nodes[here].store, name=there.lower(), url=f"{nodes[there].root}/",
                           token_file=str(tokens[here, there]),
                           pulls=[Mapping("ring", "ring")] if pulls else [],
                           pushes=[Mapping("ring", "ring")] if pushes else [],
                           every_seconds=60, max_tlp=Tlp.GREEN, org=there, as_org=here)

        link("X", "Z", True, False)   # X pulls from Z
        link("Y", "X", True, True)    # Y pulls from X and pushes to X
        link("Z", "Y", True, False)   # Z pulls from Y
        link("X", "Y", False, True)   # X pushes to Y
        for here, there in (("Y", "Z"), ("Z", "X")):  # objects arrive through a third node
            identity = tmp_path / f"{there}.json"
            from communique import node as node_setup
            identity.write_bytes(orjson.dumps(node_setup.signer(
                nodes[there].store, nodes[there].settings).identity))
            from tests.cli_support import communique
            kid = node_setup.signer(nodes[there].store, nodes[there].settings).key.kid
            assert communique("key", "trust", str(identity), "--fingerprint", kid,
                              database=nodes[here].database_url).code == 0

        def round_() -> int:
            moved = 0
            for node in nodes.values():
                with node.store.read() as tx:
                    every = tx.list_peers()
                for peer in every:
                    for run in engine.sync_peer(node.store, peer):
                        assert run.error is None, run.error
                        moved += run.moved.added if run.moved else 0
            return moved

        for _ in range(4):
            if round_() == 0:
                break
        assert round_() == 0
        for name, node in nodes.items():
            with node.store.read() as tx:
                target = tx.get_collection("default", rings[name])
                assert target is not None
                page = tx.list_objects(target.id, Query(limit=100, versions=filters.ALL_VERSIONS),
                                       visibility=access.operator_view(target), after=None)
            ids = [r.stix_id for r in page.records]
            assert len(ids) == 15 == len(set(ids)), name
            assert {r.signature for r in page.records} == {Status.VERIFIED}, name
