"""The exception tree. Each error knows its HTTP status and its TAXII title.

    CommuniqueError                 500  any failure we did not foresee
    ├── BadRequest                  400  malformed filter, body or argument
    │   └── InvalidObject           400  one STIX object failed validation
    ├── Unauthorized                401  no or bad credentials
    ├── Forbidden                   403  known caller, action not allowed
    ├── NotFound                    404  absent, or hidden from the caller
    ├── NotAcceptable               406  Accept header we cannot satisfy
    ├── Conflict                    409  a name or id already taken
    ├── PayloadTooLarge             413  body over max_content_length
    ├── UnsupportedMediaType        415  Content-Type we do not take
    ├── Unprocessable               422  well-formed, but not a thing we can store
    └── TooManyRequests             429  too many failed sign-ins from one address

The web layer renders every one of them as a TAXII error message (§3.6.1); the
command line prints its description and exits non-zero.
"""

from __future__ import annotations


class CommuniqueError(Exception):
    """Base of every error Communiqué raises on purpose."""

    status: int = 500
    title: str = "Internal error"

    def __init__(self, description: str = "", *, details: dict | None = None) -> None:
        super().__init__(description or self.title)
        self.description = description or self.title
        self.details = details


class BadRequest(CommuniqueError):
    status = 400
    title = "Bad request"


class InvalidObject(BadRequest):
    """Raised by validation; carries the reason an object was refused."""

    title = "Invalid STIX object"


class Unauthorized(CommuniqueError):
    status = 401
    title = "Authentication required"


class Forbidden(CommuniqueError):
    status = 403
    title = "Forbidden"


class NotFound(CommuniqueError):
    status = 404
    title = "Not found"


class NotAcceptable(CommuniqueError):
    status = 406
    title = "Not acceptable"


class Conflict(CommuniqueError):
    status = 409
    title = "Conflict"


class PayloadTooLarge(CommuniqueError):
    status = 413
    title = "Request too large"


class UnsupportedMediaType(CommuniqueError):
    status = 415
    title = "Unsupported media type"


class Unprocessable(CommuniqueError):
    status = 422
    title = "Unprocessable content"


class TooManyRequests(CommuniqueError):
    status = 429
    title = "Too many requests"
