"""The SQL store's side of detection: facts of indicators and sightings, values, overrides.

Mixed into ``sql.SqlTx``. Every read takes ``views``, the reader's ``Visibility`` per
collection it may read (``access`` decides them), and joins ``objects`` to apply
them: these tables hold facts, never permissions. Only last versions count.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, Sequence

from sqlalchemy import (
    ColumnElement, Connection, String, and_, case, cast, delete, false, func, literal, or_, select,
    true, update,
)

from communique.store import bulk
from communique.store import schema as s
from communique.store.base import IndicatorRow, Visibility

_CHUNK = 500
_FACT_COLUMNS = ("object_pk", "valid_from", "valid_until", "revoked", "confidence", "kinds",
                 "created_by", "warninglists")
_SIGHTING_COLUMNS = ("object_pk", "sighting_of_ref", "count", "first_seen", "last_seen")


class DetectionSql:
    """Facts filed beside indicator and sighting versions, and the questions asked of them."""

    conn: Connection
    _visible: Callable[[Visibility], ColumnElement[bool]]

    # -- filing --------------------------------------------------------------------
    def version_pks(self, collection_id: str,
                    keys: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """Return the row key of each stored (stix_id, version) of a collection."""
        o = s.objects
        wanted = set(keys)
        ids = sorted({stix_id for stix_id, _ in wanted})
        found: dict[tuple[str, int], int] = {}
        for start in range(0, len(ids), _CHUNK):
            rows = self.conn.execute(select(o.c.stix_id, o.c.version, o.c.pk).where(
                o.c.collection_id == collection_id, o.c.stix_id.in_(ids[start:start + _CHUNK])))
            found.update({(stix_id, version): pk for stix_id, version, pk in rows
                          if (stix_id, version) in wanted})
        return found

    def file_facts(self, indicators: Sequence[tuple[int, Any]],
                   sightings: Sequence[tuple[int, Any]]) -> None:
        """File (row key, catalogue.IndicatorFacts) and (row key, catalogue.SightingFacts)."""
        bulk.insert(self.conn, "indicator_facts", _FACT_COLUMNS, [
            (pk, f.valid_from, f.valid_until, f.revoked, f.confidence, f.kinds, f.created_by,
             None if f.values else "") for pk, f in indicators])
        bulk.insert(self.conn, "indicator_values", ("object_pk", "digest", "path", "value"), [
            (pk, key, path, value) for pk, f in indicators for path, value, key in f.values])
        bulk.insert(self.conn, "sighting_facts", _SIGHTING_COLUMNS, [
            (pk, f.sighting_of_ref, f.count, f.first_seen, f.last_seen) for pk, f in sightings])

    def unfiled(self, *, after_pk: int, limit: int) -> list[tuple[int, str, int, bytes]]:
        """Return (row key, type, version, body) of indicator and sighting versions not filed."""
        o = s.objects
        rows = self.conn.execute(select(o.c.pk, o.c.type, o.c.version, o.c.body).where(
            o.c.pk > after_pk, o.c.type.in_(("indicator", "sighting")),
            ~select(s.indicator_facts.c.object_pk).where(
                s.indicator_facts.c.object_pk == o.c.pk).exists(),
            ~select(s.sighting_facts.c.object_pk).where(
                s.sighting_facts.c.object_pk == o.c.pk).exists(),
        ).order_by(o.c.pk).limit(limit))
        return [(pk, kind, version, bytes(body)) for pk, kind, version, body in rows]

    # -- warning lists -------------------------------------------------------------
    def unchecked_indicators(self, *, limit: int) -> dict[int, list[tuple[str, str]]]:
        """Return up to ``limit`` indicator versions not checked against warning lists yet."""
        f = s.indicator_facts
        pks = [pk for (pk,) in self.conn.execute(select(f.c.object_pk).where(
            f.c.warninglists.is_(None)).order_by(f.c.object_pk).limit(limit))]
        return self.values_of(pks)

    def count_unchecked(self) -> int:
        """Return how many indicator versions wait to be checked against warning lists."""
        f = s.indicator_facts
        return int(self.conn.execute(select(func.count()).select_from(f).where(
            f.c.warninglists.is_(None))).scalar_one())

    def set_warninglists(self, found: Mapping[int, str]) -> None:
        """Record, per indicator version, the lists that hold all its values ('' none)."""
        f = s.indicator_facts
        for pk, names in found.items():
            self.conn.execute(update(f).where(f.c.object_pk == pk).values(warninglists=names))

    def set_override(self, collection_id: str, stix_id: str, *, actor: str, reason: str,
                     now: int) -> None:
        """Let an indicator through its warning lists (replacing an earlier decision)."""
        self.clear_override(collection_id, stix_id)
        self.conn.execute(s.indicator_overrides.insert().values(
            collection_id=collection_id, stix_id=stix_id, actor=actor, reason=reason, at=now))

    def clear_override(self, collection_id: str, stix_id: str) -> bool:
        """Hold an indicator to its warning lists again; False if it was not let through."""
        w = s.indicator_overrides
        return bool(self.conn.execute(delete(w).where(
            w.c.collection_id == collection_id, w.c.stix_id == stix_id)).rowcount)

    # -- reading -------------------------------------------------------------------
    def indicator_rows(self, views: Mapping[str, Visibility], *, after_pk: int = 0,
                       limit: int = 1000, stix_ids: Sequence[str] = (),
                       digests: Sequence[bytes] = (), pks: Sequence[int] = ()) -> list[IndicatorRow]:
        """Return last versions of indicators ``views`` admit, in row-key order.

        ``stix_ids`` or ``digests`` narrow them to some indicators, or to those
        looking for some values.
        """
        if not views:
            return []
        o, f, w = s.objects, s.indicator_facts, s.indicator_overrides
        sql = select(o.c.pk, o.c.collection_id, o.c.stix_id, o.c.version, o.c.tlp,
                     o.c.producer_org, f.c.valid_from, f.c.valid_until, f.c.revoked,
                     f.c.confidence, f.c.kinds, f.c.created_by, f.c.warninglists,
                     w.c.stix_id.is_not(None)).select_from(
            o.join(f, f.c.object_pk == o.c.pk).outerjoin(
                w, and_(w.c.collection_id == o.c.collection_id, w.c.stix_id == o.c.stix_id))
        ).where(o.c.is_last == true(), o.c.pk > after_pk, self._readable(views))
        if stix_ids:
            sql = sql.where(o.c.stix_id.in_(stix_ids))
        if pks:
            sql = sql.where(o.c.pk.in_(pks))
        if digests:  # through the digest index: the few versions holding these values
            v = s.indicator_values
            sql = sql.where(o.c.pk.in_(select(v.c.object_pk).where(v.c.digest.in_(digests))))
        rows = self.conn.execute(sql.order_by(o.c.pk).limit(limit))
        return [IndicatorRow(*row[:13], overridden=bool(row[13])) for row in rows]

    def indicator_page(self, views: Mapping[str, Visibility], *, after_pk: int,
                       limit: int) -> tuple[list[IndicatorRow], int | None]:
        """Return the next indicators ``views`` admit after ``after_pk``, and where to go on.

        Walks the facts by row key, ``limit`` at a time, and keeps what the reader may
        see: no sort of everything readable per page. The position is None at the end.
        """
        f = s.indicator_facts
        keys = self.conn.execute(select(f.c.object_pk).where(f.c.object_pk > after_pk).order_by(
            f.c.object_pk).limit(limit)).scalars().all()
        if not keys:
            return [], None
        rows = self.indicator_rows(views, pks=keys, limit=limit)
        return rows, keys[-1] if len(keys) == limit else None

    def values_of(self, pks: Iterable[int]) -> dict[int, list[tuple[str, str]]]:
        """Return the (path, value) pairs filed for each indicator version."""
        v = s.indicator_values
        found: dict[int, list[tuple[str, str]]] = {}
        keys = sorted(set(pks))
        for start in range(0, len(keys), _CHUNK):
            rows = self.conn.execute(select(v.c.object_pk, v.c.path, v.c.value).where(
                v.c.object_pk.in_(keys[start:start + _CHUNK])).order_by(v.c.object_pk, v.c.path))
            for pk, path, value in rows:
                found.setdefault(pk, []).append((path, value))
        return {pk: found.get(pk, []) for pk in keys}

    def bodies_of(self, pks: Iterable[int]) -> dict[int, bytes]:
        """Return the stored JSON of some versions, by row key."""
        o = s.objects
        found: dict[int, bytes] = {}
        keys = sorted(set(pks))
        for start in range(0, len(keys), _CHUNK):
            rows = self.conn.execute(select(o.c.pk, o.c.body).where(
                o.c.pk.in_(keys[start:start + _CHUNK])))
            found.update({pk: bytes(body) for pk, body in rows})
        return found

    def origins_of(self, collection_id: str, stix_ids: Sequence[str]) -> dict[str, int | None]:
        """Return the peer each object's last version in a collection was pulled from."""
        o = s.objects
        found: dict[str, int | None] = {}
        for start in range(0, len(stix_ids), _CHUNK):
            rows = self.conn.execute(select(o.c.stix_id, o.c.origin_peer).where(
                o.c.collection_id == collection_id, o.c.is_last == true(),
                o.c.stix_id.in_(stix_ids[start:start + _CHUNK])))
            found.update(dict(rows.all()))
        return found

    def sighting_totals(self, views: Mapping[str, Visibility],
                        indicator_ids: Sequence[str]) -> dict[str, tuple[int, int | None, int]]:
        """Return (sightings counted, last seen, sighting objects) per indicator id."""
        if not views or not indicator_ids:
            return {}
        o, g = s.objects, s.sighting_facts
        totals: dict[str, tuple[int, int | None, int]] = {}
        ids = sorted(set(indicator_ids))
        for start in range(0, len(ids), _CHUNK):
            # the sightings of these indicators through their index first (most have
            # none), then only those the reader may see
            found = self.conn.execute(select(g.c.object_pk).where(
                g.c.sighting_of_ref.in_(ids[start:start + _CHUNK]))).scalars().all()
            for part in range(0, len(found), _CHUNK):
                # a last_seen later than the sighting's arrival here counts as its arrival
                seen = case((g.c.last_seen > o.c.date_added, o.c.date_added), else_=g.c.last_seen)
                rows = self.conn.execute(select(
                    g.c.sighting_of_ref, func.sum(g.c.count), func.max(seen),
                    func.count()).select_from(o.join(g, g.c.object_pk == o.c.pk)).where(
                    o.c.pk.in_(found[part:part + _CHUNK]), o.c.is_last == true(),
                    self._readable(views)).group_by(g.c.sighting_of_ref))
                for ref, count, last, n in rows:
                    before = totals.get(ref, (0, None, 0))
                    latest = max((x for x in (before[1], last) if x is not None), default=None)
                    totals[ref] = (before[0] + int(count or 0), latest, before[2] + int(n))
        return totals

    def shared_values(self, views: Mapping[str, Visibility], *, min_reporters: int,
                      limit: int) -> list[tuple[bytes, str, str, int, int]]:
        """Return (digest, path, value, reporters, indicators) of values several reported.

        A reporter is the indicator's ``created_by_ref``, else the organisation that
        added it here. One grouped pass over the values: no table of pairs.
        """
        if not views:
            return []
        o, f, v = s.objects, s.indicator_facts, s.indicator_values
        reporter = func.coalesce(f.c.created_by,
                                 literal("org:") + cast(o.c.producer_org, String))
        reporters = func.count(reporter.distinct())
        rows = self.conn.execute(select(
            v.c.digest, func.min(v.c.path), func.min(v.c.value), reporters,
            func.count(o.c.stix_id.distinct())).select_from(
            v.join(o, o.c.pk == v.c.object_pk).join(f, f.c.object_pk == o.c.pk)).where(
            o.c.is_last == true(), self._readable(views)).group_by(v.c.digest).having(
            reporters >= min_reporters).order_by(reporters.desc(), func.min(v.c.value)).limit(limit))
        return [(bytes(d), path, value, int(r), int(n)) for d, path, value, r, n in rows]

    def _readable(self, views: Mapping[str, Visibility]) -> ColumnElement[bool]:
        """Rows in one of the collections of ``views``, each as that collection's view admits."""
        o = s.objects
        if not views:
            return false()
        return or_(*[and_(o.c.collection_id == collection_id, self._visible(view))
                     for collection_id, view in sorted(views.items())])
