"""Detection in the web pages: who reported a value, and which values several members report.

The same use cases as ``/detect/correlate`` and ``communique correlate``: they answer
only with what the signed-in user may see. A read-only GET, so its form needs no CSRF
token; everything shown, the value asked for included, is escaped by the templates.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from communique import timestamps
from communique.access import Principal
from communique.detect import correlation, online
from communique.web.pages import _principal, _render, _to_signin, page

SHARED_LIMIT = 50


@page
async def correlate_page(request: Request) -> Response:
    """Show the reports of ``?value=`` and the values several reporters look for."""
    signed = await _principal(request)
    if signed is None:
        return _to_signin()
    session, principal = signed
    untrusted = request.query_params.get("value", "").strip()
    context: dict[str, Any] = {"user": principal, "csrf": session.csrf}
    status = 200
    if len(untrusted) > online.MAX_TEXT:
        status = 400
        context["message"] = (f"the value is {len(untrusted):,} characters long; "
                              f"look up at most {online.MAX_TEXT:,}")
    elif untrusted:
        context.update(await run_in_threadpool(_reports, request, principal, untrusted))
    context["shared"] = await run_in_threadpool(
        correlation.shared, request.app.state.exchange.store, principal, min_reporters=2,
        limit=SHARED_LIMIT)
    return _render(request, "correlate.html", status=status, **context)


def _reports(request: Request, principal: Principal, untrusted: str) -> dict[str, Any]:
    found = correlation.correlate(request.app.state.exchange.store, principal, untrusted,
                                  now_us=timestamps.now_us())
    return {"value": untrusted, "reporters": correlation.reporters(found), "reports": [
        {"reporter": r.reporter, "organisation": r.organisation, "indicator": r.indicator_id,
         "collection": r.collection, "tlp": r.level.label, "path": r.path, "value": r.value,
         "valid_from": _when(r.valid_from), "score": f"{r.score:.1f}", "sightings": r.sightings,
         "last_seen": _when(r.last_seen) if r.last_seen is not None else "never",
         "runs": r.excluded is None, "excluded": r.excluded} for r in found]}


def _when(us: int) -> str:
    return timestamps.format_ms(us)[:16].replace("T", " ")


ROUTES = [
    Route("/web/correlate", correlate_page, methods=["GET"]),
]
