"""What an operator needs to see of each link: last success, last error, counts and lag.

Lag is how long ago the link last caught up with everything there was to move
(by this node's clock, so a peer's clock cannot distort it); a link that never
caught up shows no lag but its error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from communique import timestamps
from communique.store.base import Store


@dataclass(frozen=True)
class LinkState:
    peer: str
    direction: str
    remote: str
    local: str
    last_success: int | None
    last_error: str | None
    errors_in_row: int
    moved: int
    refused: int
    retries: int
    lag_seconds: float | None
    next_due: int

    @property
    def healthy(self) -> bool:
        return self.last_error is None and self.last_success is not None

    def as_dict(self) -> dict[str, Any]:
        return {"peer": self.peer, "direction": self.direction, "remote": self.remote,
                "local": self.local, "last_success": _when(self.last_success),
                "last_error": self.last_error, "errors_in_row": self.errors_in_row,
                "moved": self.moved, "refused": self.refused, "waiting_retry": self.retries,
                "lag_seconds": self.lag_seconds, "next_due": _when(self.next_due)}

    def line(self) -> str:
        pair = (f"{self.remote} -> {self.local}" if self.direction == "pull"
                else f"{self.local} -> {self.remote}")
        lag = "never synchronised" if self.lag_seconds is None else f"lag {self.lag_seconds:.0f} s"
        text = (f"{self.peer}\t{self.direction}\t{pair}\t{lag}\t"
                f"{'pulled' if self.direction == 'pull' else 'pushed'} {self.moved}\t"
                f"refused {self.refused}")
        if self.retries:
            text += f"\t{self.retries} waiting to be retried"
        if self.last_error:
            text += f"\n  last error ({self.errors_in_row} in a row): {self.last_error}"
        return text


def link_states(store: Store, *, name: str | None = None, now: int) -> list[LinkState]:
    """Return the state of every link (of one peer, if named)."""
    states = []
    with store.read() as tx:
        peers = {p.id: p for p in tx.list_peers() if name is None or p.name == name}
        names = {c.id: c.alias or c.id for c in tx.list_collections()}
        for link in tx.links_of():
            peer = peers.get(link.peer_id)
            if peer is None:
                continue
            retries = tx.count_retries(link.id)
            lag = None if link.last_success is None else (now - link.last_success) / 1e6
            states.append(LinkState(peer.name, link.direction, link.remote_collection,
                                    names.get(link.local_collection, link.local_collection),
                                    link.last_success, link.last_error, link.errors_in_row,
                                    link.moved, link.refused, retries, lag, link.next_due))
    return states


def _when(micros: int | None) -> str | None:
    return None if micros is None else timestamps.format_us(micros)
