"""Pull: copy a peer collection's new object versions into a local collection, exactly once.

The resume point is the peer's own ``date_added`` (its X-TAXII-Date-Added-Last
header), stored in the same transaction as the objects of the page it covers:
a crash at any moment leaves either both or neither, and the next run asks for
what was added after it. The peer's clock never meets ours. Objects are checked
like any others (validation, signature) and then against the TLP 2.0 rule for
objects arriving from another node (``access.refusal_to_pull``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from communique import access, audit, ingest, timestamps
from communique.stix.markings import Tlp
from communique.store.base import Collection, Peer, PeerLink, Store
from communique.sync.client import PeerError, TaxiiClient

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
        self.reasons = self.reasons or {}
        if reason in self.reasons or len(self.reasons) < 20:
            self.reasons[reason] = self.reasons.get(reason, 0) + 1


def pull(store: Store, *, peer: Peer, link: PeerLink, client: TaxiiClient,
         provenance: ingest.Provenance, page_size: int = PAGE, max_pages: int = MAX_PAGES,
         progress: Callable[[int], None] = lambda n: None) -> Moved:
    """Run one pull link until the peer has nothing newer (or ``max_pages`` pages)."""
    destination = _collection(store, link.local_collection)
    actor = audit.Actor(f"peer:{peer.name}", "", "sync")
    moved = Moved()
    position = link.position
    started_after, following = position, None
    while moved.pages < max_pages:
        page = client.get_objects(link.remote_collection, added_after=started_after,
                                  next=following, limit=page_size)
        moved.pages += 1
        if page.objects and page.last_added is None:
            raise PeerError("the peer sent objects without an X-TAXII-Date-Added-Last header, "
                            "so there is no safe point to resume from")
        if page.objects and position is not None and page.first_added is not None \
                and page.first_added <= position:
            raise PeerError("the peer sent objects added before the requested added_after "
                            "(outside the requested filter)")
        if page.more and (page.last_added is None or
                          (position is not None and page.last_added <= position)):
            raise PeerError("the peer says more objects follow, but its page does not move "
                            "past the last one: paging stopped")
        new_position = page.last_added if page.objects else position
        _store_page(store, page.objects, peer=peer, link=link, destination=destination,
                    provenance=provenance, actor=actor, position=new_position, moved=moved)
        position = new_position
        progress(len(page.objects))
        if not page.more:
            moved.complete = True
            break
        if page.next:
            following = page.next
        else:  # no cursor: continue from where this page ended (TAXII 2.1 §3.4)
            started_after, following = position, None
    return moved


def _store_page(store: Store, objects: list, *, peer: Peer, link: PeerLink,
                destination: Collection, provenance: ingest.Provenance, actor: audit.Actor,
                position: int | None, moved: Moved) -> None:
    """Check one page, store what may be stored and move the resume point, in one transaction."""
    checked = ingest.check(objects, provenance)
    with store.read() as tx:
        readers = frozenset(g.org_id for g in tx.grants_on(destination.id) if g.can_read)

    def rule(obj: object) -> str | None:
        return access.refusal_to_pull(
            getattr(obj, "tlp"), max_tlp=Tlp(peer.max_tlp), destination=destination,
            destination_readers=readers, entitled_org=peer.local_org_id)

    checked = ingest.refuse_where(checked, rule)
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
        if objects:
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


def _collection(store: Store, collection_id: str) -> Collection:
    with store.read() as tx:
        found = [c for c in tx.list_collections() if c.id == collection_id]
    if not found:
        raise PeerError(f"the local collection {collection_id} no longer exists")
    return found[0]
