"""Upgrade STIX 2.0 content to STIX 2.1, so public 2.0 data sets (MITRE ATT&CK) load as is.

What changed between the versions, for objects that survive into 2.1:
- every SDO, SRO and marking definition carries ``spec_version: "2.1"``;
- the required ``labels`` of indicators, malware, tools, threat actors and reports
  became the typed vocabularies ``indicator_types``, ``malware_types``, …;
- malware gained the required ``is_family``; indicators the required ``pattern_type``.
Objects already in 2.1 pass through unchanged.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator

from communique.errors import BadRequest
from communique.stix import vocabulary as vocab

_LABELS_BECAME = {
    "indicator": "indicator_types",
    "malware": "malware_types",
    "tool": "tool_types",
    "threat-actor": "threat_actor_types",
    "report": "report_types",
}


def objects_of(document: object) -> tuple[list[Any], str | None]:
    """Return the objects of a bundle, envelope or plain list, with the bundle's spec_version."""
    if isinstance(document, list):
        return document, None
    if isinstance(document, dict):
        if "objects" in document:
            objects = document["objects"]
            if not isinstance(objects, list):
                raise BadRequest("the 'objects' of a bundle or envelope must be a list of STIX objects")
            version = document.get("spec_version")
            return objects, version if isinstance(version, str) else None
        if document.get("type") == "bundle":
            return [], None
        if "type" in document and "id" in document:
            return [document], None
    raise BadRequest("expected a STIX bundle, a TAXII envelope or a JSON list of STIX objects")


def is_stix20(obj: dict, bundle_version: str | None) -> bool:
    """Return whether ``obj`` is written in STIX 2.0."""
    if "spec_version" in obj:
        return obj["spec_version"] == "2.0"
    if bundle_version == "2.0":
        return True
    return obj.get("type") not in vocab.CYBER_OBSERVABLES


def upgrade_object(obj: dict) -> dict:
    """Return a STIX 2.1 copy of one STIX 2.0 object."""
    new = dict(obj)
    new["spec_version"] = vocab.SPEC_VERSION
    stix_type = new.get("type")
    target = _LABELS_BECAME.get(stix_type)  # type: ignore[arg-type]
    if target and "labels" in new and target not in new:
        new[target] = new.pop("labels")
    if stix_type == "malware":
        new.setdefault("is_family", True)
    elif stix_type == "indicator":
        new.setdefault("pattern_type", "stix")
    return new


def upgrade(objects: Iterable[Any], bundle_version: str | None) -> Iterator[Any]:
    """Yield each object upgraded to 2.1 where it is 2.0; anything else unchanged."""
    for obj in objects:
        if isinstance(obj, dict) and is_stix20(obj, bundle_version):
            yield upgrade_object(obj)
        else:
            yield obj
