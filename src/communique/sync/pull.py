"""Pull: copy a peer collection's new object versions into a local collection, exactly once.

The resume point is the peer's own ``date_added`` (its X-TAXII-Date-Added-Last
header), stored in the same transaction as the objects of the page it covers:
a crash at any moment leaves either both or neither, and the next run asks for
what was added after it. The peer's clock never meets ours. A page that does not
end the listing moves the point to just before its last ``date_added``, so a
group of objects sharing one instant across pages is fetched whole again after
a crash (the copies already here are duplicates, stored once). Objects are checked
like any others (validation, signature) and then against the TLP 2.0 rule for
objects arriving from another node (``access.refusal_to_pull``).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from communique import access, audit, ingest, timestamps
from communique.stix.markings import Tlp
from communique.store.base import Collection, Peer, PeerLink, Store
from communique.sync.client import ObjectsPage, PeerError, TaxiiClient
from communique.sync.common import MAX_PAGES, PAGE, Moved, local_collection, peer_actor

RESTARTS = 3  # per run: a failed page request is asked again from the saved point
_SPLIT_ABOVE = 100  # objects: a page this long is checked in two threads
# A Communiqué node hands out date_added in commit order, one per object. Other servers
# may not (medallion dates a whole request at its start, and lists it while it is still
# being written), so from them each run asks again for the last few seconds it saw:
# the copies already here are duplicates, stored once.
FOREIGN_OVERLAP_US = 5 * 1_000_000


def pull(store: Store, *, peer: Peer, link: PeerLink, client: TaxiiClient,
         provenance: ingest.Provenance, page_size: int = PAGE, max_pages: int = MAX_PAGES,
         progress: Callable[[int], None] = lambda n: None) -> Moved:
    """Run one pull link until the peer has nothing newer (or ``max_pages`` pages)."""
    destination, readers = local_collection(store, link.local_collection)
    actor = peer_actor(peer)
    moved = Moved()
    committed = link.position       # the saved resume point: everything up to it is here
    last_seen: int | None = None    # the newest date_added received in this run
    overlap = 0 if peer.identity_id else FOREIGN_OVERLAP_US
    started_after, following, restarts = _ask_after(committed, overlap), None, 0

    def fetch(after: int | None, cursor: str | None) -> tuple[ObjectsPage, ingest.Checked]:
        page = client.get_objects(link.remote_collection, added_after=after, next=cursor,
                                  limit=page_size)
        objects = page.objects
        if len(objects) < 2 * _SPLIT_ABOVE:
            return page, ingest.check(objects, provenance)
        # Ed25519 checks release the GIL: half the page is checked in another thread
        half = len(objects) // 2
        second = checker.submit(ingest.check, objects[half:], provenance)
        return page, ingest.joined(ingest.check(objects[:half], provenance), second.result())

    # The next page is fetched and checked (its signatures above all) in other threads
    # while this one stores the current page: the work overlaps on the cores there are.
    with ThreadPoolExecutor(1, thread_name_prefix="communique-pull") as ahead, \
            ThreadPoolExecutor(1, thread_name_prefix="communique-check") as checker:
        pending = ahead.submit(fetch, started_after, following)
        while moved.pages < max_pages:
            asked_after, asked_next = started_after, following
            try:
                page, checked = pending.result()
            except PeerError:
                if asked_next is None or restarts >= RESTARTS:
                    raise
                # The request may have spent the cursor (medallion's are used up when read):
                # ask again from the saved point rather than risk skipping a page.
                restarts += 1
                started_after, following, last_seen = _ask_after(committed, overlap), None, None
                pending = ahead.submit(fetch, started_after, following)
                continue
            moved.pages += 1
            _check(page, requested=asked_after, last_seen=last_seen,
                   chained=asked_next is not None)
            if page.objects:
                last_seen = page.last_added
            # Objects may share one date_added (medallion gives a whole request one) and such
            # a group may span pages: until the last page, resume from just before its end.
            resume = last_seen if last_seen is None or not page.more else last_seen - 1
            if committed is not None and (resume is None or resume < committed):
                resume = committed  # never move back (an overlap re-reads what is here)
            if page.more and moved.pages < max_pages:
                if page.next:
                    following = page.next
                else:  # no cursor: go on from where this page ended (TAXII 2.1 §3.4), and
                    # from another server from just before, in case more share that instant
                    started_after, following = (last_seen if not overlap or last_seen is None
                                                else last_seen - 1), None
                pending = ahead.submit(fetch, started_after, following)
            _store_page(store, checked, peer=peer, link=link, destination=destination,
                        readers=readers, actor=actor, position=resume, moved=moved,
                        any_objects=bool(page.objects))
            committed = resume
            progress(len(page.objects))
            if not page.more:
                moved.complete = True
                break
    return moved


def _ask_after(position: int | None, overlap: int) -> int | None:
    return None if position is None else max(position - overlap, 0)


def _check(page: ObjectsPage, *, requested: int | None, last_seen: int | None,
           chained: bool) -> None:
    """Refuse a page that breaks the paging contract, before anything of it is stored."""
    if not page.objects:
        if page.more:
            raise PeerError("the peer says more objects follow but sent none: paging stopped")
        return
    if page.last_added is None or page.first_added is None:
        raise PeerError("the peer sent objects without X-TAXII-Date-Added headers, so there "
                        "is no safe point to resume from")
    if requested is not None and page.first_added <= requested:
        raise PeerError("the peer sent objects added before the requested added_after "
                        "(outside the requested filter)")
    if chained and last_seen is not None and page.first_added < last_seen:
        raise PeerError("the peer sent again objects it had already sent in this run "
                        "(outside the requested filter)")
    if page.more and last_seen is not None and (
            page.last_added < last_seen or (page.last_added == last_seen and not chained)):
        raise PeerError("the peer says more objects follow, but its page does not move "
                        "past the last one: paging stopped")


def _store_page(store: Store, checked: ingest.Checked, *, peer: Peer, link: PeerLink,
                destination: Collection, readers: frozenset[int], actor: audit.Actor,
                position: int | None, moved: Moved, any_objects: bool) -> None:
    """Store what of a checked page may be stored and move the resume point, in one
    transaction."""
    checked = ingest.refuse_where(checked, lambda obj: access.refusal_to_pull(
        obj.tlp, max_tlp=Tlp(peer.max_tlp), destination=destination,
        destination_readers=readers, entitled_org=peer.local_org_id, source_org=peer.org_id))
    checked = ingest.as_received(checked)
    now = timestamps.now_us()
    with store.write() as tx:
        results = ingest.store_checked(tx, checked, collection=destination, actor=actor,
                                       producer_org=peer.org_id, now=now, origin_peer=peer.id)
        added = sum(r.outcome == ingest.ADDED for r in results)
        duplicate = sum(r.outcome == ingest.DUPLICATE for r in results)
        refused = [r for r in results if not r.ok]
        current = next(x for x in tx.links_of(peer.id) if x.id == link.id)
        tx.update_link(link.id, position=position, moved=current.moved + added,
                       refused=current.refused + len(refused))
        if any_objects:
            tx.append_audit(actor.event(
                "sync.pull", target=f"{destination.api_root}/{destination.id}",
                outcome=audit.REFUSED if refused else audit.OK, peer=peer.name,
                remote=link.remote_collection, added=added, duplicate=duplicate,
                refused=len(refused)), now=now)
    moved.added += added
    moved.duplicate += duplicate
    moved.refused += len(refused)
    for result in refused:
        moved.note(result.message)
