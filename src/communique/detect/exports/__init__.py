"""Indicators written out for network sensors, SIEMs, firewalls and other sharing tools.

Pure formatters: the caller selects the indicators (never TLP:RED) and hands them
over as ``Item`` values; ``write`` streams one format to a binary stream and says
how many entries it wrote. Every format carries the export's TLP level, the highest
of its items (computed by the caller):

=========== ========================================== ====================================
format      what                                       where the TLP level is
=========== ========================================== ====================================
suricata    Suricata 7 rules                           first comment line; each rule's msg
zeek-intel  Zeek Intel framework file                  first comment line; each meta.desc
csv         value,type,indicator_id,name,tlp,...       a ``tlp`` column (each row's own)
stix        a STIX 2.1 bundle of the indicators        each object's own markings
misp        a MISP event                               the event's tag, each attribute's
plain       one value a line, types may be mixed       first comment line
=========== ========================================== ====================================

Items whose level is above ``level`` are left out rather than under-labelled.
Formats that need all their values at once to be correct say so in their module:
``misp`` and ``plain`` keep the values already written (to drop repeats),
``suricata`` the rule ids already given (to resolve collisions); nothing else is
held in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import BinaryIO

from communique.detect.exports import bundle, csvfile, misp, plain, suricata, zeek
from communique.detect.exports.common import Heading
from communique.errors import BadRequest
from communique.stix.markings import Tlp


@dataclass(frozen=True, slots=True)
class Item:
    """One indicator to export, as the caller selected it."""

    id: str  # indicator--uuid
    body: bytes  # the indicator's stored STIX JSON
    level: Tlp  # its TLP level (never RED)
    values: tuple[tuple[str, str | int], ...]  # (path, normalised value); () if not plain
    score: float  # current decay score, 0-100
    name: str  # indicator name or ''
    producer: str  # organisation that produced it, '' if unknown


Writer = Callable[[Iterable[Item], BinaryIO, Heading], int]


@dataclass(frozen=True, slots=True)
class Format:
    """An export format: how to write it and how to serve it."""

    name: str
    media_type: str
    extension: str
    writer: Writer


FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("suricata", "text/plain; charset=utf-8", "rules", suricata.write),
    Format("zeek-intel", "text/plain; charset=utf-8", "intel", zeek.write),
    Format("csv", "text/csv; charset=utf-8; header=present", "csv", csvfile.write),
    Format("stix", "application/stix+json;version=2.1", "json", bundle.write),
    Format("misp", "application/json", "misp.json", misp.write),
    Format("plain", "text/plain; charset=utf-8", "txt", plain.write),
)}


def write(format: str, items: Iterable[Item], out: BinaryIO, *, level: Tlp,
          generated_us: int, source: str) -> int:
    """Write ``items`` to ``out`` in ``format``; return how many entries were written."""
    chosen = FORMATS.get(format)
    if chosen is None:
        raise BadRequest(f"{format!r} is not an export format ({', '.join(FORMATS)})")
    if level >= Tlp.RED:
        raise BadRequest("TLP:RED indicators are never exported in bulk")
    return chosen.writer(items, out, Heading(level, generated_us, source))
