"""What every export format shares: the values worth exporting, the TLP heading, safe text.

An item's values are kept only when they are well formed for their type and narrow
enough to hand to a sensor or a firewall: an address range wider than /8 (IPv4) or
/16 (IPv6), an unspecified, loopback or multicast address, and a domain of a single
label (a whole top-level domain) are left out as too broad, since a producer's
mistake or malice there would block or flag everything. Whatever is left out is
counted by reason, and the formats that allow comments say so in a closing line.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import urlsplit

from communique import timestamps
from communique.stix.markings import Tlp

if TYPE_CHECKING:
    from communique.detect.exports import Item

MIN_PREFIX = {4: 8, 6: 16}
MAX_VALUE = 8192  # characters; longer values are not indicators anyone can match
HANDLING = {
    Tlp.CLEAR: "no limit on disclosure, beyond copyright",
    Tlp.GREEN: "share within your community, never publicly",
    Tlp.AMBER: "share only with those who need to know, in your organisation and its clients",
    Tlp.AMBER_STRICT: "share only with those who need to know, in your organisation alone",
    Tlp.RED: "for the named recipients alone; share with no one",
}
REASONS = {  # why values were left out, as a closing comment words it
    "not plain": "indicators whose pattern is not plain value lookups",
    "above level": "items above the export's TLP level, or TLP:RED",
    "unsupported": "values of object paths no format here carries",
    "malformed": "values not well formed for their type",
    "too broad": "values too broad to act on (wide ranges, loopback, top-level domains)",
}
HASH_KINDS = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-512": "sha512"}
_HEX_LENGTH = {"md5": 32, "sha1": 40, "sha256": 64, "sha512": 128}
_ADDRESS_PATHS = {"ipv4-addr:value": "", "ipv6-addr:value": "",
                  "network-traffic:dst_ref.value": "dst", "network-traffic:src_ref.value": "src"}
_EMAIL_PATHS = {"email-addr:value": "", "email-message:from_ref.value": "src",
                "email-message:sender_ref.value": "src"}
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_ATEXT = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+")
_HEX = re.compile(r"[0-9a-f]+")


@dataclass(frozen=True, slots=True)
class Entry:
    """One value to export: its kind (``ipv4``, ``domain``, ``sha256``…), the value, its role."""

    kind: str
    value: str
    role: str = ""  # "src" or "dst" when the path says which end; else ""


@dataclass(frozen=True, slots=True)
class Heading:
    """What an export says about itself: its TLP level, when and where it was made."""

    level: Tlp
    generated_us: int
    source: str

    def comments(self, what: str) -> list[str]:
        """Return the heading's comment lines (without comment marks) for an export of ``what``."""
        made = timestamps.format_ms(self.generated_us)
        return [f"{self.level.label} - {HANDLING[self.level]}",
                f"{what} from {one_line(self.source) or 'Communique'}, made by Communique at {made}"]


def entries(item: Item, level: Tlp, left_out: Counter[str]) -> list[Entry]:
    """Return an item's values fit to export, counting in ``left_out`` those dropped and why."""
    if item.level > level or item.level >= Tlp.RED:
        left_out["above level"] += 1
        return []
    if not item.values:
        left_out["not plain"] += 1
        return []
    found: dict[Entry, None] = {}
    for path, untrusted in item.values:
        entry = classify(path, untrusted)
        if isinstance(entry, Entry):
            found.setdefault(entry)
        else:
            left_out[entry] += 1
    return list(found)


def classify(path: str, untrusted: object) -> Entry | str:
    """Return the entry for one (path, value), or the reason it is left out."""
    if not isinstance(untrusted, str):
        return "unsupported"
    if len(untrusted) > MAX_VALUE:
        return "malformed"
    if path in _ADDRESS_PATHS:
        entry = address(untrusted, _ADDRESS_PATHS[path])
        if isinstance(entry, str) and entry == "malformed" and path.startswith("network-traffic"):
            return domain(untrusted, _ADDRESS_PATHS[path])  # a *_ref may name a domain
        return entry
    if path == "domain-name:value":
        return domain(untrusted)
    if path == "url:value":
        return url(untrusted)
    if path in _EMAIL_PATHS:
        return email(untrusted, _EMAIL_PATHS[path])
    kind, _, algorithm = path.partition(":hashes.")
    algorithm = HASH_KINDS.get(algorithm.strip("'").upper(), "")
    if algorithm and kind in ("file", "x509-certificate"):
        value = untrusted.strip().lower()
        if len(value) != _HEX_LENGTH[algorithm] or not _HEX.fullmatch(value):
            return "malformed"
        return Entry(algorithm if kind == "file" else f"x509-{algorithm}", value)
    return "unsupported"


