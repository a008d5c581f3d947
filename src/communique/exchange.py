"""TAXII use cases: what each endpoint does, free of the web framework.

Every method takes the authenticated ``Principal`` and the untrusted request
parameters, checks access through ``access`` (the one place for rules), runs one
transaction, and returns plain values that ``web`` renders.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Iterable

import orjson

from communique import access, audit, ingest, node, timestamps
from communique.access import Access, Principal
from communique.errors import BadRequest, NotFound, Unauthorized
from communique.settings import Settings
from communique.stix.validate import IDENTIFIER
from communique.stix.markings import Tlp
from communique.store.base import ApiRoot, Collection, Page, Peer, Store, Tx, Visibility
from communique.taxii import cursor, filters, resources
from communique.taxii.filters import Query

_PURGE_EVERY_US = 600 * 1_000_000


@dataclass(frozen=True, slots=True)
class Listing:
    """One page of a listing, the cursor for the next, and where the page began."""

    page: Page
    next_cursor: str | None
    started_after: int | None

    @property
    def bounds(self) -> tuple[int, int]:
        """Return (first, last) date_added; an empty page is bounded by where it began."""
        start = self.started_after if self.started_after is not None else 0
        first = self.page.first_added
        last = self.page.last_added
        return (start if first is None else first, start if last is None else last)


class Exchange:
    """The node's TAXII 2.1 operations over one store."""

    def __init__(self, store: Store, settings: Settings, cursor_key: bytes,
                 signer: node.Signer) -> None:
        self.store = store
        self.settings = settings
        self.signer = signer
        self._key = cursor_key
        self._last_purge = 0

    def provenance(self) -> ingest.Provenance:
        """Return how objects the node's own users submit are checked and signed."""
        return node.local_provenance(self.store, self.settings, self.signer)

    # -- server information (§4) ------------------------------------------------------
    def discovery(self, principal: Principal | None, *, base_url: str) -> dict:
        """§4.1 Server Discovery (anonymous callers: only if some collection is public)."""
        with self.store.read() as tx:
            roots = tx.list_api_roots()
            if principal is None:  # anonymous: only the roots that hold a public collection
                open_roots = {c.api_root for c in tx.list_collections() if c.public}
                if not open_roots:
                    raise Unauthorized("this node has no public collection; send an API token")
                roots = [r for r in roots if r.slug in open_roots]
        return resources.discovery(title=self.settings.title,
                                   description=self.settings.description,
                                   contact=self.settings.contact,
                                   api_roots=[f"{base_url}/{r.slug}/" for r in roots])

    def api_root(self, principal: Principal | None, slug: str) -> dict:
        """§4.2 Get API Root Information."""
        with self.store.read() as tx:
            root = _api_root(tx, slug, principal)
        return resources.api_root(title=root.title, description=root.description,
                                  max_content_length=self.settings.max_content_length,
                                  identity=self.signer.identity)

    def status(self, principal: Principal | None, slug: str, status_id: str) -> bytes:
        """§4.3 Get Status: only the organisation that posted may read it."""
        principal = _known(principal)
        _plausible(slug, status_id)
        with self.store.read() as tx:
            found = tx.get_status(status_id, api_root=slug) if len(status_id) <= 36 else None
        if found is None or not access.may_read_status(principal, found[0]):
            raise NotFound("no such status resource (it may have expired)")
        return found[1]

    # -- collections (§5.1, §5.2) ------------------------------------------------------
    def collections(self, principal: Principal | None, slug: str) -> dict:
        """§5.1 Get Collections: those the caller may read or write, oldest first."""
        with self.store.read() as tx:
            _api_root(tx, slug, principal)
            grants = tx.grants_of(principal.org_id, slug) if principal else {}
            items = []
            for item in tx.list_collections(slug):
                rights = access.access_to(principal, grants.get(item.id), public=item.public)
                if rights.visible:
                    items.append(_collection_resource(item, rights))
        return resources.collections(items)

    def collection(self, principal: Principal | None, slug: str, collection_id: str) -> dict:
        """§5.2 Get a Collection."""
        with self.store.read() as tx:
            item, rights = _collection(tx, principal, slug, collection_id)
        return _collection_resource(item, rights)

    # -- objects (§5.3–§5.8) -----------------------------------------------------------
    def objects(self, principal: Principal | None, slug: str, collection_id: str,
                params: Iterable[tuple[str, str]], *, manifest: bool = False) -> Listing:
        """§5.4 Get Objects, or with ``manifest`` §5.3 Get Object Manifests."""
        query = self._query(params, filters.OBJECTS)
        with self.store.read() as tx:
            item, rights = _collection(tx, principal, slug, collection_id)
            access.require_read(rights)
            after = self._position(query, ("objects", item.id))
            page = tx.list_objects(item.id, query, visibility=access.visibility(principal, item),
                                   after=after, with_body=not manifest)
        return self._listing(page, query, after, ("objects", item.id))

    def object(self, principal: Principal | None, slug: str, collection_id: str, object_id: str,
               params: Iterable[tuple[str, str]]) -> Listing:
        """§5.6 Get an Object: its versions that match, as an envelope."""
        query = self._query(params, filters.OBJECT)
        return self._object_listing(principal, slug, collection_id, _object_id(object_id), query,
                                    "object")

    def versions(self, principal: Principal | None, slug: str, collection_id: str, object_id: str,
                 params: Iterable[tuple[str, str]]) -> Listing:
        """§5.8 Get Object Versions."""
        query = self._query(params, filters.VERSIONS, default_versions=filters.ALL_VERSIONS)
        return self._object_listing(principal, slug, collection_id, _object_id(object_id), query,
                                    "versions")

    def _object_listing(self, principal: Principal | None, slug: str, collection_id: str,
                        object_id: str, query: Query, kind: str) -> Listing:
        with self.store.read() as tx:
            item, rights = _collection(tx, principal, slug, collection_id)
            access.require_read(rights)
            seen = access.visibility(principal, item)
            scope = (kind, item.id, object_id)
            after = self._position(query, scope)
            if kind == "versions":
                page = tx.list_versions(item.id, object_id, query, visibility=seen, after=after)
            else:
                page = tx.list_objects(item.id, query, visibility=seen, after=after,
                                       object_id=object_id)
            if not page.records and not _exists(tx, item.id, object_id, seen):
                raise NotFound("no such object in this collection")
        return self._listing(page, query, after, scope)

    def delete(self, principal: Principal | None, slug: str, collection_id: str, object_id: str,
               params: Iterable[tuple[str, str]], *, address: str = "") -> int:
        """§5.7 Delete an Object: every version the caller can see, unless ``match[version]`` narrows it."""
        principal = _known(principal)
        query = self._query(params, filters.DELETE, default_versions=filters.ALL_VERSIONS)
        object_id = _object_id(object_id)
        with self.store.write() as tx:
            item, rights = _collection(tx, principal, slug, collection_id)
            access.require_delete(rights)
            removed = tx.delete_object(item.id, object_id, query,
                                       visibility=access.visibility(principal, item))
            if removed:
                tx.append_audit(audit.Actor.of(principal, address).event(
                    "object.delete", target=f"{slug}/{item.id}/{object_id}", versions=removed),
                    now=timestamps.now_us())
        if not removed:
            raise NotFound("no such object (or version) in this collection")
        return removed

    def add(self, principal: Principal | None, slug: str, collection_id: str, body: bytes, *,
            address: str = "") -> bytes:
        """§5.5 Add Objects: validate, store, and return the status resource (202).

        The web layer calls ``check_writable`` before reading the body; access is
        checked again inside the write transaction.
        """
        principal = _known(principal)
        requested = timestamps.now_us()
        with self.store.read() as tx:
            relay = next((p for p in tx.list_peers() if p.org_id == principal.org_id), None)
        # An organisation that runs a peer node pushes what it relays: kept as signed (or
        # not) and held to the rules for objects arriving from another node.
        provenance = (ingest.Provenance(node.keyring(self.store),
                                        accept_invalid=self.settings.accept_invalid_signatures)
                      if relay else self.provenance())
        checked = ingest.check(parse_envelope(body), provenance)
        actor = audit.Actor.of(principal, address)
        with self.store.write() as tx:
            item, rights = _collection(tx, principal, slug, collection_id)
            access.require_write(rights)
            if relay is not None:
                checked = _as_relayed(checked, relay, item, access.readers(tx.grants_on(item.id)))
            results = ingest.store_checked(tx, checked, collection=item, actor=actor,
                                           producer_org=principal.org_id, now=timestamps.now_us(),
                                           origin_peer=relay.id if relay else None)
            status = _status_resource(str(uuid.uuid4()), requested, results)
            tx.save_status(status_id=status["id"], api_root=slug, org_id=principal.org_id,
                           now=requested, body=orjson.dumps(status))
            tx.append_audit(actor.event(
                "objects.add", target=f"{slug}/{item.id}", status=status["id"],
                added=sum(r.outcome == ingest.ADDED for r in results),
                duplicate=sum(r.outcome == ingest.DUPLICATE for r in results),
                refused=status["failure_count"]), now=timestamps.now_us())
            self._purge_statuses(tx, requested)
        return orjson.dumps(status)

    def check_writable(self, principal: Principal | None, slug: str, collection_id: str) -> None:
        """Refuse a write early, before its body is read."""
        principal = _known(principal)
        with self.store.read() as tx:
            _, rights = _collection(tx, principal, slug, collection_id)
        access.require_write(rights)

    # -- helpers ---------------------------------------------------------------------
    def _query(self, params: Iterable[tuple[str, str]], allowed: frozenset[str],
               default_versions: filters.Versions = filters.LAST_VERSION) -> Query:
        return filters.parse(params, allowed=allowed, max_page_size=self.settings.max_page_size,
                             default_versions=default_versions)

    def _position(self, query: Query, scope: tuple) -> int | None:
        """Return the date_added to list after: from the cursor, else from added_after."""
        if query.next:
            return cursor.decode(self._key, query.next, scope=(scope, query.identity()))
        return query.added_after

    def _listing(self, page: Page, query: Query, after: int | None, scope: tuple) -> Listing:
        next_cursor = None
        if page.more and page.last_added is not None:
            next_cursor = cursor.encode(self._key, position=page.last_added,
                                        scope=(scope, query.identity()))
        return Listing(page, next_cursor, after)

    def _purge_statuses(self, tx: Tx, now: int) -> None:
        if now - self._last_purge > _PURGE_EVERY_US:
            keep_us = self.settings.status_retention_hours * 3_600 * 1_000_000
            tx.purge_statuses(before=now - keep_us)
            self._last_purge = now


