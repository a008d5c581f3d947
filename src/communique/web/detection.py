"""Detection over HTTP: hunt a batch of events, correlate a value, export for sensors.

Every route needs an API token (``Authorization: Bearer``); each answers only with
what the token's user may read, exactly as the command line does (``communique
hunt``, ``correlate``, ``export --format``). Errors are JSON error messages with
their status, like TAXII's.
"""

from __future__ import annotations

import gzip
import io
import itertools
import tempfile
from pathlib import Path
from typing import AsyncIterator, BinaryIO

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from communique import audit, timestamps
from communique.access import Principal
from communique.detect import correlation, exports, logs, online, sensors, standing
from communique.detect.events import ReadReport
from communique.errors import BadRequest, NotFound, PayloadTooLarge, Unauthorized
from communique.exchange import Exchange
from communique.stix.markings import Tlp
from communique.store.base import Collection
from communique.web import auth
from communique.web.taxii import client_address, read_body


_INFLATED_LIMIT = 64 * 1024 * 1024  # a gzip body may not inflate past this
_SPOOL = 8 * 1024 * 1024  # exports larger than this wait on disk, not in memory


def _json(body: object, status_code: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status_code, media_type="application/json")


async def _principal(request: Request) -> tuple[Exchange, Principal]:
    exchange: Exchange = request.app.state.exchange
    header = request.headers.get("authorization")
    if header is None:
        raise Unauthorized("detection needs an API token")
    principal = await run_in_threadpool(auth.authenticate, exchange.store, header)
    request.state.principal = principal
    return exchange, principal


def _collections(exchange: Exchange, principal: Principal, request: Request) -> list[Collection]:
    """Return the collections asked for (``collection`` repeated; default all) the caller reads."""
    with exchange.store.read() as tx:
        every = tx.list_collections()
    readable = standing.views(exchange.store, principal, every, leaving=False)
    asked = request.query_params.getlist("collection")
    chosen = [c for c in every if c.id in readable and (not asked or c.id in asked
                                                          or c.alias in asked)]
    if asked and len(chosen) < len(set(asked)):
        raise NotFound("no such collection among those you may read")
    return chosen


async def hunt(request: Request) -> Response:
    """POST events (JSON) or log lines (``?format=``): the indicators they match."""
    exchange, principal = await _principal(request)
    body = await read_body(request, exchange.settings.max_content_length)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    report = ReadReport()
    if kind == "application/json":
        try:
            untrusted = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise BadRequest("the body is not JSON") from None
        events = online.events_from_json(untrusted)
    else:
        events = await run_in_threadpool(_read_lines, body, request.query_params.get(
            "format", "auto"), report)
    hunter: online.Hunter = request.app.state.hunter
    chosen = await run_in_threadpool(_collections, exchange, principal, request)
    found, left_out = await run_in_threadpool(hunter.hunt, principal, events, collections=chosen)
    return _json({
        "events": found.events, "indicators": found.indicators, "left_out": len(left_out),
        "unsupported": len(found.unsupported), "skipped": report.skipped,
        "matches": [{"event": position, "indicator": indicator_id,
                     "source": events[position].source}
                    for position, indicator_id in found.matches],
        "more_matches": found.more_matches,
        "seen": [{"indicator": s.indicator.id, "collection": s.indicator.collection.id,
                  "tlp": s.indicator.level.label, "count": s.count,
                  "first_seen": None if s.first_us is None else timestamps.format_ms(s.first_us),
                  "last_seen": None if s.last_us is None else timestamps.format_ms(s.last_us)}
                 for s in found.seen.values()],
    })


def _read_lines(body: bytes, log_format: str, report: ReadReport) -> list:
    if log_format not in logs.FORMATS:
        raise BadRequest(f"format must be one of {', '.join(logs.FORMATS)}")
    if body[:2] == b"\x1f\x8b":
        limit = _INFLATED_LIMIT
        try:
            body = gzip.GzipFile(fileobj=io.BytesIO(body)).read(limit + 1)
        except (OSError, EOFError):
            raise BadRequest("the gzip body is damaged") from None
        if len(body) > limit:
            raise PayloadTooLarge(f"the gzip body inflates past {limit:,} bytes")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "events.log"
        path.write_bytes(body)
        try:  # one past the bound at most is ever held
            events = list(itertools.islice(logs.read([path], format=log_format, report=report),
                                           online.MAX_EVENTS + 1))
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
    if len(events) > online.MAX_EVENTS:
        raise BadRequest(f"at most {online.MAX_EVENTS:,} events per request")
    return events


