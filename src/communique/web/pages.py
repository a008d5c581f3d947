"""The web pages: sign-in with a second factor, enrolment, and the signed-in home page.

Server-rendered, no JavaScript. The session cookie is HttpOnly, SameSite=Strict,
scoped to /web, and Secure whenever the node serves HTTPS. Every form carries a
CSRF token: the session's own once signed in, before that a random value also set
in a short-lived cookie (double submit). Refusals are rendered as pages and
recorded in the audit log like any other.
"""

from __future__ import annotations

import functools
import secrets
from importlib import resources
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qsl

import orjson
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from communique import access, accounts, timestamps
from communique.access import Principal
from communique.audit import Actor
from communique.errors import BadRequest, CommuniqueError, Forbidden, PayloadTooLarge
from communique.identity import signin, totp
from communique.provenance.signatures import Status
from communique.stix.markings import Tlp
from communique.sync.status import link_states
from communique.store.base import Credentials, WebSession
from communique.web import refusals
from communique.web.taxii import read_body

COOKIE = "cq_session"
PRE_COOKIE = "cq_pre"
_FORM_LIMIT = 16 * 1024


def templates() -> Environment:
    """Return the page templates (built once per application, in ``create_app``)."""
    return Environment(loader=PackageLoader("communique.web", "templates"),
                       autoescape=select_autoescape(default=True))


Page = Callable[[Request], Awaitable[Response]]


def page(handler: Page) -> Page:
    """Render a refusal as the page it happened on, with its status, and audit it."""
    @functools.wraps(handler)
    async def route(request: Request) -> Response:
        try:
            return await handler(request)
        except CommuniqueError as exc:
            if 400 <= exc.status < 500:
                await refusals.record(request, status=exc.status, description=exc.description)
            return _render(request, "base.html", status=exc.status, message=exc.description)
    return route


def _render(request: Request, name: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    env: Environment = request.app.state.templates
    context.setdefault("node_title", request.app.state.settings.title)
    return HTMLResponse(env.get_template(name).render(**context), status_code=status)


def _address(request: Request) -> str:
    return request.client.host if request.client else ""


def _set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/web", httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")


