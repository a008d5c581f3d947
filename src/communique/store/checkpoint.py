"""Copy SQLite's write-ahead log back into the database file on a thread of its own.

SQLite's automatic checkpoint runs inside the commit that crosses its threshold,
so the writer that happens to commit then waits while every page changed since
the last checkpoint is copied and the database file is synced. Once the store is
large, those pages are scattered (each new object lands on a random leaf of the
id index) and that copy becomes the largest part of ingest. Here a background
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

    def checkpoint(self) -> tuple[int, int, int]:
        """Checkpoint now; return SQLite's (busy, frames in the log, frames copied)."""
        conn = self._engine.raw_connection()
        try:
            cursor = conn.cursor()
            row = cursor.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            cursor.close()
        finally:
            conn.close()
        return tuple(row)  # type: ignore[return-value]

    def _run(self) -> None:
        while True:
            self._due.wait()
            self._due.clear()
            try:
                self.checkpoint()
            except Exception as exc:  # the backstop checkpoint still runs; say why this one did not
                log.warning("WAL checkpoint failed: %s", exc)
            if self._stopping.is_set():
                return
            self._stopping.wait(self._interval)
