"""A MISP event in MISP's JSON form, written attribute by attribute.

One event (``{"Event": {…}}``) tagged with the export's TLP level (``tlp:amber``,
``tlp:amber+strict``…); one attribute per value, ``to_ids`` set, tagged with its own
indicator's level, its comment naming the indicator, its producer and score.
Attribute types: ``ip-dst`` (``ip-src`` for a ``src_ref``), ``domain``, ``url``,
``email`` (``email-src`` for a sender), ``md5``/``sha1``/``sha256``/``sha512`` and
``x509-fingerprint-*``. Ids are derived, not drawn: the event's from the source and
time of the export, an attribute's from its indicator, type and value, so a
re-export updates rather than duplicates what MISP holds.

MISP refuses two attributes of one type and value in one event, so a value met
again (from another indicator) is left out; the (type, value) pairs written are
held in memory for that, for the length of the export. The MISP library's own
STIX converter is not used: it holds a whole bundle in memory and converts about a
thousand indicators a second, too slow and too large for a million.
"""

from __future__ import annotations

import datetime
import uuid
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, BinaryIO

import orjson

from communique.detect.exports.bundle import NAMESPACE
from communique.detect.exports.common import Entry, Heading, each_entry, one_line

if TYPE_CHECKING:
    from communique.detect.exports import Item

TYPES = {"ipv4": "ip-dst", "ipv6": "ip-dst", "ipv4-net": "ip-dst", "ipv6-net": "ip-dst",
         "domain": "domain", "url": "url", "email": "email", "md5": "md5", "sha1": "sha1",
         "sha256": "sha256", "sha512": "sha512", "x509-md5": "x509-fingerprint-md5",
         "x509-sha1": "x509-fingerprint-sha1", "x509-sha256": "x509-fingerprint-sha256"}
BY_ROLE = {("ip-dst", "src"): "ip-src", ("email", "src"): "email-src"}
_PAYLOAD = frozenset({"md5", "sha1", "sha256", "sha512"})


def write(items: Iterable[Item], out: BinaryIO, heading: Heading) -> int:
    """Write one MISP event holding the items' values; return the number of attributes."""
    seconds = str(heading.generated_us // 1_000_000)
    event = {
        "uuid": str(uuid.uuid5(NAMESPACE, f"misp\n{heading.source}\n{heading.generated_us}")),
        "info": f"Communique export from {one_line(heading.source) or 'Communique'} "
                f"({heading.level.label})",
        "date": datetime.datetime.fromtimestamp(heading.generated_us // 1_000_000,
                                                datetime.UTC).date().isoformat(),
        "timestamp": seconds, "published": False, "analysis": "2", "threat_level_id": "4",
        "distribution": "0", "Tag": [{"name": f"tlp:{heading.level.word}"}],
    }
    opening = orjson.dumps({"Event": event})[:-2]  # without the closing "}}"
    out.write(opening + b',"Attribute":[')
    seen: set[tuple[str, str]] = set()
    written = 0
    for item, entry in each_entry(items, heading.level, Counter()):
        attribute = _attribute(item, entry, seconds)
        key = (attribute["type"], attribute["value"])
        if key in seen:
            continue
        seen.add(key)
        out.write((b",\n" if written else b"\n") + orjson.dumps(attribute))
        written += 1
    out.write(b"\n]}}\n")
    return written


def _attribute(item: Item, entry: Entry, seconds: str) -> dict:
    kind = TYPES[entry.kind]
    kind = BY_ROLE.get((kind, entry.role), kind)
    comment = f"{one_line(item.name, 500) or 'Unnamed'} ({item.id}"
    comment += f", from {one_line(item.producer)}" if item.producer else ""
    return {
        "uuid": str(uuid.uuid5(NAMESPACE, f"attribute\n{item.id}\n{kind}\n{entry.value}")),
        "type": kind, "category": "Payload delivery" if kind in _PAYLOAD else "Network activity",
        "value": entry.value, "to_ids": True, "distribution": "5", "timestamp": seconds,
        "comment": f"{comment}, score {item.score:.0f})",
        "Tag": [{"name": f"tlp:{item.level.word}"}],
    }
