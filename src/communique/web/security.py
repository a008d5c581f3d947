"""Transport security: headers on every response, and the TLS context the server listens with."""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from uvicorn.config import Config

HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")
HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", b"default-src 'self'; frame-ancestors 'none'; "
                                 b"base-uri 'none'; form-action 'self'; object-src 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    # Threat intelligence must not sit in shared caches; a route may still choose otherwise.
    (b"cache-control", b"no-store"),
)


class SecurityHeaders:
    """Add the security headers a response lacks; HSTS only on a request that came over TLS."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        wanted = HEADERS + ((HSTS,) if scope.get("scheme") == "https" else ())

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in wanted if name not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def tls_context(config: Config, default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    """Build uvicorn's TLS context from its certificate and key, refusing anything below TLS 1.2."""
    # uvicorn calls this in every worker process when it loads its config, so a
    # module-level function (picklable by name) holds the minimum for --workers > 1 too.
    context = default()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context
