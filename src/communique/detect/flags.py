"""Warning-list flags: which indicators look only for values known to be harmless.

An indicator is flagged when every value it looks for is on a MISP warning list (a
public resolver, a top site, a private range…): hunting or blocking it would only
raise false alarms. The flag names the lists. Flags are worked out for each new
version soon after it is stored (``check_pending``: the lists take seconds and
hundreds of megabytes to load, so not on the ingest path), and an analyst may let
one indicator through (``communique indicator allow``).
"""

from __future__ import annotations

from typing import Callable, Sequence

from communique.detect import catalogue, normalise
from communique.detect.warninglists import WarningLists
from communique.store.base import Store

_BATCH = 5000


def kind(path: str, value: object) -> str | None:
    """Return the warning-list kind of a value seen at ``path`` (None: lists do not apply)."""
    if path in normalise.IP_PATHS:
        return "ipv6" if isinstance(value, str) and ":" in value else "ipv4"
    if path == "domain-name:value":
        return "domain"
    if path == "url:value":
        return "url"
    if ":hashes." in path:
        return "hash"
    if path in catalogue.EMAIL_PATHS:
        return "email"
    return None


def listed(values: Sequence[tuple[str, object]], lists: WarningLists) -> list[str] | None:
    """Return the lists that hold every one of ``values``, or None if one is on none."""
    if not values:
        return None
    names: set[str] = set()
    for path, value in values:
        found = kind(path, value)
        hits = lists.hits(str(value), kind=found) if found and isinstance(value, str) else []
        if not hits:
            return None
        names.update(hit.name for hit in hits)
    return sorted(names)


def pending(store: Store) -> bool:
    """Tell whether some stored indicator has not been checked against the lists yet."""
    with store.read() as tx:
        return bool(tx.unchecked_indicators(limit=1))


def check_pending(store: Store, load: Callable[[], WarningLists] = WarningLists.load) -> int:
    """Flag the indicators not checked yet; load the lists only if there are some."""
    checked = 0
    while True:
        with store.read() as tx:
            batch = tx.unchecked_indicators(limit=_BATCH)
        if not batch:
            return checked
        lists = load()
        found = {pk: "\n".join(listed(values, lists) or ()) for pk, values in batch.items()}
        with store.write() as tx:
            tx.set_warninglists(found)
        checked += len(found)
