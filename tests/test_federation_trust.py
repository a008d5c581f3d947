"""What a peer may not do: claim keys or identities, widen TLP after the fact, or be re-signed."""

from __future__ import annotations

import httpx
import orjson
import pytest
import requests

from communique import node
from communique.errors import CommuniqueError
from communique.provenance import signatures
from communique.provenance.signatures import PROVENANCE_EXTENSION, Status
from communique.stix.markings import Tlp
from communique.sync import engine, peers
from communique.sync.peers import Mapping
from tests.cli_support import communique
from tests.federation_support import A, B, Pair, marked


class ServingIdentity(httpx.BaseTransport):
    """Real HTTP to the peer, but its API root carries ``identity`` instead of its own."""

    def __init__(self, identity: object) -> None:
        self.inner, self.identity = httpx.HTTPTransport(), identity

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.method == "GET" and not request.url.path.endswith("/objects/") \
                and request.url.path.count("/") == 2:
            response.read()
            root = orjson.loads(response.content)
            root["x_communique_identity"] = self.identity
            return httpx.Response(200, content=orjson.dumps(root), headers={
                "Content-Type": response.headers["content-type"]})
        return response


def resigned(pair: Pair, change) -> dict:  # type: ignore[no-untyped-def]
    """B's identity, changed by ``change`` and signed again with B's own key."""
    signer = node.signer(pair.b.store, pair.b.settings)
    identity = signatures.without_provenance(signer.identity)
    identity["extensions"] = {PROVENANCE_EXTENSION: {
        "extension_type": "property-extension",
        "signing_keys": [signer.key.public_jwk()]}}
    change(identity)
    return signatures.sign(identity, signer.key.private, signed_by=signer.identity_id)


def trusted_keys(pair: Pair) -> dict[str, tuple[str, str]]:
    with pair.a.store.read() as tx:
        return {k.kid: (k.identity_id, k.state) for k in tx.list_keys()}


def test_a_peer_cannot_claim_another_nodes_key(pair: Pair) -> None:
    """B announces A's own key among its keys: refused, and A's key stays A's and trusted."""
    pair.add_peer()
    own = node.signer(pair.a.store, pair.a.settings)
    before = trusted_keys(pair)
    hostile = resigned(pair, lambda i: i["extensions"][PROVENANCE_EXTENSION][
        "signing_keys"].append(own.key.public_jwk()))
    [run] = pair.sync(engine.Options(transport=ServingIdentity(hostile)))
    assert run.error and own.identity_id in run.error and "stopped" in run.error
    assert trusted_keys(pair) == before
    assert before[own.key.kid] == (own.identity_id, "trusted")


def test_an_identity_not_signed_by_its_keys_is_refused(pair: Pair) -> None:
    pair.add_peer()
    signer = node.signer(pair.b.store, pair.b.settings)
    tampered = dict(signer.identity, name="someone else")
    [run] = pair.sync(engine.Options(transport=ServingIdentity(tampered)))
    assert run.error and "not signed by a key it announces" in run.error
    garbage = dict(signer.identity, extensions=["x"])
    [run] = pair.sync(engine.Options(transport=ServingIdentity(garbage)))
    assert run.error and "identity" in run.error
    with pair.a.store.read() as tx:
        assert [k.state for k in tx.list_keys(state="pending")] == []


def test_a_peer_presenting_this_nodes_identity_is_not_added(pair: Pair) -> None:
    own = node.signer(pair.a.store, pair.a.settings).identity
    with pytest.raises(CommuniqueError, match="own identity"):
        pair.add_peer(options=engine.Options(transport=ServingIdentity(own)))


def test_collections_holding_amber_from_a_peer_are_not_widened(pair: Pair) -> None:
    pair.b.post(pair.writer, pair.intel, [marked(1, Tlp.AMBER), marked(2, None)])
    pair.add_peer()
    pair.sync()
    pair.a.org("Other")
    run = communique("collection", "grant", "from-b", "--org", "Other", "--read",
                     database=pair.a.database_url)
    assert run.code == 1 and "no organisation but the one they were shared with" in run.err
    # the unmarked one was stored at AMBER: a lower default does not widen it
    assert communique("collection", "set", "from-b", "--tlp-default", "clear",
                      database=pair.a.database_url).code == 0
    assert sorted(level for _, _, level in _levels(pair)) == [Tlp.AMBER, Tlp.AMBER]


def _levels(pair: Pair) -> list[tuple[str, int, int]]:
    from communique import access
    from communique.taxii import filters
    from communique.taxii.filters import Query

    with pair.a.store.read() as tx:
        target = tx.get_collection("default", pair.from_b)
        assert target is not None
        page = tx.list_objects(target.id, Query(limit=100, versions=filters.ALL_VERSIONS),
                               visibility=access.operator_view(target), after=None)
    return [(r.stix_id, r.version, r.tlp) for r in page.records]


def test_what_a_peer_node_pushes_is_relayed_not_re_signed(pair: Pair) -> None:
    """B knows A as a peer: what A's account posts to B is held to the pull rules, and
    objects A relays unsigned stay unsigned on B (B does not vouch for them)."""
    token = pair.token_file.parent / "a-on-a.token"
    token.write_text(pair.a.member(B, role="reader").token)
    token.chmod(0o600)
    a_intel = pair.a.collection("A intel", read=(A, B), write=(A,), alias="a-intel")
    peers.add_peer(pair.b.store, name="a", url=f"{pair.a.root}/", token_file=str(token),
                   pulls=[Mapping(a_intel, "intel")], pushes=[], every_seconds=60,
                   max_tlp=Tlp.GREEN, org=A, as_org=B)
    inbox = pair.b.collection("Inbox", read=(B, "Third"), write=(A,), alias="inbox")
    relay = pair.b.member(A)
    unsigned, strict = marked(1, Tlp.GREEN), marked(2, Tlp.AMBER_STRICT)
    status = pair.b.post(relay, inbox, [unsigned, strict])
    assert status["success_count"] == 1
    assert "above what this peer may exchange" in status["failures"][0]["message"]
    [stored] = requests.get(pair.b.objects_url(inbox), headers=pair.writer.headers,
                            timeout=30).json()["objects"]
    assert stored == unsigned and not signatures.is_signed(stored)
    assert signatures.verify(stored, node.keyring(pair.b.store)).status is Status.UNSIGNED
