"""Every response leaves through here: TAXII JSON, and TAXII error messages for every failure."""

from __future__ import annotations

import logging

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from communique.errors import CommuniqueError
from communique.taxii import resources
from communique.taxii.media import TAXII_21
from communique.web import refusals
from communique.web.auth import CHALLENGE

log = logging.getLogger("communique.web")


def taxii_response(body: bytes | dict, *, status_code: int = 200,
                   headers: dict[str, str] | None = None) -> Response:
    """Return a response with the TAXII 2.1 media type (§3.1: on success and failure alike)."""
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return Response(content, status_code=status_code, headers=headers, media_type=TAXII_21)


def _error(status: int, title: str, description: str, details: dict | None = None,
           headers: dict[str, str] | None = None) -> Response:
    body = resources.error(status=status, title=title, description=description, details=details)
    return taxii_response(body, status_code=status, headers=headers)


async def communique_error(request: Request, exc: Exception) -> Response:
    """Render one of our errors as a TAXII error message with its own status."""
    assert isinstance(exc, CommuniqueError)
    if 400 <= exc.status < 500:
        await refusals.record(request, status=exc.status, description=exc.description)
    headers = {"WWW-Authenticate": CHALLENGE} if exc.status == 401 else None
    return _error(exc.status, exc.title, exc.description, exc.details, headers)


async def http_error(request: Request, exc: Exception) -> Response:
    """Render Starlette's routing errors (unknown path, wrong method) as TAXII errors."""
    assert isinstance(exc, HTTPException)
    if exc.status_code in (404, 405):
        await refusals.record(request, status=exc.status_code, description="no such route")
    if exc.status_code == 404:
        hint = "no such resource; TAXII URLs end with '/'" if not request.url.path.endswith("/") else "no such resource"
        return _error(404, "Not found", hint)
    if exc.status_code == 405:
        return _error(405, "Method not allowed", f"{request.method} is not allowed here",
                      headers=dict(exc.headers or {}))
    return _error(exc.status_code, "HTTP error", str(exc.detail))


async def server_error(request: Request, exc: Exception) -> Response:
    """Render an unforeseen failure without revealing anything of it; log it here."""
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _error(500, "Internal error", "the server failed to handle this request; it has been logged")
