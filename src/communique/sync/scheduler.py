"""The scheduler: run due peers every few seconds, in one process at a time.

Several processes may want to run it (`communique serve` and `communique sync
--forever`, or a second server): a lease in the database, renewed at each tick,
lets one of them do it; the others wait until it lapses.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid

from communique import timestamps
from communique.store.base import Store
from communique.detect import background
from communique.sync.engine import Options, run_due

LEASE = "sync.lease"
_LEASE_US = 300 * 1_000_000  # renewed before each peer; lapses if its holder dies
log = logging.getLogger("communique.sync")


class LeaseLost(Exception):
    """Another process took the scheduler's lease (this one was too slow to renew it)."""


def claim(store: Store, owner: str, *, now: int) -> bool:
    """Take or renew the scheduler's lease; return whether ``owner`` holds it."""
    with store.write() as tx:
        value = tx.get_setting(LEASE)
        if value:
            holder, _, until = value.rpartition("@")
            if holder != owner and until.isdigit() and int(until) > now:
                return False
        return tx.swap_setting(LEASE, value, f"{owner}@{now + _LEASE_US}")


def _renew(store: Store, owner: str) -> None:
    if not claim(store, owner, now=timestamps.now_us()):
        raise LeaseLost()


def release(store: Store, owner: str) -> None:
    """Give the lease up (at shutdown), so another process need not wait for it to lapse."""
    with store.write() as tx:
        value = tx.get_setting(LEASE) or ""
        if value.rpartition("@")[0] == owner:
            tx.put_setting(LEASE, "")


def forever(store: Store, stop: threading.Event, options: Options = Options(),
            tick_seconds: float = 2.0) -> None:
    """Run due peers until ``stop`` is set; failures are recorded per link and logged."""
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    flagger = background.Flagger(store)
    try:
        while not stop.is_set():
            try:
                if claim(store, owner, now=timestamps.now_us()):
                    for run in run_due(store, options, renew=lambda: _renew(store, owner)):
                        if run.error:
                            log.warning("sync %s %s -> %s failed: %s", run.link.direction,
                                        run.link.remote_collection, run.link.local_collection,
                                        run.error)
                    # new indicators, pulled or posted, get their warning-list flags
                    flagger.tick(timestamps.now_us())
            except LeaseLost:
                log.warning("another process took over the sync scheduler")
            except Exception:  # the database may be briefly unavailable; try again next tick
                log.exception("the sync scheduler's tick failed")
            stop.wait(tick_seconds)
    finally:
        flagger.stop()
        try:
            release(store, owner)
        except Exception:
            log.exception("could not release the sync lease")


def start(store: Store, options: Options = Options()) -> tuple[threading.Thread, threading.Event]:
    """Run the scheduler in a daemon thread; set the returned event to stop it."""
    stop = threading.Event()
    thread = threading.Thread(target=forever, args=(store, stop, options), daemon=True,
                              name="communique-sync")
    thread.start()
    return thread, stop
