"""What a sensor export holds: the indicators a member may take out that run now.

An export leaves the node, so it never holds TLP:RED (``access.export_view``), and
it holds only what would be hunted: valid, not revoked, not decayed below its
model's threshold (or below ``min_score``), not flagged by warning lists unless
an analyst let it through. Its TLP is the most restrictive level among what it
holds, stated in its header by the format (``exports``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO, Iterator, Sequence

import orjson

from communique.access import Principal
from communique.detect import exports, normalise, standing
from communique.detect.standing import Standing
from communique.stix.markings import Tlp
from communique.store.base import Collection, Store, Visibility


@dataclass(frozen=True, slots=True)
class Selection:
    """Which indicators an export holds."""

    collections: Sequence[Collection]
    now_us: int
    min_score: float | None = None
    types: Sequence[str] = ()  # STIX object types of the values kept (empty: all)
    include_warninglisted: bool = False


def export(store: Store, principal: Principal, selection: Selection, out: BinaryIO, *,
           format: str, source: str) -> tuple[int, Tlp]:
    """Write the export; return how many entries it holds and its TLP level."""
    seen = standing.views(store, principal, selection.collections, leaving=True)
    level = max((s.level for s in _chosen(store, seen, selection)), default=Tlp.CLEAR)
    written = exports.write(format, _items(store, seen, selection, principal), out, level=level,
                            generated_us=selection.now_us, source=source)
    return written, level


def _chosen(store: Store, seen: dict[str, Visibility], selection: Selection) -> Iterator[Standing]:
    per_type = standing.models(store)
    for found in standing.standings(store, seen, now_us=selection.now_us, per_type=per_type,
                                    include_warninglisted=selection.include_warninglisted):
        if found.excluded or (selection.min_score is not None
                              and found.score < selection.min_score):
            continue
        if selection.types and not _values(found, selection.types) and found.values:
            continue
        yield found


def _items(store: Store, seen: dict[str, Visibility], selection: Selection,
           principal: Principal) -> Iterator[exports.Item]:
    with store.read() as tx:
        names = {org.id: org.name for org in tx.list_organisations()}
    page: list[Standing] = []
    for found in _chosen(store, seen, selection):
        page.append(found)
        if len(page) >= standing.PAGE:
            yield from _page(store, page, selection, names)
            page = []
    yield from _page(store, page, selection, names)


def _page(store: Store, page: list[Standing], selection: Selection,
          names: dict[int, str]) -> Iterator[exports.Item]:
    if not page:
        return
    with store.read() as tx:
        bodies = tx.bodies_of(found.row.pk for found in page)
    for found in page:
        body = bodies.get(found.row.pk)
        if body is None:  # deleted since it was chosen
            continue
        name = orjson.loads(body).get("name")
        yield exports.Item(
            id=found.row.stix_id, body=body, level=found.level,
            values=_values(found, selection.types) if selection.types else found.values,
            score=found.score, name=name if isinstance(name, str) else "",
            producer=names.get(found.row.producer_org or 0, ""))


def _values(found: Standing, types: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """Keep the values of an indicator that are of one of ``types`` (an address is an address)."""
    kept = []
    for path, value in found.values:
        kind = path.split(":", 1)[0]
        if path in normalise.IP_PATHS:
            kind = "ipv6-addr" if ":" in value else "ipv4-addr"
        if kind in types:
            kept.append((path, value))
    return tuple(kept)
