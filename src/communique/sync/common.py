"""What pull and push share: limits, the count of a run, and the local side of a link."""

from __future__ import annotations

from dataclasses import dataclass

from communique import access, audit
from communique.store.base import Collection, Peer, Store
from communique.sync.client import PeerError

PAGE = 1000
MAX_PAGES = 10_000  # per run: a peer that pages forever is cut off, and resumed next time


@dataclass
class Moved:
    """What one run of a link did."""

    added: int = 0
    duplicate: int = 0
    refused: int = 0
    pages: int = 0
    complete: bool = False
    reasons: dict[str, int] | None = None  # refusal reason: count (first few kinds)

    def note(self, reason: str) -> None:
        """Count one refusal under its reason (the first 20 kinds are kept)."""
        self.reasons = self.reasons or {}
        if reason in self.reasons or len(self.reasons) < 20:
            self.reasons[reason] = self.reasons.get(reason, 0) + 1


def local_collection(store: Store, collection_id: str) -> tuple[Collection, frozenset[int]]:
    """Return a link's local collection and the organisations that may read it."""
    with store.read() as tx:
        found = [c for c in tx.list_collections() if c.id == collection_id]
        if not found:
            raise PeerError(f"the local collection {collection_id} no longer exists")
        return found[0], access.readers(tx.grants_on(collection_id))


def peer_actor(peer: Peer) -> audit.Actor:
    """Return who synchronisation with ``peer`` is recorded as in the audit log."""
    return audit.Actor(f"peer:{peer.name}", "", "sync")
