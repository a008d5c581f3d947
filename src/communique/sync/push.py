"""Push: offer a local collection's new object versions to a peer collection, and follow up.

Only what ``access.refusal_to_push`` allows goes, never back to the peer an
object came from (so a ring of nodes converges: each node stores a version
once, and a duplicate is not offered onward again). Envelopes stay under the
peer's ``max_content_length``. The peer's status resource is read back: a
version it refused is recorded with its reason and offered again with backoff.
"""

from __future__ import annotations

import time
from typing import Callable, Iterator

import orjson

from communique import access, audit, timestamps
from communique.provenance import signatures
from communique.stix import markings
from communique.stix.markings import Tlp
from communique.store.base import Collection, Peer, PeerLink, Record, Store
from communique.sync.client import PeerError, TaxiiClient
from communique.sync.common import MAX_PAGES, PAGE, Moved, local_collection, peer_actor
from communique.taxii import filters
from communique.taxii.filters import Query

_STATUS_WAIT_S = 30.0
_RETRY_BASE_US = 60 * 1_000_000
_RETRY_MAX_US = 24 * 3_600 * 1_000_000


def push(store: Store, *, peer: Peer, link: PeerLink, client: TaxiiClient,
         max_content_length: int, max_pages: int = MAX_PAGES,
         progress: Callable[[int], None] = lambda n: None) -> Moved:
    """Run one push link: retries that are due, then everything added since the last run."""
    source, readers = local_collection(store, link.local_collection)
    with store.read() as tx:
        same_node = frozenset(p.id for p in tx.list_peers() if p.id == peer.id or p.url == peer.url
                              or (peer.identity_id and p.identity_id == peer.identity_id))
    actor = peer_actor(peer)
    moved = Moved()
    _retry_due(store, peer, link, client, source, readers, max_content_length, actor, moved)
    position = link.position
    while moved.pages < max_pages:
        with store.read() as tx:
            page = tx.list_objects(source.id, Query(limit=PAGE, versions=filters.ALL_VERSIONS),
                                   visibility=access.peer_view(source), after=position)
        moved.pages += 1
        offered = [r for r in page.records if r.origin_peer not in same_node]
        _offer(store, peer, link, client, source, readers, offered, max_content_length, actor,
               moved, position=page.last_added if page.records else position)
        position = page.last_added if page.records else position
        progress(len(page.records))
        if not page.more:
            moved.complete = True
            break
    return moved


def _returning_sightings(store: Store, peer: Peer, source: Collection, records: list[Record],
                         bodies: list[dict]) -> set[str]:
    """Return the ids of sightings made here of indicators this peer sent (their feedback)."""
    refs = {record.stix_id: body.get("sighting_of_ref") for record, body in zip(records, bodies)
            if record.origin_peer is None and body.get("type") == "sighting"
            and isinstance(body.get("sighting_of_ref"), str)}
    if not refs:
        return set()
    with store.read() as tx:
        origins = tx.origins_of(source.id, sorted(set(refs.values())))
    return {sighting for sighting, ref in refs.items() if origins.get(ref) == peer.id}


def _offer(store: Store, peer: Peer, link: PeerLink, client: TaxiiClient, source: Collection,
           readers: frozenset[int], records: list[Record], max_content_length: int,
           actor: audit.Actor, moved: Moved, *, position: int | None,
           retrying: bool = False) -> None:
    """Send the records TLP allows, in envelopes that fit; record outcomes and the position."""
    allowed: list[Record] = []
    held = 0
    bodies = [orjson.loads(record.body or b"{}") for record in records]
    returning = _returning_sightings(store, peer, source, records, bodies)
    for record, body in zip(records, bodies):
        level = Tlp(source.default_tlp if record.tlp is None else record.tlp)
        # what the object itself says (an object pulled unmarked is stored at AMBER here,
        # but would take the peer's default there)
        marked = markings.level_of(body)
        rule = access.refusal_to_push(level, stored_level=marked, max_tlp=Tlp(peer.max_tlp),
                                      peer_org=peer.org_id, source_readers=readers,
                                      back_to_producer=record.stix_id in returning)
        if rule:
            held += 1
            moved.note(rule)
        else:
            allowed.append(record)
    accepted: list[tuple[str, int]] = []
    failures: list[tuple[str, int, str]] = []
    fitting = []
    for record in allowed:
        if len(record.body or b"") + 64 > max_content_length:  # can never go: say so, move on
            held += 1
            moved.note(f"larger than the peer accepts ({max_content_length} bytes per request)")
        else:
            fitting.append(record)
    for envelope in _envelopes(fitting, max_content_length):
        for record, reason in _send(client, link, envelope):
            if reason is None:
                accepted.append((record.stix_id, record.version))
            else:
                failures.append((record.stix_id, record.version, reason))
                moved.note(f"refused by the peer: {reason}")
    moved.added += len(accepted)
    moved.refused += held + len(failures)
    now = timestamps.now_us()
    with store.write() as tx:
        current = next(x for x in tx.links_of(peer.id) if x.id == link.id)
        values: dict = {"moved": current.moved + len(accepted),
                        "refused": current.refused + held + len(failures)}
        if not retrying:
            values["position"] = position
        tx.update_link(link.id, **values)
        tx.clear_retries(link.id, accepted)
        if failures:
            tx.add_retries(link.id, failures, now=now, backoff=_backoff)
        if records:
            tx.append_audit(actor.event(
                "sync.push", target=f"{source.api_root}/{source.id}",
                outcome=audit.REFUSED if held or failures else audit.OK, peer=peer.name,
                remote=link.remote_collection, pushed=len(accepted), held=held,
                refused_by_peer=len(failures), retry=retrying), now=now)


