"""Setting up a node's database: the schema, and the keys the node keeps in it."""

from __future__ import annotations

import secrets

from sqlalchemy.exc import DBAPIError

from communique.errors import CommuniqueError
from communique.settings import Settings
from communique.store.base import Store

CURSOR_KEY = "cursor_key"


class NotInitialised(CommuniqueError):
    title = "Node not initialised"


def initialise(store: Store) -> None:
    """Create or upgrade the schema and make the node's cursor key; safe to repeat."""
    store.migrate()
    with store.write() as tx:
        if tx.get_setting(CURSOR_KEY) is None:
            tx.put_setting(CURSOR_KEY, secrets.token_hex(32))


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
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
