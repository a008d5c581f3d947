"""MISP warning lists: values known to be benign or special (private ranges, public
resolvers, top sites, cloud ranges, empty-file hashes), read from the data that the
``pymispwarninglists`` package ships. Nothing is fetched: the lists are the package's.

Matching follows MISP's ``Warninglist::checkValue`` for each list ``type``:

- ``cidr``: the address (or every address of a network) lies in one of the list's networks;
- ``string``: the value equals an entry;
- ``substring``: the value contains an entry;
- ``hostname``: the value's host, or one of its parent domains, equals an entry (MISP
  lowercases entries and trims their dots, so ``.example.com`` flags ``www.example.com``);
- ``regex``: an entry, written as a PCRE ``/pattern/flags``, matches the value.

A list applies to the MISP attribute types named in its ``matching_attributes`` (to
every type when it names none); each ``kind`` of value here stands for a set of those
types. Where Communiqué departs from MISP: comparison ignores case (MISP lowercases
domains and hashes on input); a URL is also checked as its host, and an IPv4-mapped
IPv6 address as its IPv4 address; regex flags Python has no use for (``g``) are ignored;
values longer than ``MAX_SCAN_CHARS`` skip the ``substring`` and ``regex`` lists.
"""

from __future__ import annotations

import ipaddress
import json
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

KINDS = ("ipv4", "ipv6", "domain", "url", "hash", "email", "other")
MAX_SCAN_CHARS = 4096  # longer values skip the linear substring and regex lists
_MAX_HOST_CHARS = 253  # RFC 1035 limit on a domain name

_HASH_TYPES = ("md5", "sha1", "sha224", "sha256", "sha384", "sha512", "sha512/224", "sha512/256",
               "sha3-224", "sha3-256", "sha3-384", "sha3-512", "ssdeep", "imphash", "tlsh",
               "authentihash", "impfuzzy", "pehash", "vhash", "telfhash", "cdhash")
# The MISP attribute types that each kind of value stands for. Composite types
# (domain|ip, ip-dst|port, filename|md5) name composite values, which a STIX
# observable's value never is, so only the plain types choose the lists.
_KIND_TYPES: Mapping[str, frozenset[str]] = {
    "ipv4": frozenset({"ip-src", "ip-dst"}),
    "ipv6": frozenset({"ip-src", "ip-dst"}),
    "domain": frozenset({"domain", "hostname"}),
    "url": frozenset({"url", "uri", "link"}),
    "hash": frozenset(_HASH_TYPES + ("x509-fingerprint-md5", "x509-fingerprint-sha1",
                                     "x509-fingerprint-sha256")),
    "email": frozenset({"email", "email-src", "email-dst", "email-reply-to", "target-email",
                        "whois-registrant-email", "dns-soa-email"}),
}
_PLAIN_TYPES = frozenset().union(*_KIND_TYPES.values())


@dataclass(frozen=True, slots=True)
class Hit:
    """A warning list that a value is on, and the entry that matched."""

    name: str
    description: str
    list_type: str
    match: str = ""


@dataclass(frozen=True, slots=True)
class _List:
    """What is kept of one warning list once its entries are indexed."""

    name: str
    description: str
    type: str
    kinds: frozenset[str]
    size: int


def _kinds(untrusted_types: object) -> frozenset[str]:
    """Return the kinds of value a list's ``matching_attributes`` make it apply to."""
    items = untrusted_types if isinstance(untrusted_types, list) else []
    types = {item for item in items if isinstance(item, str)}
    if not types:
        return frozenset(KINDS)
    kinds = {kind for kind, wanted in _KIND_TYPES.items() if types & wanted}
    if not kinds or any("|" not in name and name not in _PLAIN_TYPES for name in types):
        kinds.add("other")  # it names a plain type no kind stands for (phone-number, …)
    return frozenset(kinds)


def _php_regex(entry: str) -> re.Pattern[str] | None:
    """Compile a PCRE ``/pattern/flags`` entry, or return None if Python cannot."""
    if len(entry) < 2 or entry[0].isalnum() or entry[0].isspace() or entry[0] == "\\":
        return None
    end = entry.rfind(entry[0])
    if end <= 0:
        return None
    flags = 0
    for flag in entry[end + 1:]:
        flags |= {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE}.get(flag, 0)
    try:
        return re.compile(entry[1:end], flags)
    except re.error:
        return None


def shipped_lists() -> Iterator[dict[str, Any]]:
    """Read, one at a time, the warning lists shipped inside the ``pymispwarninglists`` package."""
    root = resources.files("pymispwarninglists") / "data" / "misp-warninglists" / "lists"
    count = 0
    for folder in sorted(root.iterdir(), key=lambda entry: entry.name):
        document = folder / "list.json"
        if document.is_file():
            count += 1
            yield json.loads(document.read_text(encoding="utf-8"))
    if not count:
        raise RuntimeError("pymispwarninglists ships no warning lists: is the package complete?")


