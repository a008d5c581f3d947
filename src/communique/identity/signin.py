"""Web sign-in: password, then a TOTP code (enrolling one first if need be), then a session.

Every failure gets the same answer, whether the account exists, is locked, or the
password or code is wrong, so that the answers reveal nothing. Failures count
against the account (``lockout_failures`` in a row lock it for ``lockout_minutes``)
and against the client address (``address_failures`` within that window refuse the
address). Every step, good or bad, is in the audit log. A session changes its id
whenever it gains rights (no session fixation).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import NoReturn

from communique import audit, timestamps
from communique.audit import Actor
from communique.errors import TooManyRequests, Unauthorized
from communique.identity import passwords, totp
from communique.settings import Settings
from communique.store.base import Credentials, Store, Tx, WebSession

GENERIC = ("Sign-in failed: the e-mail address, password or code is wrong, or there were "
           "too many attempts. Try again later.")
_MINUTE_US = 60 * 1_000_000
_EMAIL_LIMIT = 320


@dataclass(frozen=True, slots=True)
class Signed:
    """A session after a sign-in step: its new cookie value (shown to the browser only)."""

    cookie: str
    session: WebSession


def session_hash(cookie: str) -> str:
    """Return the stored digest of a session cookie."""
    return hashlib.sha256(cookie.encode("utf-8", "surrogatepass")).hexdigest()


def new_session(tx: Tx, *, user_id: int, stage: str, address: str, now: int,
                created: int | None = None, pending_secret: str | None = None) -> Signed:
    """Create a session with a fresh random id and CSRF token."""
    cookie = secrets.token_urlsafe(32)
    session = WebSession(session_hash(cookie), user_id, stage, secrets.token_urlsafe(32),
                         pending_secret, address[:64], created or now, now)
    tx.add_session(session)
    return Signed(cookie, session)


def check_password(store: Store, settings: Settings, *, email: str, password: str,
                   address: str) -> Signed:
    """First step: check the password; return a session awaiting its code (or enrolment)."""
    email = email.strip().lower()[:_EMAIL_LIMIT]
    who = Actor(email, "", address)
    now = timestamps.now_us()
    _refuse_throttled(store, settings, who, now)
    plausible = email.isprintable() and "@" in email  # no control characters reach the query
    with store.read() as tx:
        found = tx.credentials(email=email) if plausible else None
    matches = passwords.verify_password(found.password_hash if found else None, password)
    if found is None or not matches or found.disabled or _locked(found, now):
        reason = ("no such account" if found is None else "locked" if _locked(found, now)
                  else "disabled" if found.disabled else "wrong password")
        _fail(store, settings, found, Actor(email, found.org_name if found else "", address),
              now, step="password", reason=reason)
    with store.write() as tx:
        if found.failed_signins:
            tx.update_user(found.id, failed_signins=0)
        stage = "mfa" if found.mfa_secret else "enrol"
        signed = new_session(tx, user_id=found.id, stage=stage, address=address, now=now)
        tx.append_audit(Actor(email, found.org_name, address).event(
            "signin.password", next_step=stage), now=now)
    return signed


def confirm_code(store: Store, settings: Settings, *, session: WebSession, code: str,
                 address: str) -> Signed:
    """Second step: a TOTP code (or a recovery code); the session becomes a full one."""
    now = timestamps.now_us()
    with store.read() as tx:
        found = tx.credentials(user_id=session.user_id)
    assert found is not None and found.mfa_secret and session.stage == "mfa"
    who = Actor(found.email, found.org_name, address)
    _refuse_throttled(store, settings, who, now)
    step = totp.matching_step(found.mfa_secret, code, now_s=now / 1_000_000)
    if _locked(found, now):
        _fail(store, settings, found, who, now, step="code", reason="locked")
    with store.write() as tx:
        if step is not None:
            how = "totp" if tx.use_mfa_step(found.id, step) else None
            reason = "code already used"
        else:
            used = tx.use_recovery_code(found.id, totp.hash_recovery_code(code), now=now)
            how = "recovery code" if used else None
            reason = "wrong code"
    if how is None:
        _fail(store, settings, found, who, now, step="code", reason=reason)
    with store.write() as tx:
        tx.update_user(found.id, failed_signins=0)
        tx.delete_sessions(id_hash=session.id_hash)
        signed = new_session(tx, user_id=found.id, stage="full", address=address, now=now,
                             created=session.created)
        tx.append_audit(who.event("signin.success", method=how), now=now)
    return signed


def enrolment_secret(store: Store, *, session: WebSession) -> str:
    """Return the TOTP secret being enrolled in this session (made on first call)."""
    assert session.stage == "enrol"
    if session.pending_secret:
        return session.pending_secret
    secret = totp.new_secret()
    with store.write() as tx:
        tx.update_session(session.id_hash, pending_secret=secret)
    return secret


def finish_enrolment(store: Store, settings: Settings, *, session: WebSession, code: str,
                     address: str) -> tuple[Signed, list[str]]:
    """Confirm the new second factor with a valid code; return the full session and recovery codes."""
    now = timestamps.now_us()
    with store.read() as tx:
        found = tx.credentials(user_id=session.user_id)
    assert found is not None and session.stage == "enrol" and session.pending_secret
    who = Actor(found.email, found.org_name, address)
    _refuse_throttled(store, settings, who, now)
    step = totp.matching_step(session.pending_secret, code, now_s=now / 1_000_000)
    codes = totp.new_recovery_codes()
    if step is None or _locked(found, now):
        _fail(store, settings, found, who, now, step="enrolment",
              reason="locked" if _locked(found, now) else "wrong code")
    with store.write() as tx:
        tx.update_user(found.id, mfa_secret=session.pending_secret, mfa_last_step=step,
                       failed_signins=0)
        tx.replace_recovery_codes(found.id, [totp.hash_recovery_code(c) for c in codes])
        tx.delete_sessions(id_hash=session.id_hash)
        signed = new_session(tx, user_id=found.id, stage="full", address=address, now=now,
                             created=session.created)
        tx.append_audit(who.event("mfa.enrol", recovery_codes=len(codes)), now=now)
        tx.append_audit(who.event("signin.success", method="enrolment"), now=now)
    return signed, codes


def load_session(store: Store, settings: Settings, untrusted_cookie: str | None) -> WebSession | None:
    """Return the live session a cookie names, or None (unknown, idle too long, too old)."""
    if not untrusted_cookie or len(untrusted_cookie) > 100:
        return None
    now = timestamps.now_us()
    digest = session_hash(untrusted_cookie)
    with store.read() as tx:
        session = tx.get_session(digest)
    if session is None:
        return None
    idle = now - session.last_seen > settings.session_idle_minutes * _MINUTE_US
    old = now - session.created > settings.session_max_hours * 60 * _MINUTE_US
    if idle or old:
        with store.write() as tx:
            tx.delete_sessions(id_hash=digest)
        return None
    if now - session.last_seen > _MINUTE_US:
        with store.write() as tx:
            tx.update_session(digest, last_seen=now)
    return session


def sign_out(store: Store, session: WebSession, *, actor: Actor) -> None:
    """End a session."""
    with store.write() as tx:
        tx.delete_sessions(id_hash=session.id_hash)
        tx.append_audit(actor.event("signout"), now=timestamps.now_us())


def _locked(found: Credentials, now: int) -> bool:
    return found.locked_until is not None and found.locked_until > now


def _refuse_throttled(store: Store, settings: Settings, who: Actor, now: int) -> None:
    window = settings.lockout_minutes * _MINUTE_US
    with store.read() as tx:
        failures = tx.address_failures(who.address, since=now - window)
    if failures >= settings.address_failures:
        with store.write() as tx:
            tx.append_audit(who.event("signin.failure", outcome=audit.REFUSED,
                                      reason="too many failures from this address"), now=now)
        raise TooManyRequests(GENERIC)


def _fail(store: Store, settings: Settings, found: Credentials | None, who: Actor, now: int, *,
          step: str, reason: str) -> NoReturn:
    """Count a failure against the address and the account, record it (committed), and refuse."""
    with store.write() as tx:
        tx.add_address_failure(who.address[:64], now=now)
        tx.purge_address_failures(before=now - 24 * 60 * _MINUTE_US)
        tx.append_audit(who.event("signin.failure", outcome=audit.REFUSED, step=step,
                                  reason=reason), now=now)
        if found is not None and reason != "locked":
            if tx.count_failed_signin(found.id) >= settings.lockout_failures:
                tx.update_user(found.id, failed_signins=0,
                               locked_until=now + settings.lockout_minutes * _MINUTE_US)
                tx.append_audit(who.event("account.locked", outcome=audit.REFUSED,
                                          minutes=settings.lockout_minutes), now=now)
    raise Unauthorized(GENERIC)