def address(text: str, role: str = "") -> Entry | str:
    """Return an address or range entry, or why it is left out."""
    try:
        network = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return "malformed"
    if network.prefixlen < MIN_PREFIX[network.version] or network.is_unspecified \
            or network.is_loopback or network.is_multicast:
        return "too broad"
    if network.num_addresses == 1:
        return Entry(f"ipv{network.version}", str(network.network_address), role)
    return Entry(f"ipv{network.version}-net", str(network), role)


def domain(text: str, role: str = "") -> Entry | str:
    """Return a domain entry (ASCII, IDN labels in punycode), or why it is left out."""
    name = text.strip().rstrip(".").lower()
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            return "malformed"
    labels = name.split(".")
    if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        return "malformed"
    if len(labels) < 2:
        return "too broad"
    return Entry("domain", name, role)


def url(text: str) -> Entry | str:
    """Return a URL entry (one with a scheme, a host and no blanks), or why it is left out."""
    value = text.strip()
    if not value or not value.isprintable() or " " in value:  # no control or blank character
        return "malformed"
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises on a port that is not a number
    except ValueError:
        return "malformed"
    if not parts.scheme or not parts.hostname:
        return "malformed"
    return Entry("url", value)


def email(text: str, role: str = "") -> Entry | str:
    """Return an e-mail address entry, or why it is left out."""
    local, at, host = text.strip().rpartition("@")
    if not at or not local or len(local) > 64 or not _ATEXT.fullmatch(local) \
            or local.startswith(".") or local.endswith(".") or ".." in local:
        return "malformed"
    found = domain(host)
    if not isinstance(found, Entry):
        return "malformed"
    return Entry("email", f"{local.lower()}@{found.value}", role)


def one_line(text: str, limit: int = 200) -> str:
    """Return untrusted text on one line: control and separator characters become spaces."""
    text = text[:limit * 2]
    if not text.isprintable():
        text = "".join(c if c.isprintable() else " " for c in text)
    return " ".join(text.split())[:limit]


def ascii_text(text: str, limit: int = 200) -> str:
    """Return untrusted text on one line in printable ASCII (accents dropped, others '?')."""
    text = one_line(text, limit)
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    kept = "".join(c for c in decomposed if not unicodedata.combining(c))
    return kept.encode("ascii", "replace").decode("ascii")


def closing(written: int, noun: str, left_out: Counter[str], extra: dict[str, str]) -> str:
    """Return the closing comment: how many entries were written, what was left out and why."""
    words = {**REASONS, **extra}
    dropped = "; ".join(f"{words[key]}: {left_out[key]}" for key in words if left_out[key])
    return f"{written} {noun}" + (f"; left out: {dropped}" if dropped else "; nothing left out")


class Lines:
    """Lines of text written to a binary stream in batches, as UTF-8."""

    def __init__(self, out: BinaryIO, batch: int = 1000) -> None:
        self.out, self.batch = out, batch
        self.pending: list[str] = []

    def add(self, line: str) -> None:
        """Queue one line (without its newline), writing the batch when it is full."""
        self.pending.append(line)
        if len(self.pending) >= self.batch:
            self.flush()

    def flush(self) -> None:
        """Write the queued lines."""
        if self.pending:
            self.out.write(("\n".join(self.pending) + "\n").encode("utf-8", "replace"))
            self.pending = []


def each_entry(items: Iterable[Item], level: Tlp,
               left_out: Counter[str]) -> Iterator[tuple[Item, Entry]]:
    """Yield (item, entry) for every exportable value of every item, in order."""
    for item in items:
        for entry in entries(item, level, left_out):
            yield item, entry
