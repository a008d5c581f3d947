"""Running a peer's links: one at a time, each failure recorded on its link, never on the others.

``sync_peer`` is what `communique peer sync` and the scheduler call. It reads the
peer's token from its file, checks the identity the peer publishes against the
key pinned for it (a new key waits for an administrator), then runs every pull
and push link. Whatever goes wrong with one link is written to that link's
state (last error, errors in a row, next attempt after a backoff) and the run
goes on; a peer that fails as a whole marks all its links.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import httpx

from communique import audit, ingest, node, timestamps
from communique.errors import BadRequest, CommuniqueError, Conflict
from communique.provenance import trust
from communique.store.base import Peer, PeerLink, Store
from communique.sync.client import PeerError, TaxiiClient
from communique.sync.common import MAX_PAGES, Moved, peer_actor
from communique.sync.pull import pull
from communique.sync.push import push
from communique.taxii.resources import IDENTITY_PROPERTY

_BACKOFF_MAX_US = 3_600 * 1_000_000


@dataclass(frozen=True)
class Options:
    """How runs behave: limits and the network seam."""

    timeout: float = 30.0
    attempts: int = 3
    accept_invalid: bool = False
    transport: httpx.BaseTransport | None = None
    page_size: int = 1000
    ca_file: str = ""  # PEM authorities for peers' HTTPS (empty: the usual ones)
    max_pages: int = MAX_PAGES  # per link and run: a peer that pages forever is cut off


@dataclass
class LinkRun:
    """The outcome of one link in one run."""

    link: PeerLink
    moved: Moved | None = None
    error: str | None = None


def sync_peer(store: Store, peer: Peer, options: Options = Options(),
              progress: Callable[[PeerLink, int], None] = lambda link, n: None) -> list[LinkRun]:
    """Run every link of ``peer`` once; return what each did. Never raises for the peer's faults."""
    with store.read() as tx:
        links = tx.links_of(peer.id)
    try:
        client = TaxiiClient(peer.url, read_token(peer.token_file), timeout=options.timeout,
                             attempts=options.attempts, transport=options.transport,
                             ca_file=options.ca_file)
    except CommuniqueError as exc:
        return [_failed(store, peer, link, exc.description) for link in links]
    with client:
        try:
            root = client.api_root()
            check_identity(store, peer, root)
        except CommuniqueError as exc:
            return [_failed(store, peer, link, exc.description) for link in links]
        except Exception as exc:  # hostile input must not escape as a crash of the scheduler
            message = f"internal error: {type(exc).__name__}: {exc}"[:500]
            return [_failed(store, peer, link, message) for link in links]
        limit = root.get("max_content_length")
        limit = limit if isinstance(limit, int) and limit > 1024 else 1024 * 1024
        provenance = ingest.Provenance(node.keyring(store), accept_invalid=options.accept_invalid)
        return [_run(store, peer, link, client, provenance, limit, options, progress)
                for link in links]


def _run(store: Store, peer: Peer, link: PeerLink, client: TaxiiClient,
         provenance: ingest.Provenance, max_content_length: int, options: Options,
         progress: Callable[[PeerLink, int], None]) -> LinkRun:
    started = timestamps.now_us()
    try:
        if link.direction == "pull":
            moved = pull(store, peer=peer, link=link, client=client, provenance=provenance,
                         page_size=options.page_size, max_pages=options.max_pages,
                         progress=lambda n: progress(link, n))
        else:
            moved = push(store, peer=peer, link=link, client=client,
                         max_content_length=max_content_length, max_pages=options.max_pages,
                         progress=lambda n: progress(link, n))
    except CommuniqueError as exc:
        return _failed(store, peer, link, exc.description)
    except Exception as exc:  # a bug must not stop the other peers; it is recorded, not hidden
        return _failed(store, peer, link, f"internal error: {type(exc).__name__}: {exc}"[:500])
    with store.write() as tx:
        values: dict = {"last_attempt": started, "errors_in_row": 0, "last_error": None}
        if moved.complete:
            values["last_success"] = started
            values["next_due"] = started + peer.every_seconds * 1_000_000
        else:  # stopped at the page limit: carry on at the next tick
            values["next_due"] = started
        tx.update_link(link.id, **values)
    return LinkRun(link, moved)


