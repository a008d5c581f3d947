"""One rule for the form of observable values, applied alike to indicators and to logs.

Addresses compare as addresses (``2001:DB8::1`` is ``2001:db8::1``), domain names
without case, trailing dot or Unicode (IDN as punycode), hashes without case,
e-mail addresses without case, URLs with their scheme and host in lower case, a
default port dropped and percent-escapes in one form. Everything else compares
as written.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit, urlunsplit

IP_PATHS = frozenset({"ipv4-addr:value", "ipv6-addr:value", "network-traffic:src_ref.value",
                      "network-traffic:dst_ref.value"})
_DEFAULT_PORTS = {"http": 80, "https": 443, "ftp": 21}
_PERCENT = re.compile(r"%[0-9a-fA-F]{2}")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def value(path: str, untrusted: object) -> object:
    """Return the comparable form of a value seen at ``path``."""
    if not isinstance(untrusted, str):
        return untrusted
    if path in IP_PATHS:
        return address(untrusted)
    if path == "domain-name:value":
        return domain(untrusted)
    if path == "url:value":
        return url(untrusted)
    if ":hashes." in path or path.endswith("-addr:value") or path.endswith("_ref.value"):
        return untrusted.strip().lower()
    return untrusted


_IPV4 = re.compile(r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}"
                   r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])")


def address(text: str) -> str:
    """Return an IP address in its standard text form (unchanged if it is not one)."""
    if _IPV4.fullmatch(text):  # already standard: the common case, ten times cheaper
        return text
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        return text.strip().lower()


def domain(text: str) -> str:
    """Return a domain name in lower case, without trailing dot, IDN labels as punycode."""
    if text.isascii() and not text.endswith((".", " ")) and text == text.lower() \
            and not text.startswith(" "):
        return text
    name = text.strip().rstrip(".").lower()
    if name.isascii():
        return name
    try:
        return name.encode("idna").decode("ascii")
    except UnicodeError:
        return name


def url(text: str) -> str:
    """Return a URL with scheme and host in lower case, no default port, escapes in one form."""
    text = text.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return text
    if not parts.scheme or not parts.hostname:
        return text
    scheme = parts.scheme.lower()
    host = domain(parts.hostname) if not parts.hostname.startswith("[") else parts.hostname
    if ":" in host:
        host = f"[{address(host)}]"
    elif host.replace(".", "").isdigit():
        host = address(host)
    netloc = host if port is None or port == _DEFAULT_PORTS.get(scheme) else f"{host}:{port}"
    if parts.username is not None:
        credentials = parts.username + (f":{parts.password}" if parts.password is not None else "")
        netloc = f"{credentials}@{netloc}"
    path = _escapes(parts.path) or "/"
    return urlunsplit((scheme, netloc, path, _escapes(parts.query), parts.fragment))


def _escapes(text: str) -> str:
    """Write percent-escapes in upper case, and decode the ones of unreserved characters."""
    def one(match: re.Match) -> str:
        char = chr(int(match.group(0)[1:], 16))
        return char if char in _UNRESERVED else match.group(0).upper()
    return _PERCENT.sub(one, text)
