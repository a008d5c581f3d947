"""A Zeek Intel framework file: tab-separated, one indicator a row.

Columns ``indicator indicator_type meta.source meta.desc meta.url``. ``meta.source``
is the producer (the export's source when the producer is unknown); ``meta.desc``
holds the name, the STIX id, the item's TLP level and its score; ``meta.url`` is
left unset (``-``). URLs lose their scheme (Zeek sees ``host/path``, not
``http://host/path``), their user information and fragment. Certificate hashes of
any algorithm are ``Intel::CERT_HASH``; Zeek itself compares the SHA-1 it computes.

Zeek's reader skips every line that starts with ``#`` (but ``#fields``), so the
heading and closing comments are safe anywhere. It reads ``\\xNN`` in a field as
that byte, so a tab, a newline, any other control character and the backslash
itself are written that way and cannot break a row; a field that would read as
Zeek's unset mark (``-``), or a row that would start with ``#``, is escaped the same
way.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import urlsplit, urlunsplit

from communique.detect.exports.common import Heading, Lines, closing, each_entry

if TYPE_CHECKING:
    from communique.detect.exports import Item

TYPES = {"ipv4": "Intel::ADDR", "ipv6": "Intel::ADDR", "ipv4-net": "Intel::SUBNET",
         "ipv6-net": "Intel::SUBNET", "domain": "Intel::DOMAIN", "url": "Intel::URL",
         "email": "Intel::EMAIL", "md5": "Intel::FILE_HASH", "sha1": "Intel::FILE_HASH",
         "sha256": "Intel::FILE_HASH", "sha512": "Intel::FILE_HASH",
         "x509-md5": "Intel::CERT_HASH", "x509-sha1": "Intel::CERT_HASH",
         "x509-sha256": "Intel::CERT_HASH"}
FIELDS = ("indicator", "indicator_type", "meta.source", "meta.desc", "meta.url")
_UNSAFE = re.compile(r"[\\\x00-\x1f\x7f-\x9f]")  # the backslash and control characters


def write(items: Iterable[Item], out: BinaryIO, heading: Heading) -> int:
    """Write a Zeek Intel file for ``items``; return the number of rows."""
    lines, left_out = Lines(out), Counter[str]()
    for text in heading.comments("Zeek Intel framework file"):
        lines.add(f"# {text}")
    lines.add("#fields\t" + "\t".join(FIELDS))
    written = 0
    for item, entry in each_entry(items, heading.level, left_out):
        value = scheme_less(entry.value) if entry.kind == "url" else entry.value
        desc = f"{item.name or 'unnamed'} ({item.id}, {item.level.label}, score {item.score:.0f})"
        row = (value, TYPES[entry.kind], item.producer or heading.source or "Communique", desc)
        lines.add("\t".join(field(text) for text in row) + "\t-")
        written += 1
    lines.add("# " + closing(written, "rows", left_out, {}))
    lines.flush()
    return written


def scheme_less(value: str) -> str:
    """Return a URL as Zeek's HTTP analysis writes it: host, port if any, path and query."""
    parts = urlsplit(value)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(("", host, parts.path, parts.query, "")).removeprefix("//")


def field(text: str) -> str:
    """Return one field with tabs, line breaks, other controls and backslashes as ``\\xNN``."""
    escaped = _UNSAFE.sub(lambda m: "".join(f"\\x{b:02x}" for b in m.group().encode()), text)
    if escaped.startswith("#"):  # a row must not read as a comment
        escaped = "\\x23" + escaped[1:]
    return "\\x2d" if escaped == "-" else escaped  # a lone "-" reads as unset
