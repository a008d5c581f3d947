"""A TAXII 2.1 client for talking to peers: bounded in time, size and retries, never trusting.

Any conformant server will do (another Communiqué node, medallion, a vendor's).
Every failure becomes a ``PeerError`` with a message fit for an operator; a
response that is not what TAXII promises (wrong type, missing headers, JSON that
is not an envelope) is a failure too. ``transport`` is the seam where tests plug
in a misbehaving peer.
"""

from __future__ import annotations

import functools
import ssl
import time
from dataclasses import dataclass
from typing import Any, Iterable
from urllib.parse import quote

import httpx
import orjson

from communique import timestamps
from communique.errors import BadRequest, CommuniqueError

TAXII = "application/taxii+json;version=2.1"
_MAX_RESPONSE = 64 * 1024 * 1024
_RETRIED = frozenset({429, 500, 502, 503, 504})


class PeerError(CommuniqueError):
    """The peer could not be used: unreachable, slow, refusing, or answering nonsense."""

    status = 502
    title = "Peer failed"

    def __init__(self, description: str = "", *, status_code: int | None = None) -> None:
        super().__init__(_printable(description))
        self.status_code = status_code  # the peer's HTTP status, when it answered one


@dataclass(frozen=True, slots=True)
class ObjectsPage:
    """One page of Get Objects: its objects, whether more follow, and its date_added bounds."""

    objects: list
    more: bool
    next: str | None
    first_added: int | None
    last_added: int | None


