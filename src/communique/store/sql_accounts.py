"""The SQL store's operations on the node's settings, accounts, API roots and collections.

Mixed into ``sql.SqlTx``; split out so that the object store reads on its own.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, or_, select, true, update
from sqlalchemy.exc import IntegrityError

from communique.errors import Conflict
from communique.store import schema as s
from communique.store.base import ApiRoot, Collection, Grant, Organisation, Token, User


class AccountsSql:
    """Settings, organisations, users, tokens, API roots, collections and grants."""

    conn: Connection

    # -- node settings -------------------------------------------------------------
    def get_setting(self, name: str) -> str | None:
        return self.conn.execute(
            select(s.node_settings.c.value).where(s.node_settings.c.name == name)).scalar()

    def put_setting(self, name: str, value: str) -> None:
        done = self.conn.execute(update(s.node_settings).where(
            s.node_settings.c.name == name).values(value=value))
        if done.rowcount == 0:
            self.conn.execute(s.node_settings.insert().values(name=name, value=value))

    def swap_setting(self, name: str, expected: str | None, value: str) -> bool:
        """Set ``name`` to ``value`` only if it still holds ``expected``; say if it did.

        One statement, so that two processes racing for it cannot both win.
        """
        n = s.node_settings
        if expected is None:
            try:
                with self.conn.begin_nested():
                    self.conn.execute(n.insert().values(name=name, value=value))
            except IntegrityError:
                return False
            return True
        return bool(self.conn.execute(update(n).where(
            n.c.name == name, n.c.value == expected).values(value=value)).rowcount)

    # -- organisations, users, tokens ----------------------------------------------
    def add_organisation(self, name: str, *, now: int) -> Organisation:
        try:
            with self.conn.begin_nested():
                pk = self.conn.execute(s.organisations.insert().values(
                    name=name, created=now)).inserted_primary_key[0]
        except IntegrityError:
            raise Conflict(f"organisation {name!r} already exists") from None
        return Organisation(pk, name)

    def find_organisation(self, name: str) -> Organisation | None:
        row = self.conn.execute(select(s.organisations.c.id, s.organisations.c.name).where(
            s.organisations.c.name == name)).first()
        return Organisation(*row) if row else None

    def list_organisations(self) -> list[Organisation]:
        rows = self.conn.execute(select(s.organisations.c.id, s.organisations.c.name).order_by(
            s.organisations.c.name))
        return [Organisation(*row) for row in rows]

    def add_user(self, email: str, *, org_id: int, role: str, now: int) -> User:
        try:
            with self.conn.begin_nested():
                self.conn.execute(s.users.insert().values(
                    email=email, org_id=org_id, role=role, created=now, disabled=False))
        except IntegrityError:
            raise Conflict(f"user {email!r} already exists") from None
        user = self.find_user(email)
        assert user is not None
        return user

    def _users(self):
        u, o = s.users, s.organisations
        return select(u.c.id, u.c.email, u.c.org_id, o.c.name, u.c.role, u.c.disabled).join(
            o, o.c.id == u.c.org_id)

    def find_user(self, email: str) -> User | None:
        row = self.conn.execute(self._users().where(s.users.c.email == email)).first()
        return User(*row) if row else None

    def list_users(self) -> list[User]:
        return [User(*row) for row in self.conn.execute(self._users().order_by(s.users.c.email))]

    def add_token(self, *, user_id: int, token_hash: str, prefix: str, now: int,
                  expires: int | None, scope: str = "write") -> Token:
        pk = self.conn.execute(s.api_tokens.insert().values(
            user_id=user_id, token_hash=token_hash, prefix=prefix, created=now,
            expires=expires, scope=scope)).inserted_primary_key[0]
        token = self._tokens(s.api_tokens.c.id == pk)
        return token[0]

    def _tokens(self, *where: Any) -> list[Token]:
        t = s.api_tokens
        rows = self.conn.execute(select(
            t.c.id, t.c.user_id, s.users.c.email, t.c.prefix, t.c.created, t.c.expires,
            t.c.revoked, t.c.last_used, t.c.scope).join(s.users, s.users.c.id == t.c.user_id).where(
            *where).order_by(t.c.id))
        return [Token(*row) for row in rows]

    def find_token(self, token_hash: str) -> tuple[Token, User] | None:
        tokens = self._tokens(s.api_tokens.c.token_hash == token_hash)
        if not tokens:
            return None
        row = self.conn.execute(self._users().where(s.users.c.id == tokens[0].user_id)).first()
        return tokens[0], User(*row)

    def list_tokens(self, *, user_id: int | None = None) -> list[Token]:
        return self._tokens(true() if user_id is None else s.api_tokens.c.user_id == user_id)

    def revoke_token(self, token_id: int, *, now: int) -> bool:
        done = self.conn.execute(update(s.api_tokens).where(
            s.api_tokens.c.id == token_id, s.api_tokens.c.revoked.is_(None)).values(revoked=now))
        return done.rowcount == 1

    def touch_token(self, token_id: int, *, now: int) -> None:
        self.conn.execute(update(s.api_tokens).where(s.api_tokens.c.id == token_id).values(
            last_used=now))

    # -- API roots and collections ---------------------------------------------------
    def add_api_root(self, slug: str, *, title: str, description: str, now: int) -> ApiRoot:
        try:
            with self.conn.begin_nested():
                self.conn.execute(s.api_roots.insert().values(
                    slug=slug, title=title, description=description, created=now))
        except IntegrityError:
            raise Conflict(f"API root {slug!r} already exists") from None
        return ApiRoot(slug, title, description)

    def get_api_root(self, slug: str) -> ApiRoot | None:
        r = s.api_roots
        row = self.conn.execute(select(r.c.slug, r.c.title, r.c.description).where(
            r.c.slug == slug)).first()
        return ApiRoot(*row) if row else None

    def list_api_roots(self) -> list[ApiRoot]:
        r = s.api_roots
        rows = self.conn.execute(select(r.c.slug, r.c.title, r.c.description).order_by(r.c.slug))
        return [ApiRoot(*row) for row in rows]

    _collection_columns = (s.collections.c.id, s.collections.c.api_root, s.collections.c.title,
                           s.collections.c.description, s.collections.c.alias,
                           s.collections.c.default_tlp, s.collections.c.public)

    def add_collection(self, collection: Collection, *, now: int) -> Collection:
        try:
            with self.conn.begin_nested():
                self.conn.execute(s.collections.insert().values(
                    id=collection.id, api_root=collection.api_root, title=collection.title,
                    description=collection.description, alias=collection.alias, created=now,
                    last_added=0, default_tlp=collection.default_tlp, public=collection.public))
        except IntegrityError:
            raise Conflict("a collection with this id or alias already exists") from None
        return collection

    def get_collection(self, api_root: str, id_or_alias: str) -> Collection | None:
        c = s.collections
        row = self.conn.execute(select(*self._collection_columns).where(
            c.c.api_root == api_root, or_(c.c.id == id_or_alias, c.c.alias == id_or_alias))
            .order_by((c.c.id == id_or_alias).desc())).first()
        return Collection(*row) if row else None

    def list_collections(self, api_root: str | None = None) -> list[Collection]:
        c = s.collections
        where = true() if api_root is None else c.c.api_root == api_root
        rows = self.conn.execute(select(*self._collection_columns).where(where).order_by(
            c.c.created, c.c.id))
        return [Collection(*row) for row in rows]

    def set_collection_tlp(self, collection_id: str, *, default_tlp: int, public: bool) -> None:
        self.conn.execute(update(s.collections).where(s.collections.c.id == collection_id).values(
            default_tlp=default_tlp, public=public))

    def set_grant(self, grant: Grant) -> None:
        g = s.grants
        self.conn.execute(delete(g).where(g.c.collection_id == grant.collection_id,
                                          g.c.org_id == grant.org_id))
        if grant.can_read or grant.can_write:
            self.conn.execute(g.insert().values(
                collection_id=grant.collection_id, org_id=grant.org_id,
                can_read=grant.can_read, can_write=grant.can_write))

    def grants_of(self, org_id: int, api_root: str | None = None) -> dict[str, Grant]:
        g, c = s.grants, s.collections
        query = select(g.c.collection_id, g.c.org_id, g.c.can_read, g.c.can_write).where(
            g.c.org_id == org_id)
        if api_root is not None:
            query = query.join(c, c.c.id == g.c.collection_id).where(c.c.api_root == api_root)
        return {row[0]: Grant(*row) for row in self.conn.execute(query)}

    def grants_on(self, collection_id: str) -> list[Grant]:
        g = s.grants
        rows = self.conn.execute(select(g.c.collection_id, g.c.org_id, g.c.can_read,
                                        g.c.can_write).where(g.c.collection_id == collection_id))
        return [Grant(*row) for row in rows]
