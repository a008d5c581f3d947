"""``create_app(settings)``: the ASGI application of one node. Nothing happens at import."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException

from communique import node
from communique.detect import online
from communique.errors import CommuniqueError
from communique.exchange import Exchange
from communique.settings import Settings, load
from communique.store import open_store
from communique.web import detect_pages, detection, pages, render, taxii
from communique.web.security import SecurityHeaders


def create_app(settings: Settings | None = None) -> Starlette:
    """Build the application: open the store, load the node's key, mount the routes."""
    settings = settings or load()
    store = open_store(settings.database)
    exchange = Exchange(store, settings, node.cursor_key(store, settings),
                        node.signer(store, settings))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        store.close()

    routes = pages.ROUTES + detect_pages.ROUTES + detection.ROUTES + taxii.ROUTES
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={
        CommuniqueError: render.communique_error,
        HTTPException: render.http_error,
        Exception: render.server_error,
    })
    app.router.redirect_slashes = False  # TAXII URLs end in '/'; a missing one is a 404 (§3.1)
    app.state.exchange = exchange
    app.state.hunter = online.Hunter(store)
    app.state.settings = settings
    app.state.templates = pages.templates()
    # Outermost, around Starlette's own error middleware, so that 500s carry the headers too.
    app.middleware_stack = SecurityHeaders(app.build_middleware_stack())
    return app
