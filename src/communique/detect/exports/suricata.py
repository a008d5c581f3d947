"""Suricata 7 rules: addresses, domains, URLs and certificate fingerprints.

Per indicator:

- addresses and ranges: ``alert ip [a,b,…] any <> any any`` (both directions), as
  many per rule as fit in ``MAX_LINE`` bytes, Suricata's limit for one rule line;
- a domain: three exact, case-blind matches, on ``dns.query``, ``tls.sni`` and
  ``http.host`` (``bsize`` makes ``content`` exact);
- an http(s) URL: ``http.host`` and the path and query, exact, on ``http.uri`` (or on
  ``http.uri.raw``, case-blind, when the URL holds percent-escapes, which Suricata
  decodes in ``http.uri``); other schemes are left out;
- an X.509 certificate SHA-1: ``tls.cert_fingerprint``.

File hashes are left out: Suricata matches them only from list files
(``filemd5``/``filesha256`` name a file), which one rule stream cannot carry; so are
e-mail addresses and certificate hashes other than SHA-1, which no Suricata 7 keyword
matches. The closing comment counts what was left out.

Rule ids: ``sid`` is ``SID_FIRST`` plus a hash of (indicator id, rule kind, value),
modulo ``SID_COUNT`` — a private range no public rule set uses. Two rules whose sid
would collide take the next free one (the later rule moves), so a sid is stable
from one export to the next as long as the caller keeps its items in a stable
order. The sids given are kept in a set for the length of the export.

Untrusted text never reaches a rule unescaped: ``msg`` and ``metadata`` hold
printable ASCII without ``" ; \\`` (names are cleaned, not escaped), and ``content``
shows every byte outside a safe set as ``|XX|``.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import urlsplit

from communique.detect.exports.common import (
    Entry,
    Heading,
    Lines,
    ascii_text,
    closing,
    entries,
)

if TYPE_CHECKING:
    from communique.detect.exports import Item

SID_FIRST = 1_000_000_000
SID_COUNT = 1_000_000_000  # sids 1,000,000,000 to 1,999,999,999
MAX_LINE = 8000  # Suricata reads a rule line into 8,192 bytes
MAX_CONTENT = 2048  # bytes; Suricata 7 with Hyperscan refuses a content past 4,000
_UNSAFE = re.compile(rb"[^A-Za-z0-9\-._~/?=&%+,!*'()@$:\[\]{}#^`<> ]")  # shown as |XX|
_ID = re.compile(r"[a-z0-9-]{1,250}--[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_METADATA = re.compile(r"[^A-Za-z0-9_.+-]+")
SKIPPED = {
    "file hash": "file hashes (Suricata matches them from list files, not rule text)",
    "email": "e-mail addresses (no Suricata 7 keyword matches them)",
    "certificate hash": "certificate hashes other than SHA-1 (tls.cert_fingerprint is SHA-1)",
    "scheme": "URLs of schemes other than http and https",
    "bad id": "items whose id is not a STIX identifier",
    "too long": f"values too long for a rule (over {MAX_CONTENT:,} bytes)",
}


def write(items: Iterable[Item], out: BinaryIO, heading: Heading) -> int:
    """Write Suricata 7 rules for ``items``; return the number of rules."""
    lines, left_out, sids = Lines(out), Counter[str](), set[int]()
    for text in heading.comments("Suricata 7 rules"):
        lines.add(f"# {text}")
    lines.add(f"# rule ids (sid) {SID_FIRST:,} to {SID_FIRST + SID_COUNT - 1:,}")
    written = 0
    for item in items:
        found = entries(item, heading.level, left_out)
        if found and not _ID.fullmatch(item.id):
            left_out["bad id"] += 1
            continue
        for rule in rules(item, found, sids, left_out):
            lines.add(rule)
            written += 1
    lines.add("# " + closing(written, "rules", left_out, SKIPPED))
    lines.flush()
    return written


def rules(item: Item, found: list[Entry], sids: set[int], left_out: Counter[str]) -> list[str]:
    """Return the rules for one item's entries."""
    labels = _labels(item)
    made: list[str | None] = []
    addresses = [e.value for e in found if e.kind.startswith("ipv")]
    made.extend(_address_rules(item.id, labels, addresses, sids))
    for entry in found:
        if entry.kind == "domain":
            made.extend(_domain_rules(item.id, labels, entry.value, sids))
        elif entry.kind == "url":
            made.extend(_url_rules(item.id, labels, entry.value, sids, left_out))
        elif entry.kind == "x509-sha1":
            fingerprint = ":".join(entry.value[i:i + 2] for i in range(0, 40, 2))
            made.append(_rule(labels, "tls", [("tls.cert_fingerprint", fingerprint, False)],
                              _sid(sids, item.id, "cert", entry.value)))
        elif entry.kind.startswith("x509-"):
            left_out["certificate hash"] += 1
        elif entry.kind == "email":
            left_out["email"] += 1
        elif not entry.kind.startswith("ipv"):
            left_out["file hash"] += 1
    kept = [rule for rule in made if rule is not None and len(rule.encode()) < MAX_LINE]
    left_out["too long"] += len(made) - len(kept)
    return kept


