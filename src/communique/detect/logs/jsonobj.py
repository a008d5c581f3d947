"""JSON lines: parse one object per line, and look fields up by dotted path."""

from __future__ import annotations

from typing import Any

import orjson

from communique.detect.logs.record import Context
from communique.detect.logs.sources import Line

INVALID = "invalid JSON"
NOT_OBJECT = "JSON value is not an object"


def load_object(line: Line, ctx: Context) -> dict[str, Any] | None:
    """Parse a line as a JSON object, or count it as skipped and return None."""
    try:
        value = orjson.loads(line.text)
    except orjson.JSONDecodeError:
        ctx.skip(INVALID, line)
        return None
    if not isinstance(value, dict):
        ctx.skip(NOT_OBJECT, line)
        return None
    return value


def lookup(document: Any, path: str) -> list[Any]:
    """Return the scalar values at a dotted path; a literal dotted key wins, lists fan out."""
    if isinstance(document, dict) and path in document:
        return _scalars(document[path])
    head, dot, rest = path.partition(".")
    if isinstance(document, list):
        return [value for item in document if isinstance(item, dict) for value in lookup(item, path)]
    if not isinstance(document, dict) or head not in document:
        return []
    return lookup(document[head], rest) if dot else _scalars(document[head])


def first(document: Any, path: str) -> Any:
    """Return the first scalar value at a dotted path, or None."""
    found = lookup(document, path)
    return found[0] if found else None


def flatten(document: dict[str, Any], depth: int = 4) -> dict[str, Any]:
    """Join nested objects' keys with dots ({"id": {"orig_h": x}} gives "id.orig_h")."""
    flat: dict[str, Any] = {}
    for key, value in document.items():
        if isinstance(value, dict) and depth > 0:
            for inner, item in flatten(value, depth - 1).items():
                flat.setdefault(f"{key}.{inner}", item)
        else:
            flat.setdefault(key, value)
    return flat


def _scalars(value: Any) -> list[Any]:
    """Return a value as a list of scalars: a list's scalar items, or the value itself."""
    if isinstance(value, list):
        return [item for item in value if not isinstance(item, (dict, list)) and item is not None]
    if isinstance(value, dict) or value is None:
        return []
    return [value]
