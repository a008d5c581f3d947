"""What the store keeps about indicators and sightings beside their JSON, for detection.

Correlation, decay, warning lists and exports all ask the same few questions of
every indicator: which values it looks for, when it is valid, how confident its
producer was, and how often it was sighted. They are answered once, when a version
is stored, from the object itself; the store files the answers next to the version
(and drops them with it).

A value is filed under a *family* and a digest, so that one lookup finds it
whatever path an indicator used: ``ipv4-addr:value`` and
``network-traffic:dst_ref.value`` are the same address, an MD5 is a hash wherever
it is. Correlation counts organisations per digest: one row per value and
indicator, never one per pair of indicators.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, Mapping

from communique import timestamps
from communique.detect import normalise
from communique.detect.engine import anchor_values
from communique.detect.pattern_ast import AllOf, AnyOf, Comparison, Joined, Observation, Qualified
from communique.detect.pattern_ast import parse as parse_pattern
from communique.errors import BadRequest

EMAIL_PATHS = frozenset({"email-addr:value", "email-message:from_ref.value",
                         "email-message:sender_ref.value"})
MAX_VALUES = 1000  # values filed per indicator; a longer IN list is still hunted, not filed
MAX_VALUE_LENGTH = 4096
MAX_PATH_LENGTH = 200  # the column's width; a longer (custom) path is hunted, not filed
# A pattern's text with its strings emptied and list indexes gone: one observation is
# one pair of brackets with none inside; an object path's type follows '[', '(' or a space.
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'")
_INDEX = re.compile(r"\[(?:[0-9]+|\*)\]")
_ONE_OBSERVATION = re.compile(r"\[[^\[\]]*\]")
_TYPE_OF_PATH = re.compile(r"(?:^|[\[(\s])([a-z][a-z0-9-]*):")

# The path a value given without one is tried as, per family (for `correlate VALUE`).
GUESSES = ("ipv4-addr:value", "ipv6-addr:value", "domain-name:value", "url:value",
           "email-addr:value", "file:hashes.'SHA-256'", "file:name",
           "autonomous-system:number", "windows-registry-key:key", "mutex:name")


@dataclass(frozen=True, slots=True)
class IndicatorFacts:
    """One indicator version as detection sees it."""

    stix_id: str
    version: int
    valid_from: int
    valid_until: int | None
    revoked: bool
    confidence: int | None
    kinds: str  # the STIX object types its pattern is about, comma-separated
    created_by: str | None  # its created_by_ref: who reported it, wherever it came from
    values: tuple[tuple[str, str, bytes], ...]  # (path, normal value, digest)


@dataclass(frozen=True, slots=True)
class SightingFacts:
    """One sighting version: of what, how often, and when last."""

    stix_id: str
    version: int
    sighting_of_ref: str
    count: int
    first_seen: int | None
    last_seen: int | None


def family(path: str) -> str:
    """Return the family a path's values are compared within (an address is an address)."""
    if path in normalise.IP_PATHS:
        return "ip"
    if path in EMAIL_PATHS:
        return "email"
    if ":hashes." in path:
        return "hash"
    return path


def digest(path: str, value: object) -> bytes:
    """Return the 16-byte key a normalised value is filed and looked up under."""
    text = f"{family(path)}\x00{value}".encode("utf-8", "surrogatepass")
    return hashlib.blake2b(text, digest_size=16).digest()


def indicator_facts(raw: Mapping[str, Any], version: int) -> IndicatorFacts | None:
    """Return the facts of a stored STIX indicator, or None when it has no STIX pattern."""
    pattern = raw.get("pattern")
    if raw.get("pattern_type") != "stix" or not isinstance(pattern, str):
        return None
    try:
        valid_from = timestamps.parse(raw.get("valid_from") or raw.get("created"))
        until = raw.get("valid_until")
        valid_until = None if until is None else timestamps.parse(until)
    except ValueError:
        return None
    confidence = raw.get("confidence")
    if isinstance(confidence, bool) or not isinstance(confidence, int):
        confidence = None
    values: dict[bytes, tuple[str, str, bytes]] = {}
    bare = _INDEX.sub("", _QUOTED.sub("''", pattern)).strip()
    if _ONE_OBSERVATION.fullmatch(bare):
        anchors = anchor_values(pattern)
        # a plain lookup names its object types in its paths: no second parse
        kinds = ({path.split(":", 1)[0] for path, _ in anchors} if anchors
                 else object_types(pattern))
    else:  # several observations or qualifiers: never a plain lookup, and no parse needed
        anchors, kinds = None, set(_TYPE_OF_PATH.findall(bare))
    for path, value in (anchors or ())[:MAX_VALUES]:
        text = str(normalise.value(path, value))
        if len(text) <= MAX_VALUE_LENGTH and len(path) <= MAX_PATH_LENGTH:
            key = digest(path, text)
            values.setdefault(key, (path, text, key))
    return IndicatorFacts(raw["id"], version, valid_from, valid_until, raw.get("revoked") is True,
                          confidence, ",".join(sorted(kinds))[:300],
                          _reference(raw.get("created_by_ref")), tuple(values.values()))


def sighting_facts(raw: Mapping[str, Any], version: int) -> SightingFacts | None:
    """Return the facts of a stored STIX sighting, or None when it names no indicator."""
    target = raw.get("sighting_of_ref")
    if not isinstance(target, str) or not target.startswith("indicator--"):
        return None
    count = raw.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        count = 1
    try:
        first = raw.get("first_seen")
        last = raw.get("last_seen")
        first_us = None if first is None else timestamps.parse(first)
        last_us = None if last is None else timestamps.parse(last)
    except ValueError:
        first_us = last_us = None
    return SightingFacts(raw["id"], version, target, count, first_us,
                         last_us if last_us is not None else first_us)


def _reference(untrusted: object) -> str | None:
    return untrusted if isinstance(untrusted, str) and len(untrusted) <= 300 else None


def object_types(pattern: str) -> set[str]:
    """Return the STIX object types a pattern's comparisons are about (empty if unreadable)."""
    try:
        tree = parse_pattern(pattern)
    except BadRequest:
        return set()
    found: set[str] = set()
    stack: list[object] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, Comparison):
            found.add(node.path.split(":", 1)[0])
        elif isinstance(node, (AllOf, AnyOf)):
            stack.extend(node.terms)
        elif isinstance(node, Observation):
            stack.append(node.expression)
        elif isinstance(node, Qualified):
            stack.append(node.inner)
        elif isinstance(node, Joined):
            stack.extend(node.parts)
    return found


def lookup_keys(value: str, path: str | None = None) -> list[tuple[str, str, bytes]]:
    """Return (path, normal value, digest) for a value as given, at ``path`` or every guess."""
    keys: dict[bytes, tuple[str, str, bytes]] = {}
    for candidate in (path,) if path else GUESSES:
        try:
            text = str(normalise.value(candidate, value))
        except (ValueError, TypeError):
            continue
        key = digest(candidate, text)
        keys.setdefault(key, (candidate, text, key))
    return list(keys.values())
