"""Setting up a node: the schema, the keys it keeps in the database, its signing key and identity."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from communique import ingest, timestamps
from communique.detect import filing
from communique.errors import CommuniqueError
from communique.provenance import keys, publish
from communique.provenance.signatures import TrustedKey
from communique.settings import Settings
from communique.store.base import PublicKey, Store

CURSOR_KEY = "cursor_key"
IDENTITY = "node.identity"          # identity--UUID of this node
IDENTITY_CREATED = "node.identity_created"
KEY_ID = "node.kid"                 # the key id published in the identity
KEY_SINCE = "node.key_since"        # when that key was first published


class NotInitialised(CommuniqueError):
    title = "Node not initialised"


@dataclass(frozen=True)
class Signer:
    """The node's signing key, its identity id, and the identity it publishes."""

    key: keys.NodeKey
    identity_id: str
    identity: dict[str, Any]


def signing_key_path(settings: Settings) -> Path:
    """Return where the node's signing key lives (the setting, else beside the database)."""
    if settings.signing_key:
        return Path(settings.signing_key)
    url = make_url(settings.database)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database + ".signing.key")
    return (Path("var") / f"{url.database or 'communique'}.signing.key").absolute()


def initialise(store: Store, settings: Settings | None = None, *,
               rotate_key: bool = False) -> Signer:
    """Create or upgrade the schema, the cursor key, the signing key and identity; safe to repeat."""
    prepare_database(store)
    return provision(store, settings or Settings(database=store.url), rotate_key=rotate_key)


def prepare_database(store: Store) -> None:
    """Create or upgrade the schema and make the key that signs paging cursors."""
    store.migrate()
    with store.write() as tx:
        if tx.get_setting(CURSOR_KEY) is None:
            tx.put_setting(CURSOR_KEY, secrets.token_hex(32))
    filing.backfill(store)


def provision(store: Store, settings: Settings, *, rotate_key: bool = False) -> Signer:
    """Make the node's signing key (if its file is missing) and identity, and publish the key.

    A node that has published a key never makes a new one silently: a missing key
    file is an error unless ``rotate_key``. A key file replaced since the last run
    is published anew (the identity's ``modified`` moves); the old key stays known
    here as retired, and peers hold the new one until their administrators approve it.
    """
    path = signing_key_path(settings)
    with store.read() as tx:
        published = tx.get_setting(KEY_ID)
    if published and not path.exists() and not rotate_key:
        raise NotInitialised(f"this node publishes key {published}, but its file {path} is "
                             "missing: restore it (or set `signing_key`), or make a new key "
                             "with `communique init --rotate-key` (peers must approve it)")
    key, _ = keys.load_or_create(path)
    now = timestamps.now_us()
    with store.write() as tx:
        if tx.get_setting(IDENTITY) is None:
            tx.put_setting(IDENTITY, f"identity--{uuid.uuid4()}")
            tx.put_setting(IDENTITY_CREATED, str(now))
        identity_id = tx.get_setting(IDENTITY) or ""
        if tx.get_setting(KEY_ID) != key.kid:
            for old in tx.list_keys(identity_id=identity_id, state="trusted"):
                tx.set_key_state(old.kid, "retired", now=now)
            tx.put_setting(KEY_ID, key.kid)
            tx.put_setting(KEY_SINCE, str(now))
            tx.put_key(PublicKey(key.kid, identity_id, key.public_jwk()["x"], "trusted", "self",
                                 now))
    return signer(store, settings)


def signer(store: Store, settings: Settings) -> Signer:
    """Load the node's key and identity; refuse a key that `init` has not published."""
    key = keys.load(signing_key_path(settings))
    with store.read() as tx:
        identity_id, created = tx.get_setting(IDENTITY), tx.get_setting(IDENTITY_CREATED)
        kid, since = tx.get_setting(KEY_ID), tx.get_setting(KEY_SINCE)
    if identity_id is None or created is None or since is None:
        raise NotInitialised("the node has no identity yet: run `communique init`")
    if kid != key.kid:
        raise NotInitialised(f"the signing key at {signing_key_path(settings)} is not the one "
                             "this node publishes: run `communique init` to publish it")
    identity = publish.node_identity(identity_id=identity_id, name=settings.title,
                                     created=int(created), modified=int(since), key=key)
    return Signer(key, identity_id, identity)


def keyring(store: Store) -> dict[str, TrustedKey]:
    """Return the keys this node trusts to verify signatures, by key id.

    A retired key (replaced by a newer one) still verifies what it signed before; a
    revoked one (lost or stolen) verifies nothing.
    """
    with store.read() as tx:
        known = [k for k in tx.list_keys() if k.state in ("trusted", "retired")]
    return {k.kid: TrustedKey(k.identity_id, k.kid, keys.import_public(
        {"kty": "OKP", "crv": "Ed25519", "x": k.x})) for k in known}


def local_provenance(store: Store, settings: Settings, signer: Signer) -> ingest.Provenance:
    """Return how objects the node's own users submit are treated: verified, or signed."""
    return ingest.Provenance(keyring(store), signer.key.private, signer.identity_id,
                             settings.accept_invalid_signatures)


def cursor_key(store: Store, settings: Settings) -> bytes:
    """Return the key that signs paging cursors: the configured one, else the node's own."""
    if settings.secret_key:
        return settings.secret_key.encode()
    try:
        with store.read() as tx:
            value = tx.get_setting(CURSOR_KEY)
    except DBAPIError:
        value = None
    if value is None:
        raise NotInitialised(f"the database at {_safe(store.url)} is not initialised: run `communique init`")
    return bytes.fromhex(value)


def _safe(url: str) -> str:
    """Return a database URL without its password, for messages."""
    return make_url(url).render_as_string(hide_password=True)
