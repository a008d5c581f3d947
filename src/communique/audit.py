"""The audit log: an append-only, hash-chained record of who did what, when, from where.

Each entry carries the SHA-256 of the entry before it, computed over the RFC 8785
canonical JSON of that entry's fields, so changing, removing or reordering any
entry breaks every link after it, and ``verify`` names the first broken one. The
node also keeps the chain's head (last sequence number and hash) beside the log,
so cutting entries off the end is caught too. Anyone who can rewrite the whole
database can rewrite the whole chain: publish the head that ``communique audit
verify`` prints somewhere else to anchor it.

Entries are written in the transaction of the action they record, so an action
and its record commit together or not at all.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

import rfc8785

if TYPE_CHECKING:
    from communique.access import Principal

GENESIS = "0" * 64
OK, REFUSED, FAILED = "ok", "refused", "failed"


@dataclass(frozen=True, slots=True)
class Event:
    """Something to record: who (user e-mail, or 'operator' at the command line), what, outcome."""

    action: str
    actor: str = ""
    org: str = ""
    target: str = ""
    address: str = ""
    outcome: str = OK
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts, for whom, from where: a user over the network, or the operator at the CLI."""

    name: str
    org: str = ""
    address: str = ""

    @classmethod
    def of(cls, principal: Principal | None, address: str) -> Actor:
        """Return the actor a caller stands for (None: an anonymous one)."""
        if principal is None:
            return cls("anonymous", "", address)
        return cls(principal.email, principal.org_name, address)

    def event(self, action: str, *, target: str = "", outcome: str = OK,
              **details: Any) -> Event:
        """Return an event of this actor."""
        return Event(action, self.name, self.org, target, self.address, outcome, details)


OPERATOR = Actor("operator", "", "cli")


@dataclass(frozen=True, slots=True)
class Entry:
    """One stored entry of the chain."""

    seq: int
    at: int  # microseconds since the epoch, UTC
    action: str
    actor: str
    org: str
    target: str
    address: str
    outcome: str
    details: dict[str, Any]
    prev_hash: str
    hash: str

    def as_json(self) -> dict[str, Any]:
        """Return the entry as ``audit show`` prints it."""
        from communique import timestamps

        return {"seq": self.seq, "at": timestamps.format_us(self.at), "action": self.action,
                "actor": self.actor, "org": self.org, "target": self.target,
                "address": self.address, "outcome": self.outcome, "details": self.details,
                "prev_hash": self.prev_hash, "hash": self.hash}


def entry_hash(*, seq: int, at: int, event: Event, prev_hash: str) -> str:
    """Return the hash that links an entry to the chain."""
    fields = {"seq": seq, "at": at, "action": event.action, "actor": event.actor,
              "org": event.org, "target": event.target, "address": event.address,
              "outcome": event.outcome, "details": event.details, "prev_hash": prev_hash}
    return hashlib.sha256(rfc8785.dumps(fields)).hexdigest()


def clean(value: Any) -> Any:
    """Return ``value`` storable anywhere: no NUL character, no lone surrogate, at any depth.

    What is recorded often comes from an attacker (a path, an e-mail typed at sign-in);
    PostgreSQL refuses NUL in text, and UTF-8 cannot encode a lone surrogate.
    """
    if isinstance(value, str):
        text = value.encode("utf-8", "backslashreplace").decode("utf-8")
        return text.replace("\x00", "\\x00")
    if isinstance(value, dict):
        return {clean(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return value


def seal(event: Event, *, seq: int, at: int, prev_hash: str) -> Entry:
    """Return the entry that appends ``event`` after the entry hashed ``prev_hash``."""
    event = Event(*(clean(getattr(event, name)) for name in Event.__slots__))  # type: ignore[attr-defined]
    digest = entry_hash(seq=seq, at=at, event=event, prev_hash=prev_hash)
    return Entry(seq, at, event.action, event.actor, event.org, event.target, event.address,
                 event.outcome, event.details, prev_hash, digest)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The result of walking the chain."""

    entries: int
    head_seq: int
    head_hash: str
    problem: str | None = None  # None when intact; else what is wrong and where

    @property
    def intact(self) -> bool:
        return self.problem is None


def verify(entries: Iterable[Entry], *, head: tuple[int, str] | None) -> Verdict:
    """Walk the chain in sequence order; name the first entry altered, removed or reordered."""
    count, prev_seq, prev_hash = 0, 0, GENESIS
    for entry in entries:
        count += 1
        if entry.seq != prev_seq + 1:
            return Verdict(count, prev_seq, prev_hash,
                           f"entry {prev_seq + 1} is missing (next found is {entry.seq})")
        if entry.prev_hash != prev_hash:
            return Verdict(count, prev_seq, prev_hash,
                           f"entry {entry.seq} does not follow entry {prev_seq}: removed or reordered")
        event = Event(entry.action, entry.actor, entry.org, entry.target, entry.address,
                      entry.outcome, entry.details)
        if entry_hash(seq=entry.seq, at=entry.at, event=event, prev_hash=entry.prev_hash) != entry.hash:
            return Verdict(count, prev_seq, prev_hash, f"entry {entry.seq} was altered")
        prev_seq, prev_hash = entry.seq, entry.hash
    if head is not None and head != (prev_seq, prev_hash):
        return Verdict(count, prev_seq, prev_hash,
                       f"the log ends at entry {prev_seq} but its head says {head[0]}: "
                       "entries were removed from the end, or the last ones altered")
    if head is None and count:
        return Verdict(count, prev_seq, prev_hash, "the log's head record is missing")
    return Verdict(count, prev_seq, prev_hash)
