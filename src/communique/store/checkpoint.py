"""Copy SQLite's write-ahead log back into the database file on a thread of its own.

SQLite's automatic checkpoint runs inside the commit that crosses its threshold,
so the writer that happens to commit then waits while every page changed since
the last checkpoint is copied and the database file is synced. Once the store is
large, those pages are scattered (each new object lands on a random leaf of the
id index) and that copy is about a third of the write transaction's time (at a
million objects: 21 µs per object of 63, see bench/README.md). Here a background
thread runs a PASSIVE checkpoint shortly after writes commit: it never blocks a
reader or a writer, and the copy overlaps with the next request's parsing and
validation instead of adding to it. SQLite's own automatic checkpoint stays on
as a backstop with a higher threshold, and only has to copy what this thread has
not reached yet.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import Engine

log = logging.getLogger(__name__)


class Checkpointer:
    """Run ``PRAGMA wal_checkpoint(PASSIVE)`` after commits, at most once per ``interval`` s."""

    def __init__(self, engine: Engine, *, interval: float = 0.25) -> None:
        self._engine = engine
        self._interval = interval
        self._due = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="communique-wal-checkpoint",
                                        daemon=True)
        self._thread.start()

    def nudge(self) -> None:
        """Say that a write transaction has committed."""
        self._due.set()

    def close(self) -> None:
        """Stop the thread after one last checkpoint of what is pending."""
        self._stopping.set()
        self._due.set()
        self._thread.join()

    def _run(self) -> None:
        # A connection of its own, taken out of the pool: requests never borrow it,
        # and it does not add one to the pool (each pooled connection grows its own
        # page cache; a checkpoint copies pages without going through that cache).
        conn = None
        try:
            while True:
                self._due.wait()
                self._due.clear()
                try:
                    if conn is None:
                        conn = self._engine.raw_connection()
                        conn.detach()
                    conn.cursor().execute("PRAGMA wal_checkpoint(PASSIVE)").close()
                except Exception as exc:  # the backstop still runs; say why this one did not
                    log.warning("WAL checkpoint failed: %s", exc)
                if self._stopping.is_set():
                    return
                self._stopping.wait(self._interval)
        finally:
            if conn is not None:
                conn.close()