def _address_rules(indicator_id: str, labels: tuple[str, str], addresses: list[str],
                   sids: set[int]) -> list[str | None]:
    budget = MAX_LINE - len(_options(labels, SID_FIRST).encode()) - 40
    groups: list[list[str]] = []
    size = budget
    for value in addresses:  # ASCII: one character, one byte
        if size + len(value) + 1 > budget:
            groups.append([])
            size = 0
        groups[-1].append(value)
        size += len(value) + 1
    return [f"alert ip [{','.join(group)}] any <> any any "
            f"({_options(labels, _sid(sids, indicator_id, 'ip', group[0]))})" for group in groups]


def _domain_rules(indicator_id: str, labels: tuple[str, str], name: str,
                  sids: set[int]) -> list[str | None]:
    return [_rule(labels, "dns", [("dns.query", name, True)], _sid(sids, indicator_id, "dns", name)),
            _rule(labels, "tls", [("tls.sni", name, True)], _sid(sids, indicator_id, "sni", name)),
            # Suricata lower-cases http.host itself, and refuses nocase on it
            _rule(labels, "http", [("http.host", name, False)],
                  _sid(sids, indicator_id, "host", name))]


def _url_rules(indicator_id: str, labels: tuple[str, str], value: str, sids: set[int],
               left_out: Counter[str]) -> list[str | None]:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        left_out["scheme"] += 1
        return []
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    buffer = "http.uri.raw" if "%" in target else "http.uri"
    matches = [("http.host", parts.hostname, False), (buffer, target, buffer == "http.uri.raw")]
    return [_rule(labels, "http", matches, _sid(sids, indicator_id, "url", value))]


def _rule(labels: tuple[str, str], protocol: str, matches: list[tuple[str, str, bool]],
          sid: int) -> str | None:
    """Return one rule matching each (sticky buffer, exact text, case-blind) in turn."""
    if any(len(text.encode()) > MAX_CONTENT for _, text, _ in matches):
        return None
    inspect = " ".join(f'{buffer}; content:"{content(text)}";{" nocase;" if nocase else ""} '
                       f"bsize:{len(text.encode())};" for buffer, text, nocase in matches)
    return f"alert {protocol} any any -> any any ({_options(labels, sid, inspect)})"


def _labels(item: Item) -> tuple[str, str]:
    """Return an item's ``msg`` and ``metadata`` values, cleaned of anything but plain text."""
    name = ascii_text(item.name, 100).replace('"', "'").replace(";", ",").replace("\\", "/")
    msg = f"Communique {item.level.label} {name or item.id}".strip()
    metadata = [f"stix_id {item.id}", f"tlp {item.level.word}", f"score {round(item.score)}"]
    producer = _METADATA.sub("_", ascii_text(item.producer, 60)).strip("_")
    if producer:
        metadata.append(f"producer {producer}")
    return msg, ", ".join(metadata)


def _options(labels: tuple[str, str], sid: int, inspect: str = "") -> str:
    inspect = f"{inspect} " if inspect else ""
    return f'msg:"{labels[0]}"; {inspect}metadata:{labels[1]}; sid:{sid}; rev:1;'


def content(text: str) -> str:
    """Return text for a ``content`` option: unsafe bytes (``" ; \\ |``, non-ASCII) as hex."""
    return _UNSAFE.sub(lambda m: b"|%02X|" % m.group()[0], text.encode("utf-8")).decode("ascii")


def _sid(used: set[int], indicator_id: str, kind: str, value: str) -> int:
    digest = hashlib.blake2b(f"{indicator_id}\n{kind}\n{value}".encode(), digest_size=8).digest()
    offset = int.from_bytes(digest, "big") % SID_COUNT
    while SID_FIRST + offset in used:  # a collision: the later rule takes the next free id
        offset = (offset + 1) % SID_COUNT
    used.add(SID_FIRST + offset)
    return SID_FIRST + offset
