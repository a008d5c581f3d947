"""Credentials from the Authorization header: Bearer, or HTTP Basic with a token as password.

HTTP Basic is there so that standard TAXII clients (taxii2-client and others) work
unmodified: the user name is the account's e-mail (or empty), the password an API
token. A password is never accepted here.
"""

from __future__ import annotations

import base64

from communique import accounts
from communique.access import Principal
from communique.errors import Unauthorized
from communique.store.base import Store

CHALLENGE = 'Basic realm="communique", Bearer realm="communique"'


def token_from_header(untrusted_header: str | None) -> tuple[str, str | None]:
    """Return (token, user name or None) from an Authorization header, or raise Unauthorized."""
    if not untrusted_header:
        raise Unauthorized("send an API token: 'Authorization: Bearer TOKEN', or HTTP Basic with the token as password")
    scheme, _, value = untrusted_header.strip().partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer" and value.strip():
        return value.strip(), None
    if scheme == "basic" and value.strip():
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except ValueError:  # not base64 (binascii.Error), not ASCII, or not UTF-8
            raise Unauthorized("the Basic credentials are not valid base64 UTF-8") from None
        user, sep, token = decoded.partition(":")
        if sep and token:
            return token, user
    raise Unauthorized("unsupported Authorization header: use Bearer, or Basic with an API token as password")


def authenticate(store: Store, untrusted_header: str | None) -> Principal:
    """Return the principal behind an Authorization header, or raise Unauthorized."""
    token, user = token_from_header(untrusted_header)
    principal = accounts.authenticate(store, token)
    if user and user.strip().lower() != principal.email:
        raise Unauthorized("the Basic user name does not match the token's owner")
    return principal
