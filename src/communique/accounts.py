"""Organisations, users and API tokens: creating them and authenticating callers.

A token is shown once, when created; only its SHA-256 digest is stored (tokens are
256-bit random values, so a fast hash is the right tool; passwords will get a slow
one). A revoked, expired or disabled-user token authenticates no one.
"""

from __future__ import annotations

import hashlib
import re
import secrets

from communique import timestamps
from communique.access import ROLES, Principal, scopes_for
from communique.audit import OPERATOR, Actor
from communique.errors import BadRequest, NotFound, Unauthorized
from communique.identity import passwords
from communique.store.base import Organisation, Store, Token, User

TOKEN_PREFIX = "cq_"
_TOUCH_EVERY_US = 60 * 1_000_000
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,255}\Z")
_DAY_US = 86_400 * 1_000_000


def hash_token(token: str) -> str:
    """Return the stored digest of a token."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def add_organisation(store: Store, name: str, *, actor: Actor = OPERATOR) -> Organisation:
    """Create an organisation."""
    name = name.strip()
    if not name or len(name) > 200:
        raise BadRequest("an organisation name is 1 to 200 characters")
    with store.write() as tx:
        created = tx.add_organisation(name, now=timestamps.now_us())
        tx.append_audit(actor.event("org.add", target=name), now=timestamps.now_us())
    return created


def add_user(store: Store, email: str, *, org: str, role: str, actor: Actor = OPERATOR) -> User:
    """Create a user in an existing organisation."""
    email = email.strip().lower()
    if not _EMAIL.match(email):
        raise BadRequest(f"{email!r} is not an e-mail address")
    if role not in ROLES:
        raise BadRequest(f"role must be one of {', '.join(ROLES)}")
    with store.write() as tx:
        organisation = tx.find_organisation(org)
        if organisation is None:
            raise NotFound(f"no organisation named {org!r}")
        created = tx.add_user(email, org_id=organisation.id, role=role, now=timestamps.now_us())
        tx.append_audit(actor.event("user.add", target=email, org_of_user=org, role=role),
                        now=timestamps.now_us())
    return created


def create_token(store: Store, email: str, *, expires_days: int | None = None,
                 scope: str | None = None, actor: Actor = OPERATOR) -> tuple[str, Token]:
    """Create an API token for a user; return the token (shown once) and its record.

    ``scope`` (read, write or admin) defaults to the most the user's role allows.
    """
    if expires_days is not None and (expires_days <= 0 or expires_days > 3650):
        raise BadRequest("a token expires after 1 to 3650 days")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = timestamps.now_us()
    with store.write() as tx:
        user = tx.find_user(email.strip().lower())
        if user is None:
            raise NotFound(f"no user {email!r}")
        allowed = scopes_for(user.role)
        scope = scope or allowed[-1]
        if scope not in allowed:
            raise BadRequest(f"a {user.role} may have tokens of scope {', '.join(allowed)} only")
        record = tx.add_token(user_id=user.id, token_hash=hash_token(token), prefix=token[:10],
                              now=now, expires=now + expires_days * _DAY_US if expires_days else None,
                              scope=scope)
        tx.append_audit(actor.event("token.create", target=user.email, token_id=record.id,
                                    scope=scope, expires_days=expires_days), now=now)
    return token, record


def revoke_token(store: Store, token_id: int, *, actor: Actor = OPERATOR,
                 owner_id: int | None = None) -> None:
    """Revoke a token so that it authenticates no one from now on (``owner_id``: only theirs)."""
    with store.write() as tx:
        mine = owner_id is None or any(t.id == token_id for t in tx.list_tokens(user_id=owner_id))
        if not mine or not tx.revoke_token(token_id, now=timestamps.now_us()):
            raise NotFound(f"no active token with id {token_id}")
        tx.append_audit(actor.event("token.revoke", target=str(token_id)), now=timestamps.now_us())


def principal_for(store: Store, email: str) -> Principal:
    """Return the principal a user stands for, for commands run on their behalf."""
    with store.read() as tx:
        user = tx.find_user(email.strip().lower())
    if user is None or user.disabled:
        raise NotFound(f"no active user {email!r}")
    return Principal(user.id, user.email, user.org_id, user.org_name, user.role)


def authenticate(store: Store, untrusted_token: str) -> Principal:
    """Return the principal a bearer token stands for, or raise Unauthorized."""
    invalid = Unauthorized("the token is not valid (unknown, revoked or expired)")
    if not untrusted_token.startswith(TOKEN_PREFIX) or len(untrusted_token) > 200:
        raise invalid
    now = timestamps.now_us()
    with store.read() as tx:
        found = tx.find_token(hash_token(untrusted_token))
    if found is None:
        raise invalid
    token, user = found
    if token.revoked is not None or (token.expires is not None and token.expires <= now) or user.disabled:
        raise invalid
    if token.last_used is None or now - token.last_used > _TOUCH_EVERY_US:
        with store.write() as tx:
            tx.touch_token(token.id, now=now)
    return Principal(user.id, user.email, user.org_id, user.org_name, user.role, token.id,
                     token.scope)


def set_password(store: Store, email: str, password: str, *, actor: Actor = OPERATOR) -> None:
    """Give a user a new password (checked for strength, stored as argon2id), ending their sessions."""
    email = email.strip().lower()
    passwords.check_strength(password, email=email)
    digest = passwords.hash_password(password)
    with store.write() as tx:
        found = tx.find_user(email)
        if found is None:
            raise NotFound(f"no user {email!r}")
        tx.update_user(found.id, password_hash=digest, failed_signins=0, locked_until=None)
        tx.delete_sessions(user_id=found.id)
        tx.append_audit(actor.event("password.set", target=email), now=timestamps.now_us())


def reset_mfa(store: Store, email: str, *, actor: Actor = OPERATOR) -> None:
    """Remove a user's second factor and recovery codes: they enrol again at next sign-in."""
    email = email.strip().lower()
    with store.write() as tx:
        found = tx.find_user(email)
        if found is None:
            raise NotFound(f"no user {email!r}")
        tx.update_user(found.id, mfa_secret=None, mfa_last_step=None)
        tx.replace_recovery_codes(found.id, [])
        tx.delete_sessions(user_id=found.id)
        tx.append_audit(actor.event("mfa.reset", target=email), now=timestamps.now_us())
