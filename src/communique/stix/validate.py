"""Validation of one STIX 2.1 object before it is stored.

The checks are the ones a consumer relies on: the common properties, id/type
agreement, well-formed references and timestamps, their order, and for
indicators a STIX pattern that parses. Unknown (custom) properties and types are
allowed, as STIX 2.1 §11 allows them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from communique import timestamps
from communique.errors import InvalidObject
from communique.stix import markings, patterns
from communique.stix import vocabulary as vocab
from communique.stix.markings import Tlp

TYPE_NAME = re.compile(r"[a-z0-9](?:[a-z0-9]|-(?!-)){1,248}[a-z0-9]\Z")
IDENTIFIER = re.compile(
    r"([a-z0-9](?:[a-z0-9]|-(?!-)){1,248}[a-z0-9])--"
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}\Z"
)
PROPERTY_NAME = re.compile(r"[a-zA-Z0-9_]{1,250}\Z")


@dataclass(frozen=True, slots=True)
class StixObject:
    """A validated STIX object, its stored form, and the keys the store indexes it by."""

    id: str
    type: str
    spec_version: str
    version: str | None  # modified, else created, else None (unversioned SCOs)
    version_us: int | None
    raw: dict[str, Any]
    body: bytes  # the object as sorted-key JSON: what is stored and served
    tlp: Tlp | None = None  # its TLP level (markings.level_of); None when unmarked
    recipients: tuple[str, ...] = ()  # the principals it names (they matter where it is RED)
    signature: int = 0  # provenance.signatures.Status, once its signature has been checked
    digest: bytes | None = None  # what duplicates are told by; None: SHA-256 of ``body``


def show(untrusted: object, limit: int = 120) -> str:
    """Describe an untrusted value for a message without ever recursing into it."""
    if isinstance(untrusted, str):
        return repr(untrusted[:limit])
    if isinstance(untrusted, (bool, int, float)) or untrusted is None:
        return repr(untrusted)[:limit]
    return f"a JSON {'list' if isinstance(untrusted, list) else 'object'}"


def summary_id(untrusted: object) -> str:
    """Return the id to name an object by in a status message, valid or not."""
    if isinstance(untrusted, dict):
        value = untrusted.get("id")
        if isinstance(value, str):
            return value[:300]
    return ""


def summary_version(untrusted: object) -> str:
    """Return the version to name an object by in a status message, valid or not."""
    if isinstance(untrusted, dict):
        for key in ("modified", "created"):
            value = untrusted.get(key)
            if isinstance(value, str):
                return value[:64]
    return ""


def validate(untrusted: object) -> StixObject:
    """Check one STIX 2.1 object; return it wrapped, or raise InvalidObject saying why."""
    if not isinstance(untrusted, dict):
        raise InvalidObject("a STIX object must be a JSON object")
    stix_type = _check_type_and_id(untrusted)
    _check_property_names(untrusted)
    spec_version = _check_spec_version(untrusted, stix_type)
    _check_required(untrusted, stix_type)
    instants = _check_timestamps(untrusted, stix_type)
    _check_common(untrusted)
    if stix_type == "indicator":
        _check_indicator(untrusted)
    elif stix_type == "sighting":
        _check_count(untrusted.get("count"))
    markings.check_recipients(untrusted)
    version = untrusted.get("modified") or untrusted.get("created")
    version_us = instants.get("modified", instants.get("created"))
    # Marking definitions are always served: they are what lets anyone read the others.
    tlp = Tlp.CLEAR if stix_type == "marking-definition" else markings.level_of(untrusted)
    # Kept whatever the level: an unmarked object is RED where its collection's default is.
    recipients = markings.recipients_of(untrusted)
    return StixObject(untrusted["id"], stix_type, spec_version, version, version_us, untrusted,
                      encode(untrusted), tlp, recipients)


def encode(obj: dict) -> bytes:
    """Return the stored form of a valid object: JSON with sorted keys."""
    try:
        return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError as exc:  # e.g. nested deeper than the encoder goes
        raise InvalidObject(f"the object cannot be stored as JSON: {exc}") from None


def _check_type_and_id(obj: dict) -> str:
    stix_type = obj.get("type")
    if not isinstance(stix_type, str) or not TYPE_NAME.match(stix_type):
        raise InvalidObject("property 'type' must be 3-250 characters of a-z, 0-9 and single hyphens")
    if stix_type == "bundle":
        raise InvalidObject("a bundle cannot be stored as an object; send its objects")
    identifier = obj.get("id")
    if not isinstance(identifier, str):
        raise InvalidObject("property 'id' is required and must be a string")
    match = IDENTIFIER.match(identifier)
    if match is None:
        raise InvalidObject(f"id {show(identifier)} is not of the form type--UUID (RFC 4122)")
    if match.group(1) != stix_type:
        raise InvalidObject(f"id {identifier!r} does not match type {stix_type!r}")
    return stix_type


def _check_property_names(obj: dict) -> None:
    for name in obj:
        if not PROPERTY_NAME.match(name):
            raise InvalidObject(f"property name {show(name, 80)} must be 1-250 characters of a-z, A-Z, 0-9 and _")


def _check_spec_version(obj: dict, stix_type: str) -> str:
    value = obj.get("spec_version")
    if value is None and not vocab.needs_spec_version(stix_type):
        return vocab.SPEC_VERSION
    if value != vocab.SPEC_VERSION:
        if value is None:
            raise InvalidObject("property 'spec_version' is required (\"2.1\")")
        raise InvalidObject(
            f"spec_version {show(value, 20)} is not supported: this collection stores STIX 2.1 "
            "(upgrade 2.0 content with `communique import`)")
    return value


def _check_required(obj: dict, stix_type: str) -> None:
    wanted: tuple = vocab.REQUIRED.get(stix_type, ())
    if vocab.needs_created_modified(stix_type):
        wanted = ("created", "modified") + wanted
    elif stix_type == "marking-definition":
        wanted = ("created",) + wanted
    for item in wanted:
        if isinstance(item, tuple):
            if not any(name in obj for name in item):
                raise InvalidObject(f"{stix_type} needs at least one of: {', '.join(item)}")
        elif item not in obj:
            raise InvalidObject(f"property {item!r} is required on {stix_type}")
    if stix_type == "malware":
        if not isinstance(obj["is_family"], bool):
            raise InvalidObject("property 'is_family' must be true or false")
        if obj["is_family"] and "name" not in obj:
            raise InvalidObject("a malware family (is_family true) needs a 'name'")
    if stix_type == "marking-definition" and "definition_type" in obj and "definition" not in obj:
        raise InvalidObject("a marking-definition with 'definition_type' needs a 'definition'")


def _check_timestamps(obj: dict, stix_type: str) -> dict[str, int]:
    instants: dict[str, int] = {}
    for name in vocab.TIMESTAMPS.intersection(obj):
        try:
            instants[name] = timestamps.parse(obj[name])
        except ValueError as exc:
            raise InvalidObject(f"property {name!r}: {exc}") from None
    for earlier, later in vocab.ORDERED_PAIRS:
        if earlier in instants and later in instants and instants[later] < instants[earlier]:
            raise InvalidObject(f"{later!r} ({obj[later]}) is earlier than {earlier!r} ({obj[earlier]})")
    if stix_type == "indicator" and "valid_until" in instants and instants["valid_until"] == instants["valid_from"]:
        raise InvalidObject("'valid_until' must be later than 'valid_from'")
    return instants


def _check_common(obj: dict) -> None:
    for name, value in obj.items():
        if name.endswith("_ref"):
            _check_reference(name, value)
        elif name.endswith("_refs"):
            if not isinstance(value, list):
                raise InvalidObject(f"property {name!r} must be a list of identifiers")
            for item in value:
                _check_reference(name, item)
    created_by = obj.get("created_by_ref")
    if created_by is not None and not created_by.startswith("identity--"):
        raise InvalidObject("'created_by_ref' must refer to an identity")
    for name in obj.get("object_marking_refs", ()):
        if not name.startswith("marking-definition--"):
            raise InvalidObject("'object_marking_refs' must refer to marking-definition objects")
    if "revoked" in obj and not isinstance(obj["revoked"], bool):
        raise InvalidObject("property 'revoked' must be true or false")
    confidence = obj.get("confidence")
    if confidence is not None and (type(confidence) is not int or not 0 <= confidence <= 100):
        raise InvalidObject("property 'confidence' must be an integer from 0 to 100")
    _check_string_list(obj, "labels")
    _check_external_references(obj.get("external_references"))
    _check_granular_markings(obj.get("granular_markings"))
    if "extensions" in obj and not isinstance(obj["extensions"], dict):
        raise InvalidObject("property 'extensions' must be a JSON object")


def _check_reference(name: str, value: object) -> None:
    if not isinstance(value, str) or IDENTIFIER.match(value) is None:
        raise InvalidObject(f"property {name!r} holds {show(value)}, which is not a STIX identifier")


def _check_string_list(obj: dict, name: str) -> None:
    value = obj.get(name)
    if value is not None and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
        raise InvalidObject(f"property {name!r} must be a list of strings")


def _check_external_references(value: object) -> None:
    if value is None:
        return
    if not isinstance(value, list):
        raise InvalidObject("property 'external_references' must be a list")
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("source_name"), str):
            raise InvalidObject("each external reference needs a 'source_name' string")


def _check_granular_markings(value: object) -> None:
    if value is None:
        return
    if not isinstance(value, list):
        raise InvalidObject("property 'granular_markings' must be a list")
    for item in value:
        if not isinstance(item, dict):
            raise InvalidObject("each granular marking must be a JSON object")
        selectors = item.get("selectors")
        if not isinstance(selectors, list) or not selectors or not all(isinstance(s, str) for s in selectors):
            raise InvalidObject("each granular marking needs a non-empty 'selectors' list of strings")
        if "marking_ref" not in item and "lang" not in item:
            raise InvalidObject("each granular marking needs 'marking_ref' or 'lang'")
        if "marking_ref" in item:
            _check_reference("marking_ref", item["marking_ref"])
            if not item["marking_ref"].startswith("marking-definition--"):
                raise InvalidObject("a granular marking's 'marking_ref' must refer to a marking-definition")
        if "lang" in item and not isinstance(item["lang"], str):
            raise InvalidObject("a granular marking's 'lang' must be a string")


def _check_indicator(obj: dict) -> None:
    pattern, pattern_type = obj["pattern"], obj["pattern_type"]
    if not isinstance(pattern, str) or not isinstance(pattern_type, str):
        raise InvalidObject("'pattern' and 'pattern_type' must be strings")
    if pattern_type == "stix":
        problem = patterns.problem(pattern)
        if problem:
            raise InvalidObject(f"pattern does not parse: {problem}")


def _check_count(value: object) -> None:
    if value is not None and (type(value) is not int or not 0 <= value <= 999_999_999):
        raise InvalidObject("property 'count' must be an integer from 0 to 999,999,999")
