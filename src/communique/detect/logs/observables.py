"""Recognise what kind of observable a logged string is: an address, a host name, a hash.

These functions classify and cut (a port off a host, the host out of a URL) but
never rewrite what was logged: case, trailing dots and IDN forms are left for
the matcher to normalise.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from urllib.parse import urlsplit

from communique.detect.columns import DOTTED_QUAD

IPV4 = "ipv4-addr:value"
IPV6 = "ipv6-addr:value"
DOMAIN = "domain-name:value"
URL = "url:value"
EMAIL = "email-addr:value"

HASH_BY_LENGTH = {32: "MD5", 40: "SHA-1", 64: "SHA-256", 128: "SHA-512"}

# A host name as logged: no spaces, slashes or URL punctuation, an optional wildcard
# label in front; is_hostname() also wants a letter somewhere ("10.1.2" is no name).
_HOSTNAME = re.compile(r"(?:\*\.)?[^\s/\\@:?#<>\"'()\[\]{},;=|*%]{1,253}\.?\Z")
_HEX = re.compile(r"[0-9A-Fa-f]+\Z")
_ADDR_SPEC = re.compile(r"[^\s<>\"',;:()@]+@[^\s<>\"',;:()@]+\.[^\s<>\"',;:()@]+")


@lru_cache(maxsize=1 << 16)  # logs repeat their addresses: parse each one once
def ip_path(text: str) -> str | None:
    """Return the STIX path for an IP address literal (v4 or v6), or None if it is not one."""
    if not text or len(text) > 64 or not (":" in text or "." in text):
        return None
    if DOTTED_QUAD.match(text):  # the common case, without ipaddress's parsing
        return IPV4
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    return IPV4 if address.version == 4 else IPV6


def split_host(text: str) -> str:
    """Return the host part of "host", "host:port", "[v6]" or "[v6]:port"."""
    text = text.strip()
    if text.startswith("["):
        end = text.find("]")
        return text[1:end] if end > 0 else text
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        if port.isdigit() or not port:
            return host
    return text


def has_port(text: str) -> bool:
    """Tell whether a host as logged carries a port ("example.com:8080", "[::1]:443")."""
    return split_host(text) != text.strip().strip("[]")


@lru_cache(maxsize=1 << 16)
def is_hostname(text: str) -> bool:
    """Tell whether a string can be a DNS name as logged (a wildcard label allowed in front)."""
    return (bool(_HOSTNAME.match(text)) and ".." not in text and not text.startswith(".")
            and any(char.isalpha() for char in text))


def url_host(url: str) -> str | None:
    """Return the host of an absolute URL ("scheme://host..."), or None."""
    if "://" not in url:
        return None
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    if host is None:
        return None
    # urlsplit lower-cases the host; give back the logged spelling.
    start = url.lower().find(host)
    return url[start:start + len(host)] if start >= 0 else host


def hash_algorithm(text: str) -> str | None:
    """Guess a hash's algorithm from the length of its hex digits, or None."""
    if not _HEX.match(text):
        return None
    return HASH_BY_LENGTH.get(len(text))


def email_address(text: str) -> str | None:
    """Return the address in a mail header or envelope value ("Name <a@b.example>"), or None."""
    match = _ADDR_SPEC.search(text)
    return match.group(0) if match else None
