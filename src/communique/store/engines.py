"""The two backends: SQLite (embedded default) and PostgreSQL (for scale).

They share every query (``sql.SqlTx``); they differ in how connections are made
and how a write transaction starts.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from communique.errors import BadRequest
from communique.store.checkpoint import Checkpointer
from communique.store.sql import SqlTx

_WRITE = "communique_write"


class SqlStore:
    """A store over one SQLAlchemy engine."""

    def __init__(self, url: str, engine: Engine) -> None:
        self.url = url
        self.engine = engine

    @contextmanager
    def write(self) -> Iterator[SqlTx]:
        """Open a write transaction; commit when the block ends without error."""
        with self.engine.connect() as conn:
            conn.execution_options(**{_WRITE: True})
            with conn.begin():
                yield SqlTx(conn)

    @contextmanager
    def read(self) -> Iterator[SqlTx]:
        """Open a read transaction that sees one consistent snapshot."""
        with self.engine.connect() as conn:
            with conn.begin():
                yield SqlTx(conn)

    def migrate(self) -> None:
        """Create or upgrade the schema to the newest Alembic revision."""
        from communique.store.migrate import upgrade

        upgrade(self.engine)

    def close(self) -> None:
        self.engine.dispose()


class SqliteStore(SqlStore):
    """SQLite in WAL mode: many readers, one writer, a file on disk."""

    def __init__(self, url: str, engine: Engine) -> None:
        super().__init__(url, engine)
        self._writer = threading.Lock()  # one writer per process; BEGIN IMMEDIATE across processes
        self._checkpointer: Checkpointer | None = None  # started by the first write

    @contextmanager
    def write(self) -> Iterator[SqlTx]:
        with self._writer:
            with super().write() as tx:
                yield tx
            if self._checkpointer is None:
                self._checkpointer = Checkpointer(self.engine)
            self._checkpointer.nudge()

    def close(self) -> None:
        with self._writer:
            if self._checkpointer is not None:
                self._checkpointer.close()
                self._checkpointer = None
        super().close()


class PostgresStore(SqlStore):
    """PostgreSQL through psycopg 3."""


def _sqlite_engine(url: str) -> Engine:
    path = make_url(url).database
    if not path or path == ":memory:":
        raise BadRequest("SQLite needs a file (sqlite:///path/to/file.db): readers and the writer share it")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, pool_size=8, max_overflow=24,
                           connect_args={"check_same_thread": False, "timeout": 60})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_conn.cursor()
        # A small cache per connection (8 MiB): the operating system caches the file, so
        # the server's own memory stays flat however large the store grows.
        # The WAL is copied back into the database by a background thread after each
        # write (see checkpoint.py). SQLite's own checkpoint, which would make a committing
        # writer wait for that copy, is only a backstop: at 50,000 pages (about 200 MB),
        # where it finds little left to copy. journal_size_limit truncates the WAL file
        # back to 64 MiB once it has been reset, so a burst does not keep its disk space.
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON",
                       "busy_timeout=60000", "cache_size=-8192", "temp_store=MEMORY",
                       "wal_autocheckpoint=50000",
                       "journal_size_limit=67108864"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:  # type: ignore[no-untyped-def]
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "BEGIN")

    return engine


def normalise_url(url: str) -> str:
    """Return the SQLAlchemy URL for a user-given database URL."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def open_store(url: str) -> SqlStore:
    """Connect to the database at ``url`` (no schema work: ``migrate`` does that)."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        return SqliteStore(url, _sqlite_engine(url))
    if url.startswith("postgresql+psycopg"):
        engine = create_engine(url, pool_size=8, max_overflow=24, pool_pre_ping=True)
        return PostgresStore(url, engine)
    raise BadRequest(f"unsupported database URL scheme: {url.split(':', 1)[0]!r} (use sqlite or postgresql)")
