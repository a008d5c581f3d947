"""Who may see and do what. The only place where access rules live.

An organisation is granted read and/or write on a collection. A user acts for
their organisation, within their role: readers never write. TAXII 2.1 lets a
server answer 404 for a collection the caller may not see (§5.2), which is what
we do, so that a collection's existence does not leak. The Delete table of §5.7
is followed to the letter.

Within a collection, TLP 2.0 decides which objects a reader sees (``visibility``):
CLEAR, GREEN, AMBER and AMBER+STRICT every organisation that may read the
collection; RED only its producer and the organisations and users it names. An
object without a TLP marking has its collection's default level. A public
collection is readable without authentication, and holds TLP:CLEAR only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from communique.errors import Forbidden, NotFound, Unauthorized
from communique.stix.markings import Tlp
from communique.store.base import Collection, Grant, Visibility

ROLES = ("admin", "analyst", "reader")
SCOPES = ("read", "write", "admin")
_WRITERS = frozenset({"admin", "analyst"})
_WRITE_SCOPES = frozenset({"write", "admin"})


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: a user acting for their organisation."""

    user_id: int
    email: str
    org_id: int
    org_name: str
    role: str
    token_id: int | None = None
    scope: str = "admin"  # what the credential allows: a token's scope; a web session: all


def scopes_for(role: str) -> tuple[str, ...]:
    """Return the token scopes a user of ``role`` may create: never more than the role allows."""
    return {"admin": SCOPES, "analyst": ("read", "write")}.get(role, ("read",))


@dataclass(frozen=True, slots=True)
class Access:
    """What one principal may do with one collection."""

    can_read: bool = False
    can_write: bool = False

    @property
    def visible(self) -> bool:
        return self.can_read or self.can_write


NO_ACCESS = Access()


_SHARED = frozenset({Tlp.CLEAR, Tlp.GREEN, Tlp.AMBER, Tlp.AMBER_STRICT})
_PUBLIC = frozenset({Tlp.CLEAR})


def access_to(principal: Principal | None, grant: Grant | None, *, public: bool = False) -> Access:
    """Return what ``principal`` (None: anonymous) may do with the collection of ``grant``."""
    if principal is None or grant is None or grant.org_id != principal.org_id:
        return Access(can_read=True) if public else NO_ACCESS
    return Access(can_read=grant.can_read or public,
                  can_write=(grant.can_write and principal.role in _WRITERS
                             and principal.scope in _WRITE_SCOPES))


def require_known(principal: Principal | None, collection: Collection | None) -> None:
    """Refuse an anonymous caller anything but a public collection, whether it exists or not."""
    if principal is None and (collection is None or not collection.public):
        raise Unauthorized("this resource needs an API token")


def visibility(principal: Principal | None, collection: Collection) -> Visibility:
    """Return which of a readable collection's objects ``principal`` may see (TLP 2.0)."""
    if collection.public:
        return Visibility(_PUBLIC, Tlp.CLEAR)
    if principal is None:  # unreachable through require_known; never widen by accident
        return Visibility(frozenset(), collection.default_tlp)
    return Visibility(_SHARED, collection.default_tlp, red_org_id=principal.org_id,
                      red_principals=("org:" + principal.org_name, "user:" + principal.email))


def export_view(principal: Principal, collection: Collection) -> Visibility:
    """Return what ``principal`` may carry out of the node in an export: never TLP:RED."""
    seen = visibility(principal, collection)
    return Visibility(seen.levels - {Tlp.RED}, seen.default)


def reading_views(principal: Principal, collections: Iterable[Collection],
                  grants: Mapping[str, Grant], *, leaving: bool) -> dict[str, Visibility]:
    """Return, per collection ``principal`` may read, what it may see there.

    ``leaving``: for what goes out of the node or beside other members' reports (exports,
    correlation), so never TLP:RED (``export_view``); otherwise as a TAXII read sees it.
    """
    views = {}
    for collection in collections:
        if access_to(principal, grants.get(collection.id), public=collection.public).can_read:
            views[collection.id] = (export_view if leaving else visibility)(principal, collection)
    return views


def refusal_to_forward(level: Tlp, *, stored_level: int | None, forwarder_org: int,
                       source_readers: frozenset[int], destination: Collection,
                       destination_readers: frozenset[int]) -> str | None:
    """Return the TLP 2.0 rule that stops an object going onward into ``destination``, or None.

    ``level`` is the object's level where it is; ``stored_level`` its own marking
    (None when unmarked, so that it would take the destination's default).
    """
    if level == Tlp.RED:
        return "TLP:RED is never forwarded: it stays where its producer shared it"
    if stored_level is None and destination.default_tlp < level:
        return (f"unmarked, this object is {level.label} here but would be "
                f"{Tlp(destination.default_tlp).label} there: mark it before forwarding")
    if level == Tlp.CLEAR:
        return None
    if destination.public:
        return f"{level.label} may not go to a public collection"
    if level == Tlp.GREEN:
        return None
    if level == Tlp.AMBER_STRICT and destination_readers - {forwarder_org}:
        return ("TLP:AMBER+STRICT may go only where no organisation but your own can read it")
    if level == Tlp.AMBER and destination_readers - source_readers:
        return ("TLP:AMBER may go only where no one but organisations already entitled to it "
                "can read it")
    return None


