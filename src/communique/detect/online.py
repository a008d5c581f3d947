"""Hunting over HTTP: a batch of events in, the matches out, indicators compiled once.

Compiling 100,000 indicators takes about a second, so the compiled set is kept per
reader (what one user may see) and collection choice, and rebuilt when it is older
than ``FRESH_US``: new, revoked or decayed indicators count within that time.
Warning lists are never loaded in a request: indicators not checked yet count as
not flagged until the node's background check (``background``) has flagged them.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Sequence

from communique import timestamps
from communique.access import Principal
from communique.detect import hunt
from communique.detect.events import Event
from communique.errors import BadRequest
from communique.store.base import Collection, Store

FRESH_US = 30_000_000
KEEP = 8  # compiled sets kept (readers × collection choices)
MAX_EVENTS = 100_000
MAX_VALUES = 64  # per path and event
MAX_TEXT = 4096
MAX_MATCHES = 10_000


class Hunter:
    """Compiled indicators per reader, reused across requests while fresh."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._kept: OrderedDict[tuple, tuple[int, hunt.Compiled, dict[str, str]]] = OrderedDict()

    def hunt(self, principal: Principal, events: Sequence[Event], *,
             collections: Sequence[Collection]) -> tuple[hunt.Hunt, dict[str, str]]:
        """Match events against what ``principal`` may read; return the hunt and those left out."""
        compiled, left_out = self._compiled(principal, collections)
        # each request is a stream of its own: sequences never join events of two requests
        return hunt.run_compiled(compiled.fresh(), events, keep_matches=MAX_MATCHES), left_out

    def _compiled(self, principal: Principal,
                  collections: Sequence[Collection]) -> tuple[hunt.Compiled, dict[str, str]]:
        key = (principal.email, principal.org_id, tuple(sorted(c.id for c in collections)))
        now = timestamps.now_us()
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None and now - kept[0] < FRESH_US:
                self._kept.move_to_end(key)
                return kept[1], kept[2]
        left_out: dict[str, str] = {}
        compiled = hunt.prepare(hunt.active_indicators(self.store, principal, collections,
                                                       now_us=now, left_out=left_out))
        with self._lock:
            self._kept[key] = (now, compiled, left_out)
            self._kept.move_to_end(key)
            while len(self._kept) > KEEP:
                self._kept.popitem(last=False)
        return compiled, left_out


def events_from_json(untrusted: Any) -> list[Event]:
    """Return the events of a request body ``{"events": [{"time", "values", "source"}]}``."""
    if not isinstance(untrusted, dict) or not isinstance(untrusted.get("events"), list):
        raise BadRequest('send {"events": [...]}: each event {"time": RFC 3339 (optional), '
                         '"values": {STIX path: [values]}, "source": text (optional)}')
    items = untrusted["events"]
    if len(items) > MAX_EVENTS:
        raise BadRequest(f"at most {MAX_EVENTS:,} events per request")
    return [_event(n, item) for n, item in enumerate(items)]


def _event(n: int, untrusted: Any) -> Event:
    if not isinstance(untrusted, dict) or not isinstance(untrusted.get("values"), dict):
        raise BadRequest(f"event {n}: an object with 'values' is needed")
    time_us = None
    if untrusted.get("time") is not None:
        try:
            time_us = timestamps.parse(untrusted["time"])
        except (ValueError, TypeError):
            raise BadRequest(f"event {n}: 'time' is not an RFC 3339 timestamp") from None
    values: dict[str, tuple] = {}
    for path, seen in untrusted["values"].items():
        if not isinstance(path, str) or ":" not in path or len(path) > 200:
            raise BadRequest(f"event {n}: {str(path)[:60]!r} is not a STIX object path")
        seen = seen if isinstance(seen, list) else [seen]
        if len(seen) > MAX_VALUES or not all(
                (isinstance(v, str) and len(v) <= MAX_TEXT)
                or (isinstance(v, int) and not isinstance(v, bool)) for v in seen):
            raise BadRequest(f"event {n}, {path}: up to {MAX_VALUES} strings (at most "
                             f"{MAX_TEXT} characters) or integers")
        values[path] = tuple(seen)
    source = untrusted.get("source", "")
    return Event(time_us, values, source[:200] if isinstance(source, str) else "")
