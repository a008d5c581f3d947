"""Where each indicator stands now: its decayed score, its warning lists, whether it runs.

Hunts, exports and correlation ask the same thing of every indicator a member may
read: is it valid now, has it decayed below its model's threshold, is every value
it looks for on a warning list (and has an analyst let it through anyway)? This
module answers once, from the facts the store files beside each version
(``catalogue``) and the sightings the member may see. An indicator that stops
running is kept, never deleted: it is only left out, with the reason.

The decay models are the node's: MISP's polynomial model with per-type lifetimes
(``decay.PER_TYPE``), which an administrator may change (``communique decay set``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Mapping, Sequence

import orjson

from communique import access
from communique.access import Principal
from communique.detect import decay
from communique.stix.markings import Tlp
from communique.store.base import Collection, IndicatorRow, Store, Visibility

MODELS_SETTING = "detection.decay_models"
PAGE = 1000


@dataclass(frozen=True, slots=True)
class Standing:
    """One indicator's standing for one reader."""

    row: IndicatorRow
    level: Tlp
    score: float
    model: decay.Model
    sightings: int
    last_seen: int | None
    values: tuple[tuple[str, str], ...]
    excluded: str | None  # why it does not run now (None: it runs)

    @property
    def warninglists(self) -> list[str]:
        """Return the warning lists that hold every value it looks for."""
        return self.row.warninglists.split("\n") if self.row.warninglists else []


def models(store: Store) -> dict[str, decay.Model]:
    """Return the node's decay model per STIX object type (defaults, then its changes)."""
    with store.read() as tx:
        raw = tx.get_setting(MODELS_SETTING)
    chosen = dict(decay.PER_TYPE)
    for kind, fields in (orjson.loads(raw) if raw else {}).items():
        chosen[kind] = decay.Model(**fields)
    return chosen


def set_model(store: Store, kind: str, model: decay.Model) -> None:
    """Give one STIX object type its own decay model."""
    with store.write() as tx:
        raw = tx.get_setting(MODELS_SETTING)
        changed = orjson.loads(raw) if raw else {}
        changed[kind] = {"lifetime_days": model.lifetime_days, "decay_speed": model.decay_speed,
                         "threshold": model.threshold}
        tx.put_setting(MODELS_SETTING, orjson.dumps(changed, option=orjson.OPT_SORT_KEYS).decode())


def views(store: Store, principal: Principal, collections: Sequence[Collection], *,
          leaving: bool) -> dict[str, Visibility]:
    """Return what ``principal`` may see, per collection of ``collections`` it may read."""
    with store.read() as tx:
        grants = tx.grants_of(principal.org_id)
    return access.reading_views(principal, collections, grants, leaving=leaving)


def standings(store: Store, seen: Mapping[str, Visibility], *, now_us: int,
              per_type: Mapping[str, decay.Model], stix_ids: Sequence[str] = (),
              digests: Sequence[bytes] = (), sightings_seen: Mapping[str, Visibility] | None = None,
              include_warninglisted: bool = False) -> Iterator[Standing]:
    """Yield the standing of every indicator ``seen`` admits (or of some ids, or values).

    Sightings count where ``sightings_seen`` (default ``seen``) lets the reader see them.
    """
    after: int | None = 0
    while after is not None:
        with store.read() as tx:
            if stix_ids or digests:  # a few, through their indexes
                rows = tx.indicator_rows(seen, after_pk=after, limit=PAGE, stix_ids=stix_ids,
                                         digests=digests)
                after = rows[-1].pk if len(rows) == PAGE else None
            else:
                rows, after = tx.indicator_page(seen, after_pk=after, limit=PAGE)
            values = tx.values_of(row.pk for row in rows)
            totals = tx.sighting_totals(sightings_seen if sightings_seen is not None else seen,
                                        [row.stix_id for row in rows])
        for row in rows:
            count, last_seen, _ = totals.get(row.stix_id, (0, None, 0))
            yield judge(row, seen[row.collection_id], values.get(row.pk, ()), now_us=now_us,
                        per_type=per_type, sightings=count, last_seen=last_seen,
                        include_warninglisted=include_warninglisted)


def judge(row: IndicatorRow, view: Visibility, values: Sequence[tuple[str, str]], *, now_us: int,
          per_type: Mapping[str, decay.Model], sightings: int, last_seen: int | None,
          include_warninglisted: bool = False) -> Standing:
    """Return one indicator's standing at ``now_us``."""
    model = decay.model_for([k for k in row.kinds.split(",") if k], per_type=per_type)
    base = decay.base_score(row.confidence if row.confidence is None or
                            0 <= row.confidence <= 100 else None)
    # a version stamped in the future refreshes no later than now (sightings are held to
    # when they were added: ``sighting_totals``), so a date cannot stop decay
    refreshed = max(row.valid_from, min(row.version, now_us), last_seen or 0)
    if row.revoked:
        score, excluded = 0.0, "revoked"
    elif now_us < row.valid_from:
        score, excluded = 0.0, "not valid yet"
    elif row.valid_until is not None and now_us >= row.valid_until:
        score, excluded = 0.0, "past its valid_until"
    else:
        score = decay.score(base_score=base, age_seconds=max(0, now_us - refreshed) / 1e6,
                            model=model)
        excluded = (f"decayed: score {score:.0f} below {model.threshold:g}"
                    if decay.expired(score, model) else None)
    if excluded is None and row.warninglists and not row.overridden and not include_warninglisted:
        excluded = "on warning lists: " + ", ".join(row.warninglists.split("\n"))
    level = Tlp(view.default if row.tlp is None else row.tlp)
    return Standing(row, level, score, model, sightings, last_seen, tuple(values), excluded)
