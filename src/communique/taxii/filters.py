"""Query filters and paging parameters of TAXII 2.1 requests (§3.4, §3.5).

``parse`` turns the untrusted query string into a ``Query``; anything malformed is a
400 with a message that names the parameter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable

from communique import timestamps
from communique.errors import BadRequest
from communique.stix.validate import IDENTIFIER, TYPE_NAME

SPEC_VERSION = re.compile(r"\d{1,3}\.\d{1,3}\Z", re.ASCII)
MAX_INTEGER = 2**53 - 1
DIGITS = re.compile(r"[0-9]+\Z")

# Which parameters each endpoint honours (§5.3, §5.4, §5.6, §5.7, §5.8).
OBJECTS = frozenset({"added_after", "limit", "next", "match[id]", "match[type]",
                     "match[version]", "match[spec_version]"})
OBJECT = frozenset({"added_after", "limit", "next", "match[version]", "match[spec_version]"})
DELETE = frozenset({"match[version]", "match[spec_version]"})
VERSIONS = frozenset({"added_after", "limit", "next", "match[spec_version]"})


@dataclass(frozen=True)
class Versions:
    """The ``match[version]`` filter: keywords and exact version instants."""

    all: bool = False
    first: bool = False
    last: bool = False
    exact: tuple[int, ...] = ()


ALL_VERSIONS = Versions(all=True)
LAST_VERSION = Versions(last=True)


@dataclass(frozen=True)
class Query:
    """A validated TAXII query: what to match and how to page."""

    added_after: int | None = None
    ids: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    versions: Versions = LAST_VERSION
    spec_versions: tuple[str, ...] = ()
    limit: int = 0
    next: str | None = field(default=None, compare=False)

    def identity(self) -> tuple:
        """Return what a cursor must agree with: every filter, nothing about paging."""
        return (self.added_after, self.ids, self.types, self.versions, self.spec_versions)


def _values(raw: list[str]) -> list[str]:
    return [v.strip() for item in raw for v in item.split(",") if v.strip()]


def _single(name: str, raw: list[str]) -> str:
    if len(raw) != 1:
        raise BadRequest(f"'{name}' may be given only once")
    return raw[0]


def _versions(values: list[str]) -> Versions:
    words = set()
    exact = []
    for value in values:
        if value in ("first", "last", "all"):
            words.add(value)
            continue
        try:
            exact.append(timestamps.parse(value))
        except ValueError:
            raise BadRequest(f"match[version] value {value[:64]!r} is not first, last, all or a timestamp") from None
    if "all" in words:
        return ALL_VERSIONS
    return Versions(first="first" in words, last="last" in words, exact=tuple(sorted(set(exact))))


def parse(untrusted: Iterable[tuple[str, str]], *, allowed: frozenset[str],
          max_page_size: int, default_versions: Versions = LAST_VERSION) -> Query:
    """Validate the query parameters an endpoint honours; ignore the others (§3.4)."""
    raw: dict[str, list[str]] = {}
    for name, value in untrusted:
        if name in allowed:
            raw.setdefault(name, []).append(value)
    query: dict = {"limit": max_page_size, "versions": default_versions}
    if "added_after" in raw:
        try:
            query["added_after"] = timestamps.parse(_single("added_after", raw["added_after"]))
        except ValueError as exc:
            raise BadRequest(f"added_after: {exc}") from None
    if "limit" in raw:
        text = _single("limit", raw["limit"])
        # A TAXII integer fits in 54 signed bits (§2); anything above the page size is lowered.
        if not DIGITS.match(text) or len(text) > 16 or not 1 <= int(text) <= MAX_INTEGER:
            raise BadRequest(f"limit must be an integer from 1 to {MAX_INTEGER}, not {text[:20]!r}")
        query["limit"] = min(int(text), max_page_size)
    if "next" in raw:
        query["next"] = _single("next", raw["next"])
    if "match[id]" in raw:
        ids = _values(raw["match[id]"])
        bad = [i for i in ids if not IDENTIFIER.match(i)]
        if bad or not ids:
            raise BadRequest(f"match[id] value {(bad or [''])[0][:120]!r} is not a STIX identifier")
        query["ids"] = tuple(sorted(set(ids)))
    if "match[type]" in raw:
        types = _values(raw["match[type]"])
        bad = [t for t in types if not TYPE_NAME.match(t)]
        if bad or not types:
            raise BadRequest(f"match[type] value {(bad or [''])[0][:120]!r} is not a STIX type name")
        query["types"] = tuple(sorted(set(types)))
    if "match[version]" in raw:
        values = _values(raw["match[version]"])
        if not values:
            raise BadRequest("match[version] needs a value")
        query["versions"] = _versions(values)
    if "match[spec_version]" in raw:
        values = _values(raw["match[spec_version]"])
        bad = [v for v in values if not SPEC_VERSION.match(v)]
        if bad or not values:
            raise BadRequest(f"match[spec_version] value {(bad or [''])[0][:20]!r} is not a version such as 2.1")
        query["spec_versions"] = tuple(sorted(set(values)))
    return Query(**query)