async def _form(request: Request, limit: int = _FORM_LIMIT) -> dict[str, str]:
    """Read a URL-encoded form of at most ``limit`` bytes (16 KiB; chunked or not)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise BadRequest("send the form URL-encoded, as a browser does")
    body = await read_body(request, limit)
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=10,
                          strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("the form could not be read") from None
    return dict(pairs)


def _check_csrf(expected: str | None, form: dict[str, str]) -> None:
    given = form.get("csrf", "").encode("utf-8", "surrogatepass")  # bytes: any text compares
    if not expected or not secrets.compare_digest(expected.encode(), given):
        raise Forbidden("this form has expired or did not come from this site: reload the page")


async def _session(request: Request) -> WebSession | None:
    app = request.app.state
    return await run_in_threadpool(signin.load_session, app.exchange.store, app.settings,
                                   request.cookies.get(COOKIE))


def _signed_in(request: Request, signed: signin.Signed, to: str) -> Response:
    response = RedirectResponse(to, status_code=303)
    hours = request.app.state.settings.session_max_hours
    _set_cookie(request, response, COOKIE, signed.cookie, hours * 3600)
    response.delete_cookie(PRE_COOKIE, path="/web")
    return response


def _to_signin() -> Response:
    return RedirectResponse("/web/signin", status_code=303)


# -- sign-in ---------------------------------------------------------------------------
@page
async def signin_page(request: Request) -> Response:
    """Show the sign-in form, with a fresh double-submit CSRF value."""
    session = await _session(request)
    if session is not None and session.stage == "full":
        return RedirectResponse("/web/", status_code=303)
    pre = secrets.token_urlsafe(32)
    response = _render(request, "signin.html", csrf=pre)
    _set_cookie(request, response, PRE_COOKIE, pre, 3600)
    return response


@page
async def signin_submit(request: Request) -> Response:
    """Check the password; go on to the code (or to enrolment)."""
    form = await _form(request)
    _check_csrf(request.cookies.get(PRE_COOKIE), form)
    app = request.app.state
    try:
        signed = await run_in_threadpool(
            signin.check_password, app.exchange.store, app.settings,
            email=form.get("email", ""), password=form.get("password", ""),
            address=_address(request))
    except CommuniqueError as exc:  # already audited by the use case
        response = _render(request, "signin.html", status=exc.status, message=exc.description,
                           csrf=form.get("csrf"), email=form.get("email", "")[:320])
        return response
    return _signed_in(request, signed, "/web/mfa" if signed.session.stage == "mfa" else "/web/mfa/enrol")


@page
async def mfa_page(request: Request) -> Response:
    """Ask for the code."""
    session = await _session(request)
    if session is None or session.stage != "mfa":
        return _to_signin()
    if request.method == "GET":
        return _render(request, "mfa.html", csrf=session.csrf)
    form = await _form(request)
    _check_csrf(session.csrf, form)
    app = request.app.state
    try:
        signed = await run_in_threadpool(signin.confirm_code, app.exchange.store, app.settings,
                                         session=session, code=form.get("code", "")[:20],
                                         address=_address(request))
    except CommuniqueError as exc:
        return _render(request, "mfa.html", status=exc.status, message=exc.description,
                       csrf=session.csrf)
    return _signed_in(request, signed, "/web/")


@page
async def enrol_page(request: Request) -> Response:
    """Set up the second factor: QR code and secret, then a first code to confirm it."""
    session = await _session(request)
    if session is None or session.stage != "enrol":
        return _to_signin()
    app = request.app.state
    store = app.exchange.store
    if request.method == "POST":
        form = await _form(request)
        _check_csrf(session.csrf, form)
        try:
            signed, codes = await run_in_threadpool(
                signin.finish_enrolment, store, app.settings, session=session,
                code=form.get("code", "")[:10], address=_address(request))
        except CommuniqueError as exc:
            return await _enrol_form(request, session, status=exc.status, message=exc.description)
        response = _render(request, "recovery.html", codes=codes)
        _set_cookie(request, response, COOKIE, signed.cookie, app.settings.session_max_hours * 3600)
        return response
    return await _enrol_form(request, session)


async def _enrol_form(request: Request, session: WebSession, **context: Any) -> Response:
    store = request.app.state.exchange.store
    secret = await run_in_threadpool(signin.enrolment_secret, store, session=session)
    found = await run_in_threadpool(_credentials, request, session.user_id)
    assert found is not None
    uri = totp.provisioning_uri(secret, email=found.email, issuer="Communiqué")
    return _render(request, "enrol.html", csrf=session.csrf, secret=secret,
                   qr_svg=totp.qr_svg(uri), **context)


# -- signed in ---------------------------------------------------------------------------
def _credentials(request: Request, user_id: int) -> Credentials | None:
    with request.app.state.exchange.store.read() as tx:
        return tx.credentials(user_id=user_id)


async def _principal(request: Request) -> tuple[WebSession, Principal] | None:
    session = await _session(request)
    if session is None or session.stage != "full":
        return None
    found = await run_in_threadpool(_credentials, request, session.user_id)
    if found is None or found.disabled:
        return None
    principal = Principal(found.id, found.email, found.org_id, found.org_name, found.role)
    request.state.principal = principal
    return session, principal


@page
async def home(request: Request) -> Response:
    """The signed-in home page: who you are, your collections by TLP level, your tokens."""
    signed = await _principal(request)
    if signed is None:
        return _to_signin()
    return await _home(request, *signed)


async def _home(request: Request, session: WebSession, principal: Principal,
                **extra: Any) -> Response:
    context = await run_in_threadpool(_home_context, request, principal)
    return _render(request, "home.html", user=principal, csrf=session.csrf, **context, **extra)


def _home_context(request: Request, principal: Principal) -> dict[str, Any]:
    store = request.app.state.exchange.store
    rows = []
    with store.read() as tx:
        grants = tx.grants_of(principal.org_id)
        for item in tx.list_collections():
            rights = access.access_to(principal, grants.get(item.id), public=item.public)
            if not rights.visible:
                continue
            seen = access.visibility(principal, item)
            counts = tx.count_objects(item.id, visibility=seen) if rights.can_read else {}
            signed = tx.count_signatures(item.id, visibility=seen) if rights.can_read else {}
            label = " and ".join(w for w, ok in (("read", rights.can_read),
                                                  ("write", rights.can_write)) if ok)
            rows.append({"id": item.id, "title": item.title, "api_root": item.api_root,
                         "writable": rights.can_write,
                         "rights": label + (" (public)" if item.public else ""),
                         "counts": counts, "total": sum(counts.values()),
                         "signatures": ", ".join(f"{signed[s]} {s.word}" for s in Status
                                                 if signed.get(s))})
        tokens = tx.list_tokens(user_id=principal.user_id)
    links = (link_states(store, now=timestamps.now_us())
             if access.may_manage(principal) else [])
    when = lambda us: timestamps.format_ms(us)[:16].replace("T", " ") if us else "never"  # noqa: E731
    return {"collections": rows, "levels": list(Tlp), "scopes": access.scopes_for(principal.role),
            "links": [{**state.as_dict(), "healthy": state.healthy,
                       "last_success": when(state.last_success)} for state in links],
            "tokens": [{"id": t.id, "prefix": t.prefix, "scope": t.scope, "created": when(t.created),
                        "expires": when(t.expires), "last_used": when(t.last_used),
                        "active": t.revoked is None} for t in tokens]}


async def _signed_form(request: Request, limit: int = _FORM_LIMIT
                       ) -> tuple[WebSession, Principal, dict[str, str]] | None:
    """Return the signed-in caller and their form, its CSRF token checked; None if not signed in."""
    signed = await _principal(request)
    if signed is None:
        return None
    session, principal = signed
    form = await _form(request, limit)
    _check_csrf(session.csrf, form)
    return session, principal, form


@page
async def create_token(request: Request) -> Response:
    """Create a token for the signed-in user, shown once on the home page."""
    posted = await _signed_form(request)
    if posted is None:
        return _to_signin()
    session, principal, form = posted
    days = form.get("expires_days", "").strip()
    if days and not (days.isascii() and days.isdigit()):
        raise BadRequest("the expiry is a number of days")
    actor = Actor.of(principal, _address(request))
    secret, record = await run_in_threadpool(
        accounts.create_token, request.app.state.exchange.store, principal.email,
        expires_days=int(days) if days else None, scope=form.get("scope") or None, actor=actor)
    return await _home(request, session, principal,
                       new_token={"secret": secret, "scope": record.scope})


@page
async def add_objects(request: Request) -> Response:
    """Add STIX objects pasted into the home page: the same path as TAXII Add Objects, so
    they are validated, checked against TLP and signed by the node alike."""
    # pasted objects may be as large as a TAXII request (URL-encoding can triple them)
    posted = await _signed_form(request, 3 * request.app.state.settings.max_content_length)
    if posted is None:
        return _to_signin()
    session, principal, form = posted
    slug, _, collection_id = form.get("collection", "").partition("/")
    untrusted = form.get("objects", "").strip()
    if not slug or not collection_id or not untrusted:
        raise BadRequest("choose a collection and paste a STIX bundle or a JSON list of objects")
    body = untrusted.encode()
    limit = request.app.state.settings.max_content_length
    if len(body) > limit:
        raise PayloadTooLarge(f"the objects are {len(body)} bytes; this node takes at most "
                              f"{limit} in one request")
    if untrusted.startswith("["):  # a bare list of objects: the envelope TAXII expects
        body = b'{"objects":' + body + b"}"
    exchange = request.app.state.exchange
    status = orjson.loads(await run_in_threadpool(
        exchange.add, principal, slug, collection_id, body, address=_address(request)))
    return await _home(request, session, principal, added={
        "success": status["success_count"], "failure": status["failure_count"],
        "failures": status.get("failures", [])[:50]})


@page
async def revoke_token(request: Request) -> Response:
    """Revoke one of the signed-in user's tokens."""
    posted = await _signed_form(request)
    if posted is None:
        return _to_signin()
    _, principal, _ = posted
    raw = request.path_params["token_id"]
    if not (raw.isascii() and raw.isdigit() and len(raw) < 19):
        raise BadRequest("no such token")
    actor = Actor.of(principal, _address(request))
    await run_in_threadpool(accounts.revoke_token, request.app.state.exchange.store, int(raw),
                            actor=actor, owner_id=principal.user_id)
    return RedirectResponse("/web/", status_code=303)