async def correlate(request: Request) -> Response:
    """GET ``?value=`` (``&path=``): who reported it; ``?shared=true``: values several reported."""
    exchange, principal = await _principal(request)
    params = request.query_params
    if params.get("shared") in ("1", "true"):
        found = await run_in_threadpool(correlation.shared, exchange.store, principal,
                                        min_reporters=_number(params, "min_reporters", 2),
                                        limit=min(_number(params, "limit", 100), 10_000))
        return _json([{"path": s.path, "value": s.value, "reporters": s.reporters,
                       "indicators": s.indicators} for s in found])
    value = params.get("value")
    if not value or len(value) > online.MAX_TEXT:
        raise BadRequest("give ?value= (or ?shared=true)")
    reports = await run_in_threadpool(correlation.correlate, exchange.store, principal, value,
                                      now_us=timestamps.now_us(), path=params.get("path"))
    return _json({"value": value, "reporters": correlation.reporters(reports), "reports": [
        {"path": r.path, "value": r.value, "indicator": r.indicator_id,
         "collection": r.collection, "reporter": r.reporter, "organisation": r.organisation,
         "tlp": r.level.label, "valid_from": timestamps.format_ms(r.valid_from),
         "score": round(r.score, 1), "sightings": r.sightings,
         "last_seen": None if r.last_seen is None else timestamps.format_ms(r.last_seen),
         "excluded": r.excluded} for r in reports]})


async def export(request: Request) -> Response:
    """GET ``?format=``: the indicators that run now, as rules or lists for sensors (audited)."""
    exchange, principal = await _principal(request)
    params = request.query_params
    chosen_format = params.get("format", "")
    if chosen_format not in exports.FORMATS:
        raise BadRequest(f"format must be one of {', '.join(exports.FORMATS)}")
    min_score = params.get("min_score")
    try:
        score = None if min_score is None else float(min_score)
    except ValueError:
        raise BadRequest("min_score must be a number") from None
    if score is not None and not 0 <= score <= 100:
        raise BadRequest("min_score must lie in [0, 100]")
    chosen = await run_in_threadpool(_collections, exchange, principal, request)
    selection = sensors.Selection(chosen, timestamps.now_us(), min_score=score,
                                  types=tuple(t.lower() for t in params.getlist("type")))
    spool, written, level = await run_in_threadpool(_export, exchange, principal, selection,
                                                    chosen_format)
    await run_in_threadpool(_audit_export, exchange, principal, client_address(request),
                            chosen, chosen_format, written, level, score)
    chosen_kind = exports.FORMATS[chosen_format]
    return StreamingResponse(_chunks(spool), media_type=chosen_kind.media_type, headers={
        "X-TLP": level.label,
        "Content-Disposition": f'attachment; filename="indicators.{chosen_kind.extension}"'})


def _audit_export(exchange: Exchange, principal: Principal, address: str,
                  chosen: list[Collection], chosen_format: str, written: int, level: Tlp,
                  score: float | None) -> None:
    with exchange.store.write() as tx:
        tx.append_audit(audit.Actor.of(principal, address).event(
            "indicators.export", target=",".join(c.id for c in chosen), format=chosen_format,
            entries=written, tlp=level.label, min_score=score), now=timestamps.now_us())


def _export(exchange: Exchange, principal: Principal, selection: sensors.Selection,
            chosen_format: str) -> tuple[BinaryIO, int, Tlp]:
    """Write the export to a spool (memory, then disk past ``_SPOOL``), rewound.

    Warning lists are not loaded here: the node's background check flags new indicators.
    """
    out = tempfile.SpooledTemporaryFile(max_size=_SPOOL)
    try:
        written, level = sensors.export(exchange.store, principal, selection, out,
                                        format=chosen_format, source=principal.org_name)
    except BaseException:
        out.close()
        raise
    out.seek(0)
    return out, written, level  # type: ignore[return-value]


async def _chunks(spool: BinaryIO) -> AsyncIterator[bytes]:
    try:
        while chunk := await run_in_threadpool(spool.read, 256 * 1024):
            yield chunk
    finally:
        spool.close()


def _number(params, name: str, default: int) -> int:  # type: ignore[no-untyped-def]
    text = params.get(name)
    if text is None:
        return default
    if not text.isdigit() or not 0 < int(text) <= 1_000_000:
        raise BadRequest(f"{name} must be a positive integer")
    return int(text)


ROUTES = [
    Route("/detect/hunt", hunt, methods=["POST"]),
    Route("/detect/correlate", correlate, methods=["GET"]),
    Route("/detect/export", export, methods=["GET"]),
]