def _failed(store: Store, peer: Peer, link: PeerLink, message: str) -> LinkRun:
    """Record a failed run on the link: the message, and when to try again (backoff)."""
    now = timestamps.now_us()
    with store.write() as tx:
        current = next((x for x in tx.links_of(peer.id) if x.id == link.id), link)
        errors = current.errors_in_row + 1
        backoff = min(peer.every_seconds * 1_000_000 * 2 ** min(errors - 1, 10), _BACKOFF_MAX_US)
        tx.update_link(link.id, last_attempt=now, last_error=message[:2000],
                       errors_in_row=errors, next_due=now + backoff)
        tx.append_audit(peer_actor(peer).event(
            f"sync.{link.direction}", target=link.local_collection, outcome=audit.FAILED,
            peer=peer.name, remote=link.remote_collection, error=message[:500]), now=now)
    return LinkRun(link, error=message)


def read_token(path: str) -> str:
    """Return the token in ``path`` (its first line), or raise saying why it cannot be used."""
    try:
        if Path(path).stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise PeerError(f"the token file {path} may be read by others: run `chmod 600 {path}`")
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PeerError(f"cannot read the peer's token file {path}: "
                        f"{getattr(exc, 'strerror', None) or exc}") from None
    token = text.strip().splitlines()[0].strip() if text.strip() else ""
    if not token or len(token) > 4096 or not token.isprintable() or not token.isascii():
        raise PeerError(f"the token file {path} does not hold a token on its first line")
    return token


def check_identity(store: Store, peer: Peer, root: dict) -> None:
    """Compare the keys a peer announces with those pinned; hold any new one for approval."""
    if peer.identity_id is None:
        return
    announced = root.get(IDENTITY_PROPERTY)
    if announced is None:
        raise PeerError("the peer no longer publishes its node identity; its key cannot be "
                        "checked (remove and add the peer again if this is expected)")
    try:
        identity_id, jwks = trust.announced_keys(announced)
    except BadRequest as exc:
        raise PeerError(f"the peer's node identity is unusable: {exc.description}") from None
    if identity_id != peer.identity_id:
        raise PeerError(f"the peer now presents identity {identity_id}, not the pinned "
                        f"{peer.identity_id}: synchronisation stopped")
    now = timestamps.now_us()
    try:
        with store.write() as tx:
            trust.hold_new(tx, identity_id=identity_id, jwks=jwks, source=f"peer {peer.name}",
                           now=now, actor=peer_actor(peer))
    except Conflict as exc:
        raise PeerError(f"{exc.description}: synchronisation stopped") from None


def run_due(store: Store, options: Options = Options(),
            renew: Callable[[], None] = lambda: None) -> list[LinkRun]:
    """Run every peer that has a link due now (the scheduler's tick); ``renew`` is called
    before each peer (the scheduler renews its lease there)."""
    now = timestamps.now_us()
    with store.read() as tx:
        peers = {p.id: p for p in tx.list_peers()}
        due = {link.peer_id for link in tx.links_of() if link.next_due <= now}
    runs: list[LinkRun] = []
    for peer_id in sorted(due):
        if peer_id not in peers:
            continue
        renew()
        try:
            runs.extend(sync_peer(store, peers[peer_id], options))
        except Exception as exc:  # one peer's failure (or a bug) never stops the others
            with store.read() as tx:
                links = tx.links_of(peer_id)
            message = f"internal error: {type(exc).__name__}: {exc}"[:500]
            runs.extend(_failed(store, peers[peer_id], link, message) for link in links)
    return runs
