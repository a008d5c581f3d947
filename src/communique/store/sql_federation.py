"""The SQL store's side of federation: trusted keys, peers, their links and push retries.

Mixed into ``sql.SqlTx``. A peer's token is never stored: only the path of the
file that holds it.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any, Callable, Sequence

from sqlalchemy import Connection, delete, func, select, tuple_, update

from communique.store import schema as s
from communique.store.base import Peer, PeerLink, PublicKey

_LINK_COLUMNS = tuple(f.name for f in fields(PeerLink))
_UPDATABLE = frozenset(_LINK_COLUMNS) - {"id", "peer_id", "direction", "remote_collection",
                                          "local_collection"}


class FederationSql:
    """Keys, peers, links and retries."""

    conn: Connection

    # -- keys ----------------------------------------------------------------------
    def put_key(self, key: PublicKey) -> bool:
        """Add a key not known yet; return False (changing nothing) if its id is known."""
        known = self.conn.execute(select(s.trusted_keys.c.kid).where(
            s.trusted_keys.c.kid == key.kid)).first()
        if known:
            return False
        self.conn.execute(s.trusted_keys.insert().values(**asdict(key)))
        return True

    def list_keys(self, *, identity_id: str | None = None,
                  state: str | None = None) -> list[PublicKey]:
        """Return known keys, oldest first (of one identity, in one state, if given)."""
        k = s.trusted_keys
        sql = select(*(k.c[f.name] for f in fields(PublicKey))).order_by(k.c.added, k.c.kid)
        if identity_id is not None:
            sql = sql.where(k.c.identity_id == identity_id)
        if state is not None:
            sql = sql.where(k.c.state == state)
        return [PublicKey(*row) for row in self.conn.execute(sql)]

    def set_key_state(self, kid: str, state: str, *, now: int) -> bool:
        """Mark a key trusted, pending or retired."""
        return bool(self.conn.execute(update(s.trusted_keys).where(
            s.trusted_keys.c.kid == kid).values(state=state, decided=now)).rowcount)

    # -- peers and links -----------------------------------------------------------
    def add_peer(self, peer: Peer, links: Sequence[PeerLink]) -> Peer:
        """Record a peer and its links; return it with its id."""
        values = {k: v for k, v in asdict(peer).items() if k != "id"}
        peer_id = self.conn.execute(s.peers.insert().values(**values)).inserted_primary_key[0]
        for link in links:
            row = {k: v for k, v in asdict(link).items() if k != "id"}
            self.conn.execute(s.peer_links.insert().values(**{**row, "peer_id": peer_id}))
        return Peer(**{**asdict(peer), "id": peer_id})

    def find_peer(self, name: str) -> Peer | None:
        row = self.conn.execute(select(*_peer_columns()).where(s.peers.c.name == name)).first()
        return Peer(*row) if row else None

    def list_peers(self) -> list[Peer]:
        return [Peer(*row) for row in self.conn.execute(
            select(*_peer_columns()).order_by(s.peers.c.name))]

    def remove_peer(self, peer_id: int) -> None:
        links = select(s.peer_links.c.id).where(s.peer_links.c.peer_id == peer_id)
        self.conn.execute(delete(s.push_retries).where(s.push_retries.c.link_id.in_(links)))
        self.conn.execute(delete(s.peer_links).where(s.peer_links.c.peer_id == peer_id))
        self.conn.execute(delete(s.peers).where(s.peers.c.id == peer_id))

    def links_of(self, peer_id: int | None = None) -> list[PeerLink]:
        """Return the links of one peer (or of all), in the order they were added."""
        pl = s.peer_links
        sql = select(*(pl.c[name] for name in _LINK_COLUMNS)).order_by(pl.c.id)
        if peer_id is not None:
            sql = sql.where(pl.c.peer_id == peer_id)
        return [PeerLink(*row) for row in self.conn.execute(sql)]

    def update_link(self, link_id: int, **values: Any) -> None:
        """Record where a link stands (position, outcome of the last run, counts)."""
        if not set(values) <= _UPDATABLE:
            raise ValueError(f"not link state: {sorted(set(values) - _UPDATABLE)}")
        self.conn.execute(update(s.peer_links).where(s.peer_links.c.id == link_id).values(**values))

    def received_levels(self, collection_id: str) -> frozenset[int]:
        """Return the TLP levels of the versions in a collection that came from peers."""
        o = s.objects
        rows = self.conn.execute(select(o.c.tlp).where(
            o.c.collection_id == collection_id, o.c.origin_peer.is_not(None)).distinct())
        return frozenset(int(level) for (level,) in rows if level is not None)

    # -- push retries --------------------------------------------------------------
    def add_retries(self, link_id: int, failures: Sequence[tuple[str, int, str]], *,
                    now: int, backoff: Callable[[int], int]) -> None:
        """Record versions the peer refused (id, version, reason), each to be offered again
        after ``backoff(attempts so far)``."""
        r = s.push_retries
        for stix_id, version, reason in failures:
            key = (r.c.link_id == link_id, r.c.stix_id == stix_id, r.c.version == version)
            attempts = self.conn.execute(select(r.c.attempts).where(*key)).scalar() or 0
            values = {"reason": reason[:2000], "attempts": attempts + 1,
                      "next_try": now + backoff(attempts)}
            if attempts:
                self.conn.execute(update(r).where(*key).values(**values))
            else:
                self.conn.execute(r.insert().values(link_id=link_id, stix_id=stix_id,
                                                    version=version, **values))

    def due_retries(self, link_id: int, *, now: int, limit: int) -> list[tuple[str, int, int]]:
        """Return (id, version, attempts) of refused versions whose retry time has come."""
        r = s.push_retries
        return [tuple(row) for row in self.conn.execute(  # type: ignore[misc]
            select(r.c.stix_id, r.c.version, r.c.attempts).where(
                r.c.link_id == link_id, r.c.next_try <= now).order_by(r.c.next_try).limit(limit))]

    def count_retries(self, link_id: int) -> int:
        """Return how many refused versions of a link wait to be offered again."""
        r = s.push_retries
        return self.conn.execute(select(func.count()).where(r.c.link_id == link_id)).scalar_one()

    def clear_retries(self, link_id: int, keys: Sequence[tuple[str, int]]) -> None:
        r = s.push_retries
        if keys:
            self.conn.execute(delete(r).where(r.c.link_id == link_id,
                                              tuple_(r.c.stix_id, r.c.version).in_(list(keys))))


def _peer_columns() -> list:
    return [s.peers.c[f.name] for f in fields(Peer)]