def refusal_to_pull(level: Tlp | None, *, max_tlp: Tlp, destination: Collection,
                    destination_readers: frozenset[int], entitled_org: int,
                    source_org: int | None = None) -> str | None:
    """Return the TLP 2.0 rule that stops an object pulled from a peer landing in ``destination``.

    ``level`` is the object's own marking (None: unmarked, taken as AMBER, and kept out of a
    collection whose default would show it more widely). ``entitled_org`` is the organisation
    this node acts for at the peer: the one the peer shared the object with. ``source_org``
    runs the peer: it shared the object, so its reading it here widens nothing.
    """
    if level is None:
        if destination.default_tlp < Tlp.AMBER:
            return (f"unmarked, this object would be {Tlp(destination.default_tlp).label} here; "
                    "unmarked objects from a peer are taken as TLP:AMBER")
        level = Tlp.AMBER
    return _refusal_between_nodes(level, max_tlp) or _refusal_amber_here(
        level, destination, destination_readers, {entitled_org, source_org})


def _refusal_between_nodes(level: Tlp, max_tlp: Tlp) -> str | None:
    if level == Tlp.RED:
        return "TLP:RED never travels between nodes"
    if level > max_tlp:
        return f"{level.label} is above what this peer may exchange ({Tlp(max_tlp).label})"
    return None


def _refusal_amber_here(level: Tlp, destination: Collection, readers: frozenset[int],
                        entitled: set[int | None]) -> str | None:
    if level == Tlp.CLEAR:
        return None
    if destination.public:
        return f"{level.label} may not go into a public collection"
    if level >= Tlp.AMBER and readers - entitled:
        return (f"{level.label} from a peer goes only into a collection that no organisation "
                "but the one the peer shared it with (and the peer's own) can read")
    return None


def refusal_to_push(level: Tlp, *, stored_level: int | None, max_tlp: Tlp, peer_org: int,
                    source_readers: frozenset[int], back_to_producer: bool = False) -> str | None:
    """Return the TLP 2.0 rule that stops an object going to a peer node, or None.

    ``level`` is its level here; an unmarked object above TLP:CLEAR stays (the peer would
    apply a default of its own). AMBER and AMBER+STRICT go only to a peer whose organisation
    may read the collection here; AMBER also ``back_to_producer``: a sighting made here of an
    indicator that came from that peer, which tells the indicator's producer where it fired.
    """
    refusal = _refusal_between_nodes(level, max_tlp)
    if refusal:
        return refusal
    if stored_level is None and level > Tlp.CLEAR:
        return (f"unmarked, this object is {level.label} here only by this collection's "
                "default: mark it before it goes to another node")
    if level >= Tlp.AMBER and peer_org not in source_readers and not (
            back_to_producer and level == Tlp.AMBER):  # AMBER+STRICT: the organisation only
        return f"{level.label} goes only to nodes of organisations that may read it here"
    return None


def refusal_to_widen(received: frozenset[int], *, readers: frozenset[int],
                     entitled: frozenset[int]) -> str | None:
    """Return why a collection holding objects from other nodes may not get these readers.

    ``received``: the TLP levels of what it holds from peers; ``entitled``: the
    organisations those peers shared with. AMBER and AMBER+STRICT from another node stay
    where only the entitled organisation reads them (as ``refusal_to_pull`` demands).
    """
    amber = {Tlp.AMBER, Tlp.AMBER_STRICT} & received
    if amber and readers - entitled:
        return (f"this collection holds {Tlp(max(amber)).label} objects from another node: "
                "no organisation but the one they were shared with may read it")
    return None


def readers(grants: list[Grant]) -> frozenset[int]:
    """Return the organisations that may read a collection, from its grants."""
    return frozenset(g.org_id for g in grants if g.can_read)


def peer_view(collection: Collection) -> Visibility:
    """Return what may be offered to a peer at all: every level but RED."""
    return Visibility(_SHARED, collection.default_tlp)


def operator_view(collection: Collection) -> Visibility:
    """Return the node operator's view, for counts at the command line: every level."""
    return Visibility(frozenset(Tlp), collection.default_tlp)


def refusal_to_store(collection: Collection, level: int | None) -> str | None:
    """Return why an object of TLP ``level`` may not go into ``collection``, or None."""
    if collection.public and (collection.default_tlp if level is None else level) != Tlp.CLEAR:
        return ("this collection is public: it takes TLP:CLEAR objects only "
                f"(this one is {Tlp(collection.default_tlp if level is None else level).label})")
    return None


def require_visible(access: Access) -> None:
    """Raise NotFound unless the caller may see the collection at all."""
    if not access.visible:
        raise NotFound("no such collection")


def require_read(access: Access) -> None:
    """Raise unless the caller may read objects (§5.3, §5.4, §5.6, §5.8)."""
    require_visible(access)
    if not access.can_read:
        raise Forbidden("this collection is write-only for you")


def require_write(access: Access) -> None:
    """Raise unless the caller may add objects (§5.5)."""
    require_visible(access)
    if not access.can_write:
        raise Forbidden("you may not add objects to this collection")


def require_delete(access: Access) -> None:
    """Raise unless the caller may delete objects: both read and write (§5.7 table)."""
    require_visible(access)
    if not (access.can_read and access.can_write):
        raise Forbidden("deleting needs both read and write access to the collection")


def may_read_status(principal: Principal, owner_org_id: int) -> bool:
    """Return whether a status resource may be shown: only to the organisation that posted."""
    return principal.org_id == owner_org_id


def may_manage(principal: Principal) -> bool:
    """Return whether the principal may administer the node."""
    return principal.role == "admin" and principal.scope == "admin"