@page
async def sign_out(request: Request) -> Response:
    """End the session."""
    session = await _session(request)
    if session is not None:
        form = await _form(request)
        _check_csrf(session.csrf, form)
        found = await run_in_threadpool(_credentials, request, session.user_id)
        actor = Actor(found.email if found else "", found.org_name if found else "",
                      _address(request))
        await run_in_threadpool(signin.sign_out, request.app.state.exchange.store, session,
                                actor=actor)
    response = _to_signin()
    response.delete_cookie(COOKIE, path="/web")
    return response


async def stylesheet(request: Request) -> Response:
    """The one stylesheet (no inline styles: the Content-Security-Policy forbids them)."""
    css = resources.files("communique.web").joinpath("static/style.css").read_bytes()
    return Response(css, media_type="text/css", headers={"Cache-Control": "max-age=3600"})


async def root(request: Request) -> Response:
    """Send a browser that opens the node's address to the web pages."""
    return RedirectResponse("/web/", status_code=303)


ROUTES = [
    Route("/", root, methods=["GET"]),
    Route("/web/", home, methods=["GET"]),
    Route("/web/signin", signin_page, methods=["GET"]),
    Route("/web/signin", signin_submit, methods=["POST"]),
    Route("/web/mfa", mfa_page, methods=["GET", "POST"]),
    Route("/web/mfa/enrol", enrol_page, methods=["GET", "POST"]),
    Route("/web/tokens", create_token, methods=["POST"]),
    Route("/web/objects", add_objects, methods=["POST"]),
    Route("/web/tokens/{token_id}/revoke", revoke_token, methods=["POST"]),
    Route("/web/signout", sign_out, methods=["POST"]),
    Route("/web/static/style.css", stylesheet, methods=["GET"]),
]
