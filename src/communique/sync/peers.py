"""Managing peers: add one (pinning its key), remove it."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from communique import access, audit, node, timestamps
from communique.errors import BadRequest, Conflict, NotFound
from communique.provenance import trust
from communique.stix.markings import Tlp
from communique.store.base import Collection, Peer, PeerLink, Store
from communique.sync.client import PeerError, TaxiiClient
from communique.sync.engine import Options, read_token
from communique.taxii.resources import IDENTITY_PROPERTY

MIN_EVERY, MAX_EVERY = 10, 7 * 86_400


@dataclass(frozen=True)
class Mapping:
    """One ``REMOTE=LOCAL`` (pull) or ``LOCAL=REMOTE`` (push) pair, as given."""

    remote: str
    local: str


@dataclass(frozen=True)
class Added:
    """A new peer, and the key pinned for it (None: it publishes no Communiqué identity)."""

    peer: Peer
    kid: str | None


def parse_mapping(untrusted: str, *, push: bool) -> Mapping:
    """Parse ``A=B``; for a push the local collection comes first."""
    left, sep, right = untrusted.partition("=")
    if not sep or not left.strip() or not right.strip() or len(untrusted) > 400:
        raise BadRequest(f"{untrusted!r}: expected {'LOCAL=REMOTE' if push else 'REMOTE=LOCAL'}")
    left, right = left.strip(), right.strip()
    return Mapping(remote=right, local=left) if push else Mapping(remote=left, local=right)


def add_peer(store: Store, *, name: str, url: str, token_file: str, pulls: list[Mapping],
             pushes: list[Mapping], every_seconds: int, max_tlp: Tlp, org: str, as_org: str,
             fingerprint: str | None = None, allow_http: bool = False,
             options: Options = Options(), actor: audit.Actor = audit.OPERATOR) -> Added:
    """Check everything a peer needs, pin its key, and record it with its links."""
    _check_basics(name, url, every_seconds, pulls, pushes, allow_http)
    token = read_token(str(Path(token_file)))
    with store.read() as tx:
        if tx.find_peer(name):
            raise Conflict(f"a peer named {name!r} exists already")
        peer_org, local_org = tx.find_organisation(org), tx.find_organisation(as_org)
        collections = tx.list_collections()
    if peer_org is None or local_org is None:
        raise NotFound(f"no organisation {org if peer_org is None else as_org!r} "
                       "(add it with `communique org add`)")
    links = [_link("pull", m, collections) for m in pulls] + \
            [_link("push", m, collections) for m in pushes]
    _check_pull_destinations(store, links, collections, max_tlp, local_org.id, peer_org.id)
    with TaxiiClient(url, token, timeout=options.timeout, attempts=options.attempts,
                     transport=options.transport, ca_file=options.ca_file) as client:
        root = client.api_root()
    identity = root.get(IDENTITY_PROPERTY)
    identity_id, jwk = _pinned_key(identity) if identity is not None else (None, None)
    if fingerprint and (jwk is None or jwk["kid"] != fingerprint):
        raise PeerError(f"the peer's key fingerprint is {jwk['kid'] if jwk else 'absent'}, "
                        f"not {fingerprint}: not added")
    now = timestamps.now_us()
    with store.write() as tx:
        if identity_id is not None and identity_id == tx.get_setting(node.IDENTITY):
            raise PeerError("the peer presents this node's own identity: not added")
        peer = tx.add_peer(Peer(0, name, url if url.endswith("/") else url + "/",
                                str(Path(token_file).resolve()), peer_org.id, local_org.id,
                                int(max_tlp), every_seconds, identity_id, now), links)
        if jwk is not None and identity_id is not None:
            trust.pin(tx, identity_id=identity_id, jwk=jwk, source=f"peer {name}", now=now,
                      actor=actor)
        tx.append_audit(actor.event(
            "peer.add", target=name, url=peer.url, max_tlp=Tlp(max_tlp).word,
            pulls=[f"{m.remote}={m.local}" for m in pulls],
            pushes=[f"{m.local}={m.remote}" for m in pushes], every=every_seconds), now=now)
    return Added(peer, jwk["kid"] if jwk else None)


def remove_peer(store: Store, name: str, *, actor: audit.Actor = audit.OPERATOR) -> None:
    """Forget a peer and its links (objects pulled from it stay; its pinned key stays)."""
    with store.write() as tx:
        peer = tx.find_peer(name)
        if peer is None:
            raise NotFound(f"no peer named {name!r}")
        tx.remove_peer(peer.id)
        tx.append_audit(actor.event("peer.remove", target=name), now=timestamps.now_us())


def _pinned_key(identity: object) -> tuple[str, dict[str, str]]:
    """Return the identity id and first key of a peer's identity, after its self-signature."""
    try:
        identity_id, jwks = trust.announced_keys(identity)
    except BadRequest as exc:
        raise PeerError(f"{exc.description}: not added") from None
    return identity_id, jwks[0]


def _check_basics(name: str, url: str, every: int, pulls: list, pushes: list,
                  allow_http: bool) -> None:
    if not name or len(name) > 100 or not name.replace("-", "").replace("_", "").isalnum():
        raise BadRequest("a peer name is 1-100 letters, digits, '-' or '_'")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query \
            or parts.fragment or parts.username or parts.password:
        raise BadRequest("--url must be the peer's TAXII API root URL (http(s)://host/root/), "
                         "without credentials, query or fragment")
    if parts.scheme == "http" and not allow_http and not _loopback(parts.hostname):
        raise BadRequest("the token would travel in clear over http://: use https:// "
                         "(or --allow-http on a network you trust)")
    if not MIN_EVERY <= every <= MAX_EVERY:
        raise BadRequest(f"--every must be between {MIN_EVERY} s and {MAX_EVERY // 86_400} days")
    if not pulls and not pushes:
        raise BadRequest("give at least one --pull or --push")


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _link(direction: str, mapping: Mapping, collections: list[Collection]) -> PeerLink:
    found = [c for c in collections if mapping.local in (c.id, c.alias)]
    if len(found) != 1:
        raise NotFound(f"no local collection {mapping.local!r}")
    return PeerLink(0, 0, direction, mapping.remote, found[0].id)


def _check_pull_destinations(store: Store, links: list[PeerLink], collections: list[Collection],
                             max_tlp: Tlp, local_org: int, peer_org: int) -> None:
    """Refuse, now and visibly, a pull whose objects could never land where it points."""
    by_id = {c.id: c for c in collections}
    for link in links:
        if link.direction != "pull":
            continue
        destination = by_id[link.local_collection]
        with store.read() as tx:
            readers = access.readers(tx.grants_on(destination.id))
        for level in (Tlp.GREEN, Tlp.AMBER):
            if level <= max_tlp:
                rule = access.refusal_to_pull(level, max_tlp=max_tlp, destination=destination,
                                              destination_readers=readers,
                                              entitled_org=local_org, source_org=peer_org)
                if rule:
                    raise BadRequest(f"pull into {destination.alias or destination.id}: {rule}; "
                                     f"lower --max-tlp or pull into a collection that only "
                                     f"your organisation reads")
