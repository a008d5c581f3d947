"""TAXII 2.1 resources (§3.6.1, §3.7, §4, §5) built from plain values.

Listings are assembled from the stored JSON bytes of each object without parsing
them again: the store's bytes go onto the wire as they are.
"""

from __future__ import annotations

from typing import Iterable

import orjson

from communique import timestamps
from communique.taxii.media import STIX_21, TAXII_21


def discovery(*, title: str, description: str, contact: str, api_roots: list[str]) -> dict:
    """§4.1.1 discovery resource."""
    resource: dict = {"title": title}
    if description:
        resource["description"] = description
    if contact:
        resource["contact"] = contact
    if api_roots:
        resource["default"] = api_roots[0]
        resource["api_roots"] = api_roots
    return resource


IDENTITY_PROPERTY = "x_communique_identity"


def api_root(*, title: str, description: str, max_content_length: int,
             identity: dict | None = None) -> dict:
    """§4.2.1 api-root resource; ``identity``: the node's signed STIX identity (a custom property)."""
    resource: dict = {"title": title, "versions": [TAXII_21],
                      "max_content_length": max_content_length}
    if description:
        resource["description"] = description
    if identity is not None:
        resource[IDENTITY_PROPERTY] = identity
    return resource


def collection(*, id: str, title: str, description: str, alias: str | None,
               can_read: bool, can_write: bool) -> dict:
    """§5.2.1 collection resource."""
    resource: dict = {"id": id, "title": title}
    if description:
        resource["description"] = description
    if alias:
        resource["alias"] = alias
    resource.update(can_read=can_read, can_write=can_write, media_types=[STIX_21])
    return resource


def collections(items: list[dict]) -> dict:
    """§5.1.1 collections resource; no key at all when the list is empty."""
    return {"collections": items} if items else {}


def _head(more: bool, next_cursor: str | None) -> bytes:
    head = b'{"more":true' if more else b'{"more":false'
    if more and next_cursor:
        head += b',"next":' + orjson.dumps(next_cursor)
    return head


def envelope(bodies: Iterable[bytes], *, more: bool, next_cursor: str | None) -> bytes:
    """§3.7 envelope around already-serialised STIX objects."""
    joined = b",".join(bodies)
    head = _head(more, next_cursor)
    return head + (b',"objects":[' + joined + b"]}" if joined else b"}")


def manifest(records: Iterable[tuple[str, int, int, str]], *, more: bool,
             next_cursor: str | None) -> bytes:
    """§5.3.1 manifest of (id, date_added, version, media_type) records.

    ``next`` is carried here too: the manifest endpoint takes a ``next`` parameter
    (§5.3), and clients that page with it (such as taxii2-client) need its value.
    """
    items = [{"id": stix_id, "date_added": timestamps.format_us(added),
              "version": timestamps.format_us(version), "media_type": media_type}
             for stix_id, added, version, media_type in records]
    resource: dict = orjson.loads(_head(more, next_cursor) + b"}")
    if items:
        resource["objects"] = items
    return orjson.dumps(resource)


def versions(values: Iterable[int], *, more: bool, next_cursor: str | None) -> bytes:
    """§5.8.1 versions resource (with ``next``, as for the manifest)."""
    items = [timestamps.format_us(v) for v in values]
    resource: dict = orjson.loads(_head(more, next_cursor) + b"}")
    if items:
        resource["versions"] = items
    return orjson.dumps(resource)


def error(*, status: int, title: str, description: str, details: dict | None = None) -> dict:
    """§3.6.1 error message; ``http_status`` is a string equal to the HTTP status."""
    resource: dict = {"title": title, "description": description, "http_status": str(status)}
    if details:
        resource["details"] = details
    return resource