class TaxiiClient:
    """Requests to one peer's API root, authenticated with a bearer token."""

    def __init__(self, api_root_url: str, token: str, *, timeout: float = 30.0,
                 attempts: int = 3, transport: httpx.BaseTransport | None = None,
                 ca_file: str = "") -> None:
        self.url = api_root_url if api_root_url.endswith("/") else api_root_url + "/"
        self.attempts = attempts
        self.timeout = timeout
        headers = {"Accept": TAXII, "User-Agent": "communique-sync"}
        auth = None
        if ":" in token:  # USER:PASSWORD: HTTP Basic, which every TAXII 2.1 client must offer
            user, _, password = token.partition(":")
            auth = httpx.BasicAuth(user, password)
        elif token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(headers=headers, transport=transport, follow_redirects=False,
                                  auth=auth, verify=_tls(ca_file),
                                  timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "TaxiiClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- TAXII 2.1 requests ----------------------------------------------------------
    def api_root(self) -> dict[str, Any]:
        """§4.2 Get API Root Information."""
        return self._json_object(self._request("GET", self.url))

    def get_objects(self, collection: str, *, added_after: int | None, next: str | None,
                    limit: int) -> ObjectsPage:
        """§5.4 Get Objects, every version, oldest first from ``added_after``."""
        params: list[tuple[str, str]] = [("limit", str(limit)), ("match[version]", "all")]
        if added_after is not None:
            params.append(("added_after", timestamps.format_us(added_after)))
        if next:
            params.append(("next", next))
        # A cursor may be spent by a request whose answer was lost: the caller, not this
        # client, decides how to ask again.
        response = self._request("GET", self._objects_url(collection), params=params,
                                 attempts=1 if next else None)
        envelope = self._json_object(response)
        objects = envelope.get("objects", [])
        more = envelope.get("more", False)
        if not isinstance(objects, list) or not isinstance(more, bool):
            raise PeerError("the peer's envelope is malformed ('objects' must be a list, "
                            "'more' a boolean)")
        following = envelope.get("next")
        if following is not None and not (isinstance(following, str) and len(following) < 2000):
            raise PeerError("the peer's envelope has a malformed 'next'")
        return ObjectsPage(objects, more, following, _added(response, "First"),
                           _added(response, "Last"))

    def copies_held(self, collection: str, stix_id: str) -> list[dict[str, Any]]:
        """§5.6 Get an Object, every version: what the peer holds of it (as far as we may see)."""
        url = f"{self._objects_url(collection)}{quote(stix_id, safe='')}/"
        answer = self._request("GET", url, params=[("match[version]", "all")], attempts=1)
        objects = self._json_object(answer).get("objects")
        return [o for o in objects if isinstance(o, dict) and o.get("id") == stix_id] \
            if isinstance(objects, list) else []

    def add_objects(self, collection: str, objects: Iterable[bytes]) -> dict[str, Any]:
        """§5.5 Add Objects: post stored bodies as one envelope; return the status resource."""
        body = b'{"objects":[' + b",".join(objects) + b"]}"
        response = self._request("POST", self._objects_url(collection), content=body,
                                 headers={"Content-Type": TAXII})
        return self._json_object(response)

    def status(self, status_id: str) -> dict[str, Any]:
        """§4.3 Get Status."""
        return self._json_object(self._request(
            "GET", f"{self.url}status/{quote(status_id, safe='')}/"))

    # -- plumbing ----------------------------------------------------------------------
    def _objects_url(self, collection: str) -> str:
        return f"{self.url}collections/{quote(collection, safe='')}/objects/"

    def _request(self, method: str, url: str, *, attempts: int | None = None,
                 **kwargs: Any) -> tuple[httpx.Response, bytes]:
        """Send with bounded retries on network errors and 429/5xx; return a 2xx response."""
        attempts = attempts or self.attempts
        for attempt in range(1, attempts + 1):
            try:
                with self._http.stream(method, url, **kwargs) as response:
                    body = _read_capped(response, time.monotonic() + 4 * self.timeout)
            except httpx.TimeoutException:
                problem = "did not answer in time"
            except httpx.HTTPError as exc:
                problem = f"could not be reached ({type(exc).__name__}: {str(exc)[:200]})"
            else:
                if 200 <= response.status_code < 300:
                    return response, body
                problem = f"answered {response.status_code}{_reason(body)}"
                if response.status_code not in _RETRIED:
                    raise PeerError(f"{method} {url}: the peer {problem}",
                                    status_code=response.status_code)
            if attempt < attempts:
                time.sleep(min(0.25 * 2 ** attempt, 4.0))
        raise PeerError(f"{method} {url}: the peer {problem} ({attempts} attempts)")

    @staticmethod
    def _json_object(answer: tuple[httpx.Response, bytes]) -> dict[str, Any]:
        response, body = answer
        kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind not in ("application/taxii+json", "application/json"):
            raise PeerError(f"the peer answered {kind or 'no content type'}, not TAXII JSON")
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise PeerError("the peer's answer is not valid JSON") from None
        if not isinstance(value, dict):
            raise PeerError("the peer's answer is not a JSON object")
        return value


@functools.cache
def _tls(ca_file: str) -> ssl.SSLContext:
    """One TLS context per trust store, shared by every client: building one takes 20 ms.

    Certificates and host names are always checked, TLS 1.2 at least; ``ca_file`` (PEM)
    replaces the default authorities, for peers under a private PKI.
    """
    context = (ssl.create_default_context(cafile=ca_file) if ca_file
               else httpx.create_ssl_context())
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _read_capped(response: httpx.Response, deadline: float) -> bytes:
    """Read an answer of bounded size within a deadline (a peer trickling bytes is cut off)."""
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > _MAX_RESPONSE:
            raise PeerError(f"the peer's answer is larger than {_MAX_RESPONSE // 2**20} MiB")
        if time.monotonic() > deadline:
            raise httpx.ReadTimeout("the answer took too long as a whole")
        chunks.append(chunk)
    return b"".join(chunks)


def _printable(text: str) -> str:
    """Drop control characters (a peer's text reaches terminals and web pages)."""
    return "".join(ch if ch.isprintable() else " " for ch in text)


def _added(answer: tuple[httpx.Response, bytes], which: str) -> int | None:
    value = answer[0].headers.get(f"X-TAXII-Date-Added-{which}")
    if value is None:
        return None
    try:
        return timestamps.parse(value)
    except (BadRequest, ValueError):
        raise PeerError(f"the peer's X-TAXII-Date-Added-{which} header is not a "
                        "timestamp") from None


def _reason(body: bytes) -> str:
    """Return the title of a TAXII error message, if the body is one."""
    try:
        error = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ""
    if isinstance(error, dict) and isinstance(error.get("title"), str):
        description = error.get("description")
        extra = f": {description[:300]}" if isinstance(description, str) else ""
        return f" ({error['title'][:200]}{extra})"
    return ""
