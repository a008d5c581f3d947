"""Opaque, signed paging cursors for TAXII ``next`` (§3.5).

A cursor records where the previous page ended (a ``date_added`` in microseconds)
and a digest of the query it belongs to, signed with the node's key (HMAC-SHA256).
It needs no server-side state, so it works across workers and restarts; a cursor
that was altered, or that belongs to another query, is refused (App. B: never
trust a client's cursor).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

import orjson

from communique.errors import BadRequest

_VERSION = 1
_MAC_BYTES = 16


def _digest(scope: object) -> str:
    return hashlib.sha256(orjson.dumps(scope, default=repr)).hexdigest()[:24]


def encode(key: bytes, *, position: int, scope: object) -> str:
    """Return a cursor that resumes after ``position`` for the query ``scope``."""
    payload = orjson.dumps([_VERSION, position, _digest(scope)])
    mac = hmac.new(key, payload, hashlib.sha256).digest()[:_MAC_BYTES]
    return base64.urlsafe_b64encode(payload + mac).rstrip(b"=").decode()


def decode(key: bytes, untrusted: str, *, scope: object) -> int:
    """Return the position stored in a cursor, or raise BadRequest if it is not ours."""
    invalid = BadRequest("'next' is not a cursor this server issued for this query")
    if len(untrusted) > 200:
        raise invalid
    try:
        raw = base64.urlsafe_b64decode(untrusted + "=" * (-len(untrusted) % 4))
    except (ValueError, TypeError):
        raise invalid from None
    payload, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
    expected = hmac.new(key, payload, hashlib.sha256).digest()[:_MAC_BYTES]
    if len(raw) <= _MAC_BYTES or not hmac.compare_digest(mac, expected):
        raise invalid
    version, position, digest = orjson.loads(payload)
    if version != _VERSION or digest != _digest(scope) or type(position) is not int:
        raise invalid
    return position
