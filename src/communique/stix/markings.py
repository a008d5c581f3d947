"""Traffic Light Protocol markings: an object's TLP level, and who a RED object names.

An object's level is the most restrictive TLP marking it carries, in
``object_marking_refs`` or in any granular marking: we serve whole objects and
never redact a property, so a marking on one property binds the whole object.
The TLP 1.0 marking definitions (STIX 2.1 §7.2.1.4) map onto TLP 2.0 (WHITE is
CLEAR). Only the standard OASIS ids count; no one else may define TLP markings.

A RED object reaches only its producer and the recipients it names, in the
Communiqué recipients extension (a STIX property extension defined by
``extension_definition()``)::

    "extensions": {"extension-definition--1a97b63f-…": {
        "extension_type": "property-extension",
        "recipient_organizations": ["CERT-EU"], "recipient_users": ["duty@cert.example"]}}
"""

from __future__ import annotations

import enum
from typing import Any

from communique.errors import InvalidObject


class Tlp(enum.IntEnum):
    """TLP 2.0 levels, in increasing order of restriction."""

    CLEAR = 0
    GREEN = 1
    AMBER = 2
    AMBER_STRICT = 3
    RED = 4

    @property
    def label(self) -> str:
        return "TLP:" + self.word.upper()

    @property
    def word(self) -> str:
        """The TLP 2.0 extension's spelling: clear, green, amber, amber+strict, red."""
        return self.name.lower().replace("_", "+")

    @classmethod
    def parse(cls, untrusted: str) -> "Tlp":
        """Return the level named by 'amber+strict', 'TLP:RED', 'white' and the like."""
        word = untrusted.strip().lower().removeprefix("tlp:").replace("_", "+")
        word = {"white": "clear"}.get(word, word)
        for level in cls:
            if level.word == word:
                return level
        raise ValueError(f"{untrusted!r} is not a TLP level (clear, green, amber, amber+strict, red)")


TLP2_IDS: dict[Tlp, str] = {
    Tlp.CLEAR: "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    Tlp.GREEN: "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    Tlp.AMBER: "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    Tlp.AMBER_STRICT: "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    Tlp.RED: "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
TLP1_IDS: dict[Tlp, str] = {
    Tlp.CLEAR: "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9",
    Tlp.GREEN: "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
    Tlp.AMBER: "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",
    Tlp.RED: "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed",
}
LEVEL_OF_MARKING: dict[str, Tlp] = {
    **{ref: level for level, ref in TLP2_IDS.items()},
    **{ref: level for level, ref in TLP1_IDS.items()},
}
TLP2_EXTENSION = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"

RECIPIENTS_EXTENSION = "extension-definition--1a97b63f-06a8-4ee3-a22d-7f4d339a07d0"
COMMUNIQUE_IDENTITY = "identity--e8e48d4e-ff44-4053-a3e8-8c33010ff786"
MAX_RECIPIENTS = 500
_RECIPIENT_LISTS = {"recipient_organizations": 200, "recipient_users": 320}  # name: max length


def level_of(raw: dict[str, Any]) -> Tlp | None:
    """Return the most restrictive TLP marking on a (validated) object, or None if unmarked."""
    levels = [LEVEL_OF_MARKING[ref] for ref in raw.get("object_marking_refs") or ()
              if ref in LEVEL_OF_MARKING]
    for marking in raw.get("granular_markings") or ():
        level = LEVEL_OF_MARKING.get(marking.get("marking_ref", ""))
        if level is not None:
            levels.append(level)
    return max(levels) if levels else None


def recipients_of(raw: dict[str, Any]) -> tuple[str, ...]:
    """Return the principals a RED object names: 'org:NAME' and 'user:EMAIL' (lower case)."""
    extension = (raw.get("extensions") or {}).get(RECIPIENTS_EXTENSION)
    if not extension:
        return ()
    named = {"org:" + name for name in extension.get("recipient_organizations", ())}
    named |= {"user:" + email.lower() for email in extension.get("recipient_users", ())}
    return tuple(sorted(named))


def check_recipients(raw: dict[str, Any]) -> None:
    """Raise InvalidObject unless the recipients extension, if present, is well formed."""
    extensions = raw.get("extensions")
    if not isinstance(extensions, dict) or RECIPIENTS_EXTENSION not in extensions:
        return
    extension = extensions[RECIPIENTS_EXTENSION]
    if not isinstance(extension, dict) or extension.get("extension_type") != "property-extension":
        raise InvalidObject("the recipients extension must be a JSON object with "
                            "\"extension_type\": \"property-extension\"")
    unknown = set(extension) - {"extension_type", *_RECIPIENT_LISTS}
    if unknown:
        raise InvalidObject(f"the recipients extension has unknown properties: {', '.join(sorted(unknown))[:200]}")
    total = 0
    for name, longest in _RECIPIENT_LISTS.items():
        value = extension.get(name, [])
        if not isinstance(value, list) or not all(
                isinstance(item, str) and 0 < len(item.strip()) == len(item) <= longest
                for item in value):
            raise InvalidObject(f"'{name}' in the recipients extension must be a list of "
                                f"names of 1 to {longest} characters, without surrounding spaces")
        total += len(value)
    if total > MAX_RECIPIENTS:
        raise InvalidObject(f"a RED object may name at most {MAX_RECIPIENTS} recipients")


def definitions() -> list[dict[str, Any]]:
    """Return what the node publishes: the TLP 2.0 markings and the recipients extension."""
    markings = [{
        "type": "marking-definition", "spec_version": "2.1", "id": ref,
        "created": "2022-10-01T00:00:00.000Z", "name": level.label,
        "extensions": {TLP2_EXTENSION: {"extension_type": "property-extension",
                                        "tlp_2_0": level.word}},
    } for level, ref in TLP2_IDS.items()]
    identity = {
        "type": "identity", "spec_version": "2.1", "id": COMMUNIQUE_IDENTITY,
        "created": "2026-11-27T00:00:00.000Z", "modified": "2026-11-27T00:00:00.000Z",
        "name": "Communiqué", "identity_class": "system",
        "description": "The Communiqué exchange software, author of its STIX extensions.",
    }
    extension = {
        "type": "extension-definition", "spec_version": "2.1", "id": RECIPIENTS_EXTENSION,
        "created_by_ref": COMMUNIQUE_IDENTITY,
        "created": "2026-11-27T00:00:00.000Z", "modified": "2026-11-27T00:00:00.000Z",
        "name": "Communiqué TLP:RED recipients", "version": "1.0.0",
        "extension_types": ["property-extension"],
        "description": "Names who may receive an object marked TLP:RED, besides its producer.",
        "schema": ("A property extension with two optional properties. "
                   "recipient_organizations: a list of organisation names, as registered on "
                   "the node (1-200 characters each). recipient_users: a list of e-mail "
                   "addresses of users (1-320 characters each, compared case-insensitively). "
                   "At most 500 names in all. A Communiqué node serves a TLP:RED object only "
                   "to the organisation that produced it and to the organisations and users "
                   "named here; on objects of any other level the extension has no effect."),
    }
    return [*markings, identity, extension]
