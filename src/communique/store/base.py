"""The storage interface: values that cross it, and the operations every backend offers.

A ``Store`` opens transactions; a ``Tx`` does the work inside one. The caller owns
the transaction: helpers never commit. Both backends (SQLite, PostgreSQL) pass
the one contract suite in ``tests/test_store_contract.py``.
"""

from __future__ import annotations

import enum
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence

from communique import audit
from communique.stix.validate import StixObject
from communique.taxii.filters import Query

STIX_MEDIA_TYPE = "application/stix+json;version=2.1"


class Outcome(enum.Enum):
    """What happened to one object offered to the store."""

    ADDED = "added"
    DUPLICATE = "duplicate"  # the same id and version with the same content: nothing to do
    CONFLICT = "conflict"    # the same id and version with different content: refused


@dataclass(frozen=True, slots=True)
class Record:
    """One stored version of one object."""

    stix_id: str
    version: int
    date_added: int
    spec_version: str
    media_type: str
    body: bytes | None
    tlp: int | None = None  # its own TLP level; None: unmarked (the collection's default)
    signature: int = 0  # provenance.signatures.Status when stored
    origin_peer: int | None = None  # the peer it was pulled from


@dataclass(frozen=True, slots=True)
class Page:
    """One page of records in ascending ``date_added`` order."""

    records: list[Record]
    more: bool

    @property
    def first_added(self) -> int | None:
        return self.records[0].date_added if self.records else None

    @property
    def last_added(self) -> int | None:
        return self.records[-1].date_added if self.records else None


@dataclass(frozen=True, slots=True)
class Organisation:
    id: int
    name: str


@dataclass(frozen=True, slots=True)
class User:
    id: int
    email: str
    org_id: int
    org_name: str
    role: str
    disabled: bool


@dataclass(frozen=True, slots=True)
class Token:
    id: int
    user_id: int
    email: str
    prefix: str
    created: int
    expires: int | None
    revoked: int | None
    last_used: int | None
    scope: str = "write"  # read, write or admin


@dataclass(frozen=True, slots=True)
class Credentials:
    """What signing a user in needs to know (never leaves the identity use cases)."""

    id: int
    email: str
    org_id: int
    org_name: str
    role: str
    disabled: bool
    password_hash: str | None
    mfa_secret: str | None
    mfa_last_step: int | None
    failed_signins: int
    locked_until: int | None


@dataclass(frozen=True, slots=True)
class WebSession:
    """A signed-in browser (or one half-way through signing in)."""

    id_hash: str
    user_id: int
    stage: str  # 'mfa', 'enrol' or 'full'
    csrf: str
    pending_secret: str | None
    address: str
    created: int
    last_seen: int


@dataclass(frozen=True, slots=True)
class ApiRoot:
    slug: str
    title: str
    description: str


@dataclass(frozen=True, slots=True)
class Collection:
    id: str
    api_root: str
    title: str
    description: str
    alias: str | None
    default_tlp: int = 2  # markings.Tlp.AMBER: the level of objects without a TLP marking
    public: bool = False  # readable without authentication, TLP:CLEAR only


@dataclass(frozen=True, slots=True)
class Visibility:
    """Which stored versions a read may return. ``access.visibility`` decides; the store applies.

    A version's level is its own TLP level, or ``default`` when it has none. It is
    returned when that level is in ``levels``; a RED one also when ``red_org_id``
    produced it or it names one of ``red_principals`` as recipient.
    """

    levels: frozenset[int]
    default: int
    red_org_id: int | None = None
    red_principals: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class IndicatorRow:
    """The last version of an indicator as detection sees it (``indicator_facts`` and more)."""

    pk: int
    collection_id: str
    stix_id: str
    version: int
    tlp: int | None  # its own level; None: the collection's default
    producer_org: int | None
    valid_from: int
    valid_until: int | None
    revoked: bool
    confidence: int | None
    kinds: str
    created_by: str | None
    warninglists: str | None  # None: not checked yet; '': on none
    overridden: bool  # an analyst lets it through its warning lists


@dataclass(frozen=True, slots=True)
class Grant:
    """What one organisation may do with one collection."""

    collection_id: str
    org_id: int
    can_read: bool
    can_write: bool


@dataclass(frozen=True, slots=True)
class PublicKey:
    """A signing key known to this node: trusted, pending approval, or retired."""

    kid: str
    identity_id: str
    x: str
    state: str
    source: str
    added: int
    decided: int | None = None


