"""Who may see and do what. The only place where access rules live.

An organisation is granted read and/or write on a collection. A user acts for
their organisation, within their role: readers never write. TAXII 2.1 lets a
server answer 404 for a collection the caller may not see (§5.2), which is what
we do, so that a collection's existence does not leak. The Delete table of §5.7
is followed to the letter.
"""

from __future__ import annotations

from dataclasses import dataclass

from communique.errors import Forbidden, NotFound
from communique.store.base import Grant

ROLES = ("admin", "analyst", "reader")
_WRITERS = frozenset({"admin", "analyst"})


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: a user acting for their organisation."""

    user_id: int
    email: str
    org_id: int
    org_name: str
    role: str
    token_id: int | None = None


@dataclass(frozen=True, slots=True)
class Access:
    """What one principal may do with one collection."""

    can_read: bool = False
    can_write: bool = False

    @property
    def visible(self) -> bool:
        return self.can_read or self.can_write


NO_ACCESS = Access()


def access_to(principal: Principal, grant: Grant | None) -> Access:
    """Return what ``principal`` may do with the collection that ``grant`` is about."""
    if grant is None or grant.org_id != principal.org_id:
        return NO_ACCESS
    return Access(can_read=grant.can_read,
                  can_write=grant.can_write and principal.role in _WRITERS)


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
    return principal.role == "admin"
