"""The SQL store's side of sign-in: credentials, TOTP steps, recovery codes, web sessions.

Mixed into ``sql.SqlTx``. Secrets never appear here in clear: passwords as
argon2id hashes, recovery codes and session cookies as SHA-256 digests.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, func, or_, select, update

from communique.store import schema as s
from communique.store.base import Credentials, WebSession

_SESSION_COLUMNS = ("id_hash", "user_id", "stage", "csrf", "pending_secret", "address",
                    "created", "last_seen")


class IdentitySql:
    """Passwords, MFA, lockout, sign-in failures and web sessions."""

    conn: Connection

    def credentials(self, *, email: str | None = None, user_id: int | None = None) -> Credentials | None:
        u, o = s.users, s.organisations
        sql = select(u.c.id, u.c.email, u.c.org_id, o.c.name, u.c.role, u.c.disabled,
                     u.c.password_hash, u.c.mfa_secret, u.c.mfa_last_step, u.c.failed_signins,
                     u.c.locked_until).join(o, o.c.id == u.c.org_id)
        sql = sql.where(u.c.email == email) if email is not None else sql.where(u.c.id == user_id)
        row = self.conn.execute(sql).first()
        return Credentials(*row) if row else None

    def update_user(self, user_id: int, **values: Any) -> None:
        """Set sign-in columns of a user: password_hash, mfa_secret, mfa_last_step, lockout."""
        allowed = {"password_hash", "mfa_secret", "mfa_last_step", "failed_signins", "locked_until"}
        assert set(values) <= allowed, set(values) - allowed
        self.conn.execute(update(s.users).where(s.users.c.id == user_id).values(**values))

    def count_failed_signin(self, user_id: int) -> int:
        u = s.users
        self.conn.execute(update(u).where(u.c.id == user_id).values(
            failed_signins=u.c.failed_signins + 1))
        return self.conn.execute(select(u.c.failed_signins).where(u.c.id == user_id)).scalar_one()

    def use_mfa_step(self, user_id: int, step: int) -> bool:
        """Record TOTP time step ``step`` as used; False if it (or a later one) already was."""
        u = s.users
        done = self.conn.execute(update(u).where(
            u.c.id == user_id, or_(u.c.mfa_last_step.is_(None), u.c.mfa_last_step < step)).values(
            mfa_last_step=step))
        return done.rowcount == 1

    # -- failures by client address ------------------------------------------------------
    def add_address_failure(self, address: str, *, now: int) -> None:
        self.conn.execute(s.signin_failures.insert().values(address=address, at=now))

    def address_failures(self, address: str, *, since: int) -> int:
        f = s.signin_failures
        return self.conn.execute(select(func.count()).select_from(f).where(
            f.c.address == address, f.c.at >= since)).scalar_one()

    def purge_address_failures(self, *, before: int) -> None:
        self.conn.execute(delete(s.signin_failures).where(s.signin_failures.c.at < before))

    # -- recovery codes --------------------------------------------------------------------
    def replace_recovery_codes(self, user_id: int, code_hashes: list[str]) -> None:
        r = s.recovery_codes
        self.conn.execute(delete(r).where(r.c.user_id == user_id))
        if code_hashes:
            self.conn.execute(r.insert(), [{"user_id": user_id, "code_hash": h} for h in code_hashes])

    def use_recovery_code(self, user_id: int, code_hash: str, *, now: int) -> bool:
        r = s.recovery_codes
        done = self.conn.execute(update(r).where(
            r.c.user_id == user_id, r.c.code_hash == code_hash, r.c.used.is_(None)).values(used=now))
        return done.rowcount == 1

    def unused_recovery_codes(self, user_id: int) -> int:
        r = s.recovery_codes
        return self.conn.execute(select(func.count()).select_from(r).where(
            r.c.user_id == user_id, r.c.used.is_(None))).scalar_one()

    # -- web sessions ----------------------------------------------------------------------
    def add_session(self, session: WebSession) -> None:
        self.conn.execute(s.web_sessions.insert().values(
            **{c: getattr(session, c) for c in _SESSION_COLUMNS}))

    def get_session(self, id_hash: str) -> WebSession | None:
        w = s.web_sessions
        row = self.conn.execute(select(*(w.c[c] for c in _SESSION_COLUMNS)).where(
            w.c.id_hash == id_hash)).first()
        return WebSession(*row) if row else None

    def update_session(self, id_hash: str, **values: Any) -> None:
        assert set(values) <= {"stage", "csrf", "pending_secret", "last_seen"}
        w = s.web_sessions
        self.conn.execute(update(w).where(w.c.id_hash == id_hash).values(**values))

    def delete_sessions(self, *, id_hash: str | None = None, user_id: int | None = None,
                        idle_before: int | None = None, created_before: int | None = None) -> int:
        w = s.web_sessions
        clauses = []
        if id_hash is not None:
            clauses.append(w.c.id_hash == id_hash)
        if user_id is not None:
            clauses.append(w.c.user_id == user_id)
        if idle_before is not None:
            clauses.append(w.c.last_seen < idle_before)
        if created_before is not None:
            clauses.append(w.c.created < created_before)
        if not clauses:
            return 0
        return self.conn.execute(delete(w).where(or_(*clauses))).rowcount
