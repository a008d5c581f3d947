"""TAXII 2.1 routes: parse the request, call the use case, render the resource.

Every route checks ``Accept`` (§1.6.8) and authenticates before doing anything. A
request without credentials goes on as anonymous (``principal`` None): the use
cases let it read public collections and answer 401 to everything else.
"""

from __future__ import annotations

from typing import Awaitable, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from communique import timestamps
from communique.access import Principal
from communique.errors import BadRequest, NotAcceptable, PayloadTooLarge, UnsupportedMediaType
from communique.exchange import Exchange, Listing
from communique.taxii import media, resources
from communique.taxii.filters import DIGITS
from communique.web import auth
from communique.web.render import taxii_response

Handler = Callable[[Request, Exchange, Principal | None], Awaitable[Response]]


def endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a TAXII handler with content negotiation and authentication."""
    async def route(request: Request) -> Response:
        if not media.accepts_taxii(request.headers.get("accept")):
            raise NotAcceptable(f"this endpoint answers {media.TAXII_21}; the Accept header does not admit it")
        exchange: Exchange = request.app.state.exchange
        header = request.headers.get("authorization")
        principal = None if header is None else await run_in_threadpool(
            auth.authenticate, exchange.store, header)
        request.state.principal = principal  # for the audit record of a refusal (render.py)
        return await handler(request, exchange, principal)
    route.__name__ = handler.__name__
    route.__doc__ = handler.__doc__
    return route


def _listing(listing: Listing, body: bytes) -> Response:
    first, last = listing.bounds
    return taxii_response(body, headers={
        "X-TAXII-Date-Added-First": timestamps.format_us(first),
        "X-TAXII-Date-Added-Last": timestamps.format_us(last),
    })


def client_address(request: Request) -> str:
    """Return the peer's address as the socket saw it (never a forwarding header)."""
    return request.client.host if request.client else ""


def _params(request: Request) -> list[tuple[str, str]]:
    return request.query_params.multi_items()


@endpoint
async def discovery(request: Request, exchange: Exchange, principal: Principal | None) -> Response:
    """§4.1 Server Discovery."""
    base = exchange.settings.public_url.rstrip("/")
    return taxii_response(await run_in_threadpool(exchange.discovery, principal, base_url=base))


@endpoint
async def api_root(request: Request, exchange: Exchange, principal: Principal | None) -> Response:
    """§4.2 Get API Root Information."""
    slug = request.path_params["api_root"]
    return taxii_response(await run_in_threadpool(exchange.api_root, principal, slug))


@endpoint
async def status(request: Request, exchange: Exchange, principal: Principal | None) -> Response:
    """§4.3 Get Status."""
    p = request.path_params
    return taxii_response(await run_in_threadpool(exchange.status, principal, p["api_root"],
                                                  p["status_id"]))


@endpoint
async def collections(request: Request, exchange: Exchange, principal: Principal | None) -> Response:
    """§5.1 Get Collections."""
    slug = request.path_params["api_root"]
    return taxii_response(await run_in_threadpool(exchange.collections, principal, slug))


@endpoint
async def collection(request: Request, exchange: Exchange, principal: Principal | None) -> Response:
    """§5.2 Get a Collection."""
    p = request.path_params
    return taxii_response(await run_in_threadpool(exchange.collection, principal, p["api_root"],
                                                  p["collection_id"]))


@endpoint
async def manifest(request: Request, exchange: Exchange, principal: Principal | None) -> Response:
    """§5.3 Get Object Manifests."""
    p = request.path_params
    listing = await run_in_threadpool(exchange.objects, principal, p["api_root"],
                                      p["collection_id"], _params(request), manifest=True)
    records = [(r.stix_id, r.date_added, r.version, r.media_type) for r in listing.page.records]
    return _listing(listing, resources.manifest(records, more=listing.page.more,
                                                next_cursor=listing.next_cursor))


@endpoint
async def objects(request: Request, exchange: Exchange, principal: Principal | None) -> Response:
    """§5.4 Get Objects and §5.5 Add Objects."""
    p = request.path_params
    if request.method == "POST":
        return await _add_objects(request, exchange, principal)
    listing = await run_in_threadpool(exchange.objects, principal, p["api_root"],
                                      p["collection_id"], _params(request))
    return _envelope(listing)


def _envelope(listing: Listing) -> Response:
    bodies = [r.body for r in listing.page.records if r.body is not None]
    return _listing(listing, resources.envelope(bodies, more=listing.page.more,
                                                next_cursor=listing.next_cursor))


async def _add_objects(request: Request, exchange: Exchange, principal: Principal | None) -> Response:
    p = request.path_params
    if not media.is_taxii_content(request.headers.get("content-type")):
        raise UnsupportedMediaType(f"send the envelope as Content-Type: {media.TAXII_21}")
    await run_in_threadpool(exchange.check_writable, principal, p["api_root"], p["collection_id"])
    body = await read_body(request, exchange.settings.max_content_length)
    status_body = await run_in_threadpool(exchange.add, principal, p["api_root"],
                                          p["collection_id"], body, address=client_address(request))
    return taxii_response(status_body, status_code=202)


async def read_body(request: Request, limit: int) -> bytes:
    """Read a request body of at most ``limit`` bytes; raise 413 past it (§4.2.1)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not DIGITS.match(declared):
            raise BadRequest("Content-Length is not a number")
        if int(declared) > limit:
            raise PayloadTooLarge(f"the body is {declared} bytes; this API root takes at most {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body exceeds {limit} bytes, the max_content_length of this API root")
        chunks.append(chunk)
    return b"".join(chunks)


@endpoint
async def object_(request: Request, exchange: Exchange, principal: Principal | None) -> Response:
    """§5.6 Get an Object and §5.7 Delete an Object."""
    p = request.path_params
    args = (principal, p["api_root"], p["collection_id"], p["object_id"], _params(request))
    if request.method == "DELETE":
        await run_in_threadpool(exchange.delete, *args, address=client_address(request))
        return taxii_response({})
    return _envelope(await run_in_threadpool(exchange.object, *args))


@endpoint
async def versions(request: Request, exchange: Exchange, principal: Principal | None) -> Response:
    """§5.8 Get Object Versions."""
    p = request.path_params
    listing = await run_in_threadpool(exchange.versions, principal, p["api_root"],
                                      p["collection_id"], p["object_id"], _params(request))
    return _listing(listing, resources.versions([r.version for r in listing.page.records],
                                                more=listing.page.more,
                                                next_cursor=listing.next_cursor))


COLLECTION = "/{api_root}/collections/{collection_id}"
ROUTES = [
    Route("/taxii2/", discovery, methods=["GET"]),
    Route("/{api_root}/", api_root, methods=["GET"]),
    Route("/{api_root}/status/{status_id}/", status, methods=["GET"]),
    Route("/{api_root}/collections/", collections, methods=["GET"]),
    Route(COLLECTION + "/", collection, methods=["GET"]),
    Route(COLLECTION + "/manifest/", manifest, methods=["GET"]),
    Route(COLLECTION + "/objects/", objects, methods=["GET", "POST"]),
    Route(COLLECTION + "/objects/{object_id}/", object_, methods=["GET", "DELETE"]),
    Route(COLLECTION + "/objects/{object_id}/versions/", versions, methods=["GET"]),
]