def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address \
        | ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """Return the address or network written in ``text``, or None."""
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if "/" not in text:
        return None
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*://", re.IGNORECASE)


def _host_of(url: str) -> str | None:
    """Return a URL's host, lowercased and without port or trailing dot, or None."""
    candidate = url if _SCHEME.match(url) or url.startswith("//") else "//" + url
    try:
        host = urlsplit(candidate).hostname
    except ValueError:
        return None
    host = (host or "").rstrip(".")
    return host if 0 < len(host) <= _MAX_HOST_CHARS else None


_Table = dict[str, tuple[int, ...]]


@dataclass(frozen=True, slots=True)
class _Scan:
    """The substring entries and regexes that apply to one kind of value."""

    entries: tuple[tuple[str, tuple[int, ...]], ...]
    lengths: tuple[int, ...]  # the distinct entry lengths, shortest first
    regexes: tuple[tuple[re.Pattern[str], str, int], ...]


class WarningLists:
    """MISP warning lists, indexed so that a lookup costs a few dictionary probes.

    Built from raw list documents (``name``, ``description``, ``type``, ``list``,
    ``matching_attributes``); ``load()`` builds it once from the lists the package ships.
    Entries that do not parse (a bad network, a regex Python cannot compile) are skipped
    and counted in ``skipped``; so are lists of a type MISP does not define.
    """

    def __init__(self, untrusted_lists: Iterable[Mapping[str, Any]]) -> None:
        self._lists: list[_List] = []
        self._exact: _Table = {}
        self._hosts: _Table = {}
        self._substrings: _Table = {}
        self._regexes: list[tuple[re.Pattern[str], str, int]] = []
        # IP version -> prefix length -> first address of a network (as an int) -> lists
        self._networks: dict[int, dict[int, dict[int, tuple[int, ...]]]] = {4: {}, 6: {}}
        self.skipped = 0
        self._shared: dict[tuple[int, ...], tuple[int, ...]] = {}  # equal tuples stored once
        for raw in untrusted_lists:
            self._add_list(raw)
        self._by_kind = {kind: frozenset(i for i, wl in enumerate(self._lists) if kind in wl.kinds)
                         for kind in KINDS}
        # per IP version, shortest prefix first: (prefix length, bits to clear, networks)
        self._probes = {version: tuple((prefix, (32 if version == 4 else 128) - prefix, table[prefix])
                                       for prefix in sorted(table))
                        for version, table in self._networks.items()}
        self._scans = {kind: self._scan_for(allowed) for kind, allowed in self._by_kind.items()}

    @staticmethod
    def load() -> WarningLists:
        """Return the lists shipped with ``pymispwarninglists``, read and indexed on first call only."""
        global _loaded
        with _loading:
            if _loaded is None:
                _loaded = WarningLists(shipped_lists())
            return _loaded

    # --- building ---

    def _add_list(self, raw: object) -> None:
        """Index one list document, or count it as skipped if it is not one."""
        if not isinstance(raw, Mapping):
            self.skipped += 1
            return
        entries, list_type = raw.get("list"), raw.get("type")
        if not isinstance(entries, list) or list_type not in ("cidr", "string", "substring",
                                                              "hostname", "regex"):
            self.skipped += 1
            return
        index = len(self._lists)
        self._lists.append(_List(name=str(raw.get("name", "")), description=str(raw.get("description", "")),
                                 type=list_type, kinds=_kinds(raw.get("matching_attributes")),
                                 size=len(entries)))
        for entry in entries:
            if not (isinstance(entry, str) and self._add_entry(list_type, entry.strip(), index)):
                self.skipped += 1

    def _add_entry(self, list_type: str, entry: str, index: int) -> bool:
        """Index one entry of a list; return False if it cannot be used."""
        if list_type == "cidr":
            network = _parse_ip(entry if "/" in entry else entry + ("/128" if ":" in entry else "/32"))
            if not isinstance(network, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
                return False
            by_length = self._networks[network.version].setdefault(network.prefixlen, {})
            self._put(by_length, int(network.network_address), index)
            return True
        if list_type == "regex":
            pattern = _php_regex(entry)
            if pattern is not None:
                self._regexes.append((pattern, entry, index))
            return pattern is not None
        key = entry.lower().strip(".") if list_type == "hostname" else entry.lower()
        if key:
            table = {"string": self._exact, "hostname": self._hosts, "substring": self._substrings}[list_type]
            self._put(table, key, index)
        return bool(key)

    def _put(self, table: dict[Any, tuple[int, ...]], key: Any, index: int) -> None:
        """Record that list ``index`` holds ``key``, sharing equal tuples to save memory."""
        held = table.get(key, ())
        if index not in held:
            grown = held + (index,)
            table[key] = self._shared.setdefault(grown, grown)

    def _scan_for(self, allowed: frozenset[int]) -> _Scan:
        """Gather the substring entries and regexes of the allowed lists."""
        entries = tuple((key, held) for key, held in self._substrings.items() if not allowed.isdisjoint(held))
        return _Scan(entries=entries, lengths=tuple(sorted({len(key) for key, _ in entries})),
                     regexes=tuple(r for r in self._regexes if r[2] in allowed))

    # --- facts ---

    def names(self) -> list[str]:
        """Return the names of the lists, sorted."""
        return sorted(wl.name for wl in self._lists)

    def sizes(self) -> dict[str, int]:
        """Return the number of entries each list declares, by list name."""
        return {wl.name: wl.size for wl in self._lists}

    def __len__(self) -> int:
        return len(self._lists)

    # --- lookups ---

    def hits(self, value: str, *, kind: str) -> list[Hit]:
        """Return the lists that flag ``value``, a value of ``kind`` (one of ``KINDS``)."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
        text = value.strip() if isinstance(value, str) else ""
        if not text:
            return []
        found: dict[int, str] = {}
        if kind == "url":
            self._match_url(text, found)
        else:
            self._match(text, kind, found)
        return [self._hit(index, match) for index, match in sorted(found.items())]

    def _hit(self, index: int, match: str) -> Hit:
        """Return the Hit for list ``index``."""
        wl = self._lists[index]
        return Hit(name=wl.name, description=wl.description, list_type=wl.type, match=match)

    def _match(self, text: str, kind: str, found: dict[int, str]) -> None:
        """Record the lists of ``kind`` that flag ``text``."""
        allowed = self._by_kind[kind]
        key = text.lower()
        if kind in ("ipv4", "ipv6"):
            address = _parse_ip(text)
            if address is None:
                return
            self._match_address(address, allowed, found)
            key = str(address)
        elif kind == "domain":
            key = key.rstrip(".")
            self._match_host(key, allowed, found)
        self._record(self._exact.get(key), key, allowed, found)
        self._match_scan(key, text, kind, allowed, found)

    def _match_url(self, text: str, found: dict[int, str]) -> None:
        """Record the lists that flag a URL, or its host as a domain or an address."""
        allowed = self._by_kind["url"]
        key = text.lower()
        host = _host_of(text)
        if host is not None:
            self._match_host(host, allowed, found)
        self._record(self._exact.get(key), key, allowed, found)
        self._match_scan(key, text, "url", allowed, found)
        if host is not None:
            address = _parse_ip(host)
            self._match(host, "domain" if address is None else f"ipv{address.version}", found)

    def _match_address(self, address: Any, allowed: frozenset[int], found: dict[int, str]) -> None:
        """Record the CIDR lists holding ``address``: one probe per prefix length in use."""
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            self._match_address(address.ipv4_mapped, allowed, found)
        if isinstance(address, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
            start, length = int(address.network_address), address.prefixlen
        else:
            start, length = int(address), address.max_prefixlen
        for prefix, clear, networks in self._probes[address.version]:
            if prefix > length:
                break
            network = start >> clear << clear
            held = networks.get(network)
            if held is not None and not allowed.isdisjoint(held):
                entry = str(ipaddress.ip_network((network, prefix)))
                self._record(held, entry, allowed, found)

    def _match_host(self, host: str, allowed: frozenset[int], found: dict[int, str]) -> None:
        """Record the hostname lists holding ``host`` or a parent domain, as MISP walks them."""
        if len(host) > _MAX_HOST_CHARS:
            return
        labels = host.split(".")
        for start in range(len(labels) - 1, -1, -1):
            candidate = ".".join(labels[start:])
            self._record(self._hosts.get(candidate), candidate, allowed, found)

    def _match_scan(self, key: str, text: str, kind: str, allowed: frozenset[int],
                    found: dict[int, str]) -> None:
        """Record the substring and regex lists matching the value; long values skip these."""
        if len(key) > MAX_SCAN_CHARS:
            return
        scan = self._scans[kind]
        if len(scan.entries) <= len(scan.lengths) * len(key):
            for entry, held in scan.entries:  # few entries: test each one
                if entry in key:
                    self._record(held, entry, allowed, found)
        else:
            for length in scan.lengths:  # many entries: probe every slice of each entry length
                for start in range(len(key) - length + 1):
                    piece = key[start:start + length]
                    self._record(self._substrings.get(piece), piece, allowed, found)
        for pattern, source, index in scan.regexes:
            if index not in found and pattern.search(text):
                found[index] = source

    @staticmethod
    def _record(held: tuple[int, ...] | None, entry: str, allowed: frozenset[int],
                found: dict[int, str]) -> None:
        """Note ``entry`` as the match of each allowed list in ``held`` not matched yet."""
        for index in held or ():
            if index in allowed and index not in found:
                found[index] = entry


_loaded: WarningLists | None = None
_loading = threading.Lock()
