"""A STIX 2.1 bundle of the indicators as stored, written as it is read.

Every indicator at or below the export's level is exported, plain pattern or not
(the other formats carry only plain lookups), with its own markings untouched;
the TLP 2.0 marking definitions that the objects refer to follow them at the end of
the bundle, so that a consumer holds the definitions of the markings it must
honour. A stored body that is not a JSON object with a ``type`` and an ``id`` is
left out, so one damaged row cannot break the bundle. The bundle id is derived
from the source and the time of the export.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, BinaryIO

import orjson

from communique.detect.exports.common import Heading
from communique.stix.markings import TLP2_IDS, Tlp, definitions

if TYPE_CHECKING:
    from communique.detect.exports import Item

NAMESPACE = uuid.UUID("e4e8522e-58ea-48c0-adf3-2f866980ca6e")  # of ids made by exports


def write(items: Iterable[Item], out: BinaryIO, heading: Heading) -> int:
    """Write a STIX 2.1 bundle of the items' bodies; return the number of indicators."""
    bundle_id = uuid.uuid5(NAMESPACE, f"bundle\n{heading.source}\n{heading.generated_us}")
    out.write(b'{"type":"bundle","id":"bundle--%s","objects":[' % str(bundle_id).encode())
    written, referred = 0, set()
    for item in items:
        if item.level > heading.level or item.level >= Tlp.RED:
            continue
        try:
            obj = orjson.loads(item.body)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(obj, dict) or not isinstance(obj.get("type"), str) \
                or not isinstance(obj.get("id"), str):
            continue
        referred.update(_markings(obj))
        out.write((b",\n" if written else b"\n") + item.body.strip())
        written += 1
    tlp2 = set(TLP2_IDS.values())
    for marking in definitions():
        if marking["id"] in referred & tlp2:
            out.write(b",\n" + orjson.dumps(marking))  # only written objects refer to them
    out.write(b"\n]}\n")
    return written


def _markings(obj: dict) -> set[str]:
    """Return the marking ids an object refers to, whole or granular."""
    refs = {r for r in obj.get("object_marking_refs") or () if isinstance(r, str)}
    for granular in obj.get("granular_markings") or ():
        if isinstance(granular, dict) and isinstance(granular.get("marking_ref"), str):
            refs.add(granular["marking_ref"])
    return refs