@dataclass(frozen=True, slots=True)
class Peer:
    """Another node this one synchronises with."""

    id: int
    name: str
    url: str
    token_file: str
    org_id: int  # the organisation that runs the peer (registered here)
    local_org_id: int  # the organisation this node acts for at the peer
    max_tlp: int
    every_seconds: int
    identity_id: str | None
    created: int


@dataclass(frozen=True, slots=True)
class PeerLink:
    """One collection mapping of a peer in one direction, and where it stands."""

    id: int
    peer_id: int
    direction: str  # pull or push
    remote_collection: str
    local_collection: str
    position: int | None = None
    last_attempt: int | None = None
    last_success: int | None = None
    last_error: str | None = None
    errors_in_row: int = 0
    next_due: int = 0
    moved: int = 0
    refused: int = 0


class Tx(Protocol):
    """Operations inside one transaction."""

    # node
    def get_setting(self, name: str) -> str | None: ...
    def put_setting(self, name: str, value: str) -> None: ...
    def swap_setting(self, name: str, expected: str | None, value: str) -> bool: ...

    # organisations, users, tokens
    def add_organisation(self, name: str, *, now: int) -> Organisation: ...
    def find_organisation(self, name: str) -> Organisation | None: ...
    def list_organisations(self) -> list[Organisation]: ...
    def add_user(self, email: str, *, org_id: int, role: str, now: int) -> User: ...
    def find_user(self, email: str) -> User | None: ...
    def list_users(self) -> list[User]: ...
    def add_token(self, *, user_id: int, token_hash: str, prefix: str, now: int,
                  expires: int | None, scope: str = "write") -> Token: ...
    def find_token(self, token_hash: str) -> tuple[Token, User] | None: ...
    def list_tokens(self, *, user_id: int | None = None) -> list[Token]: ...
    def revoke_token(self, token_id: int, *, now: int) -> bool: ...
    def touch_token(self, token_id: int, *, now: int) -> None: ...

    # API roots and collections
    def add_api_root(self, slug: str, *, title: str, description: str, now: int) -> ApiRoot: ...
    def get_api_root(self, slug: str) -> ApiRoot | None: ...
    def list_api_roots(self) -> list[ApiRoot]: ...
    def add_collection(self, collection: Collection, *, now: int) -> Collection: ...
    def get_collection(self, api_root: str, id_or_alias: str) -> Collection | None: ...
    def list_collections(self, api_root: str | None = None) -> list[Collection]: ...
    def set_collection_tlp(self, collection_id: str, *, default_tlp: int, public: bool) -> None: ...
    def set_grant(self, grant: Grant) -> None: ...
    def grants_of(self, org_id: int, api_root: str | None = None) -> dict[str, Grant]: ...
    def grants_on(self, collection_id: str) -> list[Grant]: ...

    # objects
    def add_objects(self, collection_id: str, objects: Sequence[StixObject], *,
                    now: int, producer_org: int | None = None,
                    origin_peer: int | None = None) -> list[tuple[Outcome, int]]: ...
    def list_objects(self, collection_id: str, query: Query, *, visibility: Visibility,
                     after: int | None, object_id: str | None = None,
                     with_body: bool = True) -> Page: ...
    def list_versions(self, collection_id: str, object_id: str, query: Query, *,
                      visibility: Visibility, after: int | None) -> Page: ...
    def delete_object(self, collection_id: str, object_id: str, query: Query, *,
                      visibility: Visibility) -> int: ...
    def count_objects(self, collection_id: str, *, visibility: Visibility,
                      every_version: bool = False) -> dict[int, int]: ...

    def count_signatures(self, collection_id: str, *,
                         visibility: Visibility) -> dict[int, int]: ...

    # detection facts (store/sql_detection.py)
    def version_pks(self, collection_id: str,
                    keys: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]: ...
    def file_facts(self, indicators: Sequence[tuple[int, Any]],
                   sightings: Sequence[tuple[int, Any]]) -> None: ...
    def unfiled(self, *, after_pk: int, limit: int) -> list[tuple[int, str, int, bytes]]: ...
    def unchecked_indicators(self, *, limit: int) -> dict[int, list[tuple[str, str]]]: ...
    def count_unchecked(self) -> int: ...
    def set_warninglists(self, found: Mapping[int, str]) -> None: ...
    def set_override(self, collection_id: str, stix_id: str, *, actor: str, reason: str,
                     now: int) -> None: ...
    def clear_override(self, collection_id: str, stix_id: str) -> bool: ...
    def indicator_rows(self, views: Mapping[str, Visibility], *, after_pk: int = 0,
                       limit: int = 1000, stix_ids: Sequence[str] = (),
                       digests: Sequence[bytes] = (), pks: Sequence[int] = ()) -> list[IndicatorRow]: ...
    def indicator_page(self, views: Mapping[str, Visibility], *, after_pk: int,
                       limit: int) -> tuple[list[IndicatorRow], int | None]: ...
    def values_of(self, pks: Iterable[int]) -> dict[int, list[tuple[str, str]]]: ...
    def bodies_of(self, pks: Iterable[int]) -> dict[int, bytes]: ...
    def origins_of(self, collection_id: str, stix_ids: Sequence[str]) -> dict[str, int | None]: ...
    def sighting_totals(self, views: Mapping[str, Visibility],
                        indicator_ids: Sequence[str]) -> dict[str, tuple[int, int | None, int]]: ...
    def shared_values(self, views: Mapping[str, Visibility], *, min_reporters: int,
                      limit: int) -> list[tuple[bytes, str, str, int, int]]: ...

    # keys and peers (store/sql_federation.py)
    def put_key(self, key: PublicKey) -> bool: ...
    def list_keys(self, *, identity_id: str | None = None,
                  state: str | None = None) -> list[PublicKey]: ...
    def set_key_state(self, kid: str, state: str, *, now: int) -> bool: ...
    def add_peer(self, peer: Peer, links: Sequence[PeerLink]) -> Peer: ...
    def find_peer(self, name: str) -> Peer | None: ...
    def list_peers(self) -> list[Peer]: ...
    def remove_peer(self, peer_id: int) -> None: ...
    def links_of(self, peer_id: int | None = None) -> list[PeerLink]: ...
    def update_link(self, link_id: int, **values: object) -> None: ...
    def received_levels(self, collection_id: str) -> frozenset[int]: ...
    def add_retries(self, link_id: int, failures: Sequence[tuple[str, int, str]], *,
                    now: int, backoff: Callable[[int], int]) -> None: ...
    def due_retries(self, link_id: int, *, now: int, limit: int) -> list[tuple[str, int, int]]: ...
    def clear_retries(self, link_id: int, keys: Sequence[tuple[str, int]]) -> None: ...
    def count_retries(self, link_id: int) -> int: ...

    # sign-in (store/sql_identity.py)
    def credentials(self, *, email: str | None = None,
                    user_id: int | None = None) -> Credentials | None: ...
    def update_user(self, user_id: int, **values: object) -> None: ...
    def count_failed_signin(self, user_id: int) -> int: ...
    def use_mfa_step(self, user_id: int, step: int) -> bool: ...
    def add_address_failure(self, address: str, *, now: int) -> None: ...
    def address_failures(self, address: str, *, since: int) -> int: ...
    def purge_address_failures(self, *, before: int) -> None: ...
    def replace_recovery_codes(self, user_id: int, code_hashes: list[str]) -> None: ...
    def use_recovery_code(self, user_id: int, code_hash: str, *, now: int) -> bool: ...
    def unused_recovery_codes(self, user_id: int) -> int: ...
    def add_session(self, session: WebSession) -> None: ...
    def get_session(self, id_hash: str) -> WebSession | None: ...
    def update_session(self, id_hash: str, **values: object) -> None: ...
    def delete_sessions(self, *, id_hash: str | None = None, user_id: int | None = None,
                        idle_before: int | None = None,
                        created_before: int | None = None) -> int: ...

    # the audit log
    def append_audit(self, event: audit.Event, *, now: int) -> audit.Entry: ...
    def audit_head(self) -> tuple[int, str] | None: ...
    def audit_entries(self, *, after_seq: int = 0, limit: int = 1000, actor: str | None = None,
                      org: str | None = None, action: str | None = None,
                      since: int | None = None) -> list[audit.Entry]: ...

    # status resources
    def save_status(self, *, status_id: str, api_root: str, org_id: int, now: int,
                    body: bytes) -> None: ...
    def get_status(self, status_id: str, *, api_root: str) -> tuple[int, bytes] | None: ...
    def purge_statuses(self, *, before: int) -> int: ...


class Store(Protocol):
    """A database holding one node's objects, accounts and collections."""

    url: str

    def write(self) -> AbstractContextManager[Tx]: ...
    def read(self) -> AbstractContextManager[Tx]: ...
    def migrate(self) -> None: ...
    def close(self) -> None: ...
