"""The SQL store's audit log: appending to the hash chain, reading it back.

Mixed into ``sql.SqlTx``. Every append locks the chain's head (a row of
``node_settings``), so concurrent writers on PostgreSQL chain one at a time.
"""

from __future__ import annotations

from typing import Any, Iterator

import orjson
from sqlalchemy import Connection, select, update

from communique import audit
from communique.store import schema as s

HEAD = "audit.head"
_COLUMNS = ("seq", "at", "action", "actor", "org", "target", "address", "outcome", "details",
            "prev_hash", "hash")


class AuditSql:
    """Append to and read the audit log."""

    conn: Connection

    def append_audit(self, event: audit.Event, *, now: int) -> audit.Entry:
        n = s.node_settings
        head = self.conn.execute(select(n.c.value).where(n.c.name == HEAD).with_for_update()).scalar()
        if head is None:
            raise RuntimeError("the audit log's head is missing: run `communique audit verify`")
        seq, _, prev_hash = head.partition(":")
        entry = audit.seal(event, seq=int(seq) + 1, at=now, prev_hash=prev_hash)
        row = {c: getattr(entry, c) for c in _COLUMNS}
        row["details"] = orjson.dumps(entry.details, option=orjson.OPT_SORT_KEYS).decode()
        self.conn.execute(s.audit_log.insert().values(**row))
        self.conn.execute(update(n).where(n.c.name == HEAD).values(value=f"{entry.seq}:{entry.hash}"))
        return entry

    def audit_head(self) -> tuple[int, str] | None:
        n = s.node_settings
        head = self.conn.execute(select(n.c.value).where(n.c.name == HEAD)).scalar()
        if head is None:
            return None
        seq, _, digest = head.partition(":")
        return int(seq), digest

    def audit_entries(self, *, after_seq: int = 0, limit: int = 1000, actor: str | None = None,
                      org: str | None = None, action: str | None = None,
                      since: int | None = None) -> list[audit.Entry]:
        a = s.audit_log
        sql = select(*(a.c[c] for c in _COLUMNS)).where(a.c.seq > after_seq)
        for column, value in (("actor", actor), ("org", org), ("action", action)):
            if value is not None:
                sql = sql.where(a.c[column] == value)
        if since is not None:
            sql = sql.where(a.c.at >= since)
        rows = self.conn.execute(sql.order_by(a.c.seq).limit(limit))
        return [_entry(row) for row in rows]


def _entry(row: Any) -> audit.Entry:
    values = dict(zip(_COLUMNS, row))
    try:
        values["details"] = orjson.loads(values["details"])
    except orjson.JSONDecodeError:  # altered by hand: verify will say which entry
        values["details"] = {"unreadable": values["details"]}
    return audit.Entry(**values)


def walk(tx: AuditSql, batch: int = 5000) -> Iterator[audit.Entry]:
    """Yield every entry in sequence order, a batch at a time."""
    after = 0
    while True:
        entries = tx.audit_entries(after_seq=after, limit=batch)
        yield from entries
        if len(entries) < batch:
            return
        after = entries[-1].seq