def parse_envelope(body: bytes) -> list:
    """Return the objects of a TAXII envelope, or raise BadRequest saying what is wrong."""
    try:
        envelope = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None
    if not isinstance(envelope, dict):
        raise BadRequest("the body must be a TAXII envelope: a JSON object with an 'objects' list")
    objects = envelope.get("objects", [])
    if not isinstance(objects, list):
        raise BadRequest("the envelope's 'objects' must be a list of STIX objects")
    return objects


def _plausible(*untrusted_names: str) -> None:
    """Refuse path segments no resource can have (too long, or holding a NUL) before any query."""
    for name in untrusted_names:
        if len(name) > 300 or "\x00" in name:
            raise NotFound("no such resource")


def _object_id(untrusted: str) -> str:
    """Return a path segment that can be a STIX identifier, or raise NotFound."""
    if not IDENTIFIER.match(untrusted):
        raise NotFound("no such object: object ids are STIX identifiers (type--UUID)")
    return untrusted


def _known(principal: Principal | None) -> Principal:
    """Return the caller, or refuse an anonymous one: only reading public collections is open."""
    if principal is None:
        raise Unauthorized("this request needs an API token")
    return principal


def _api_root(tx: Tx, slug: str, principal: Principal | None = None) -> ApiRoot:
    _plausible(slug)
    root = tx.get_api_root(slug)
    if principal is None and (root is None or not any(
            c.public for c in tx.list_collections(slug))):
        raise Unauthorized("this API root has no public collection; send an API token")
    if root is None:
        raise NotFound("no such API root")
    return root


