"""Record every refused request in the audit log: probes, forgeries and guesses leave a trace.

A refusal is written in a transaction of its own, after the fact; if that write
fails the response still goes out, and the failure is logged (without secrets).
"""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from communique import audit, timestamps

log = logging.getLogger("communique.audit")
_PATH_LIMIT = 300


async def record(request: Request, *, status: int, description: str) -> None:
    """Append an audit entry for a request answered with a 4xx ``status``."""
    exchange = getattr(request.app.state, "exchange", None)
    if exchange is None:
        return
    principal = getattr(request.state, "principal", None)
    address = request.client.host if request.client else ""
    action = "auth.failure" if status == 401 else "request.refused"
    event = audit.Actor.of(principal, address).event(
        action, target=f"{request.method} {request.url.path[:_PATH_LIMIT]}",
        outcome=audit.REFUSED, status=status, reason=description[:300],
        credentials="presented" if "authorization" in request.headers else "none")

    def append() -> None:
        with exchange.store.write() as tx:
            tx.append_audit(event, now=timestamps.now_us())

    try:
        await run_in_threadpool(append)
    except Exception:  # the refusal must still be answered
        log.exception("could not record a refused request in the audit log")