def _retry_due(store: Store, peer: Peer, link: PeerLink, client: TaxiiClient,
               source: Collection, readers: frozenset[int], max_content_length: int,
               actor: audit.Actor, moved: Moved) -> None:
    with store.read() as tx:
        due = tx.due_retries(link.id, now=timestamps.now_us(), limit=PAGE)
        records = []
        every_version = Query(limit=1000, versions=filters.ALL_VERSIONS)
        for stix_id, version, _ in due:
            found = tx.list_objects(source.id, every_version, after=None, object_id=stix_id,
                                    visibility=access.peer_view(source))
            records.extend(r for r in found.records if r.version == version)
    gone = {(s, v) for s, v, _ in due} - {(r.stix_id, r.version) for r in records}
    if gone:
        with store.write() as tx:
            tx.clear_retries(link.id, sorted(gone))
    if records:
        _offer(store, peer, link, client, source, readers, records, max_content_length, actor,
               moved, position=None, retrying=True)


class Unfinished(PeerError):
    """The peer's status resource stayed pending: the objects are offered again later."""


def _send(client: TaxiiClient, link: PeerLink,
          envelope: list[Record]) -> list[tuple[Record, str | None]]:
    """Post one envelope; return each record with the peer's reason for refusing it (or None).

    An envelope the peer turns down whole (400, 413, 422) is split in two until the
    objects it will not take are found; a status that does not finish, or that counts
    failures it does not name, leaves the unnamed objects to be tried again.
    """
    try:
        status = _finished(client, client.add_objects(
            link.remote_collection, [r.body or b"" for r in envelope]))
    except Unfinished as exc:
        return [(record, exc.description) for record in envelope]
    except PeerError as exc:
        if exc.status_code not in (400, 413, 422):
            raise
        if len(envelope) == 1:
            return [(envelope[0], exc.description)]
        half = len(envelope) // 2
        return _send(client, link, envelope[:half]) + _send(client, link, envelope[half:])
    refused = _failures(status)
    named = set(refused)
    successes = {item.get("id") for item in status.get("successes") or []
                 if isinstance(item, dict)}
    unnamed = _count(status, "failure_count") > len(refused)
    outcome = []
    for record in envelope:
        reason = refused.get(record.stix_id)
        if reason is None and unnamed and record.stix_id not in successes \
                and record.stix_id not in named:
            reason = "the peer counted failures without naming them"
        if reason is not None and _already_there(client, link, record):
            reason = None  # refused because it is there already (some servers say so)
        outcome.append((record, reason))
    return outcome


def _count(status: dict, name: str) -> int:
    value = status.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _backoff(attempts: int) -> int:
    """Return how long to wait before offering a refused object again (µs)."""
    return min(_RETRY_BASE_US * 2 ** min(attempts, 20), _RETRY_MAX_US)


def _envelopes(records: list[Record], max_content_length: int) -> Iterator[list[Record]]:
    """Group records into envelopes whose JSON stays within the peer's limit."""
    budget = max_content_length - 64
    batch: list[Record] = []
    size = 0
    for record in records:
        length = len(record.body or b"") + 1
        if batch and size + length > budget:
            yield batch
            batch, size = [], 0
        batch.append(record)
        size += length
    if batch:
        yield batch


def _finished(client: TaxiiClient, status: dict) -> dict:
    """Wait (briefly) for a pending status resource to complete."""
    deadline = time.monotonic() + _STATUS_WAIT_S
    while status.get("status") == "pending" and time.monotonic() < deadline:
        time.sleep(0.5)
        status_id = status.get("id")
        if not isinstance(status_id, str):
            raise PeerError("the peer's status resource has no id")
        status = client.status(status_id)
    if status.get("status") != "complete":
        raise Unfinished("the peer did not finish processing the objects in time")
    return status


def _already_there(client: TaxiiClient, link: PeerLink, record: Record) -> bool:
    """Return whether the peer holds this very object (whoever signed its copy).

    Unknown (we may not read there, say) counts as no: the refusal stands and is retried.
    """
    try:
        copies = client.copies_held(link.remote_collection, record.stix_id)
    except PeerError:
        return False
    ours = signatures.without_provenance(orjson.loads(record.body or b"{}"))
    return any(signatures.without_provenance(copy) == ours for copy in copies)


def _failures(status: dict) -> dict[str, str]:
    """Return the ids the peer refused, with its messages."""
    failures = status.get("failures") or []
    if not isinstance(failures, list):
        raise PeerError("the peer's status resource is malformed ('failures')")
    refused = {}
    for item in failures:
        if isinstance(item, dict) and isinstance(item.get("id"), str):
            message = item.get("message")
            refused[item["id"]] = message[:500] if isinstance(message, str) else "no reason given"
    return refused