def _collection(tx: Tx, principal: Principal | None, slug: str,
                collection_id: str) -> tuple[Collection, Access]:
    _plausible(slug, collection_id)
    root = tx.get_api_root(slug)
    item = tx.get_collection(slug, collection_id) if root else None
    access.require_known(principal, item)
    if item is None:
        raise NotFound("no such collection" if root else "no such API root")
    grants = tx.grants_of(principal.org_id, slug) if principal else {}
    rights = access.access_to(principal, grants.get(item.id), public=item.public)
    access.require_visible(rights)
    return item, rights


def _collection_resource(item: Collection, rights: Access) -> dict:
    return resources.collection(id=item.id, title=item.title, description=item.description,
                                alias=item.alias, can_read=rights.can_read,
                                can_write=rights.can_write)


def _exists(tx: Tx, collection_id: str, object_id: str, seen: Visibility) -> bool:
    """Return whether the caller can see any version of the object (hidden ones do not exist)."""
    return bool(tx.list_versions(collection_id, object_id, Query(limit=1), visibility=seen,
                                 after=None).records)


def _as_relayed(checked: ingest.Checked, relay: Peer, destination: Collection,
                readers: frozenset[int]) -> ingest.Checked:
    """Hold objects pushed by a peer node to the TLP rule for objects from another node."""
    checked = ingest.refuse_where(checked, lambda obj: access.refusal_to_pull(
        obj.tlp, max_tlp=Tlp(relay.max_tlp), destination=destination,
        destination_readers=readers, entitled_org=relay.local_org_id, source_org=relay.org_id))
    return ingest.as_received(checked)


def _status_resource(status_id: str, requested: int, results: list[ingest.Result]) -> dict:
    """§4.3.1 status resource for a finished request (we never leave work pending)."""
    successes = [_detail(r) for r in results if r.ok]
    failures = [_detail(r) for r in results if not r.ok]
    status: dict = {"id": status_id, "status": "complete",
                    "request_timestamp": timestamps.format_us(requested),
                    "total_count": len(results), "success_count": len(successes),
                    "failure_count": len(failures), "pending_count": 0}
    if successes:
        status["successes"] = successes
    if failures:
        status["failures"] = failures
    return status


def _detail(result: ingest.Result) -> dict:
    detail = {"id": result.id or "(no id)", "version": result.version or "(no version)"}
    if result.message:
        detail["message"] = result.message
    return detail
