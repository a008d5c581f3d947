"""Warning-list flags in the background of a serving node, in a process of its own.

Loading MISP's lists takes seconds of CPU and hundreds of megabytes; done in the
server's own process it would hold the interpreter lock while requests wait. So
the scheduler starts `communique warninglists` as a separate process, when new
indicators wait and ingest has paused (no new one since the last tick), or after
``PATIENCE_US`` at the latest. One such process runs at a time; its memory goes
back when it ends. The database URL goes through the environment, not the
command line, so that a password in it never shows in a process list.
"""

from __future__ import annotations

import os
import subprocess
import sys

from communique.store.base import Store

PATIENCE_US = 60_000_000


class Flagger:
    """Start `communique warninglists` when indicators wait to be checked."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.process: subprocess.Popen | None = None
        self._waiting_since: int | None = None
        self._last_count: int | None = None

    def tick(self, now_us: int) -> bool:
        """Start a check if one is due; return whether one was started."""
        if self.process is not None:
            if self.process.poll() is None:
                return False
            self.process = None
        with self.store.read() as tx:
            waiting = tx.count_unchecked()
        if not waiting:
            self._waiting_since = self._last_count = None
            return False
        if self._waiting_since is None:
            self._waiting_since = now_us
        quiet = waiting == self._last_count
        self._last_count = waiting
        if not quiet and now_us - self._waiting_since < PATIENCE_US:
            return False
        environ = {**os.environ, "COMMUNIQUE_DATABASE": self.store.url}  # type: ignore[attr-defined]
        self.process = subprocess.Popen([sys.executable, "-m", "communique", "warninglists"],
                                        env=environ, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        self._waiting_since = self._last_count = None
        return True

    def stop(self, timeout: float = 30) -> None:
        """Wait for a running check to end (it is safe to stop: flags are per batch)."""
        if self.process is not None and self.process.poll() is None:
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
