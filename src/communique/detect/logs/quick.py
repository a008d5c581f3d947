"""What a ``Record`` makes of one value, worked out quickly for the commonest shapes.

``derive(role, value)`` returns the (path, value) pairs and the notes a Record gets
from one call (see ``collect.apply_role``) when the value has a shape whose outcome
is plain: a dotted-quad address, a host name, a port number, an http(s) URL with a
plain host, a hash, a mail address. Otherwise it returns None, and the caller runs
a Record. Logs are full of values seen once (ports, URLs, hashes), so this is what
a fast scan spends its time on; a test checks that both ways agree.
"""

from __future__ import annotations

import re

from communique.detect.columns import NOTHING, Derived
from communique.detect.logs import observables
from communique.detect.logs.record import BAD_ADDRESS, BAD_HASH, BAD_PORT

V4 = observables.DOTTED_QUAD
# "http://" or "https://", a lower-case host holding a dot, then the path, query or end.
_URL = re.compile(r"https?://([a-z0-9][a-z0-9.-]*\.[a-z0-9.-]*)(?::[0-9]*)?(?=[/?#]|\Z)")
_ABSENT = ("", "-")


def derive(role: tuple, value: object) -> Derived | None:
    """Return what a Record makes of ``value`` given to the call ``role`` names, or None if unsure."""
    kind = role[0]
    if type(value) is not str:
        if kind == "port" and type(value) is int:
            return _port(role[1], value)
        return None
    if kind == "add":
        return NOTHING if value == "" else (((role[1], value),), ())
    if value in _ABSENT:
        return NOTHING
    if kind == "endpoint":
        host = _host(value)
        if host is None:
            return None
        pairs, notes = host
        return (pairs + ((f"network-traffic:{role[1]}_ref.value", value),), ()) if pairs \
            else (pairs, notes)
    if kind == "host":
        return _host(value)
    if kind == "port":
        if value.isdigit() and value.isascii() and len(value) <= 5:
            return _port(role[1], int(value))
        return None
    if kind == "url":
        return _url(value)
    if kind == "hash":
        algorithm = role[1] or observables.hash_algorithm(value)
        if algorithm is None:
            return (), (BAD_HASH,)
        return ((f"{role[2]}:hashes.'{algorithm}'", value),), ()
    if kind == "email":
        address = observables.email_address(value)
        return (((role[1], address),), ()) if address else NOTHING
    if kind == "ip" and V4.match(value):
        return ((observables.IPV4, value),), ()
    if kind == "answer":
        if V4.match(value):
            return ((observables.IPV4, value),), ()
        if ":" not in value and any(c.isalpha() for c in value):  # no IP literal: a name, or nothing
            return (((observables.DOMAIN, value),), ()) if observables.is_hostname(value) else NOTHING
    return None


def _host(text: str) -> Derived | None:
    """What ``add_host`` makes of a dotted quad, or of a text with a letter and no colon."""
    if V4.match(text):
        return ((observables.IPV4, text),), ()
    # With a letter and no colon a text is no IP literal; split_host keeps it as it is
    # when it holds no bracket and no space at either end.
    if ":" in text or "[" in text or text != text.strip() or not any(c.isalpha() for c in text):
        return None
    if observables.is_hostname(text):
        return ((observables.DOMAIN, text),), ()
    return (), (BAD_ADDRESS,)


def _port(side: str, number: int) -> Derived:
    if 0 <= number <= 65535:
        return ((f"network-traffic:{side}_port", number),), ()
    return (), (BAD_PORT,)


def _url(text: str) -> Derived | None:
    """What ``add_url`` makes of an http(s) URL whose host is plain (its first occurrence, too)."""
    found = _URL.match(text)
    if found is None:
        return None
    host = _host(found.group(1))
    if host is None or not host[0]:
        return None
    return ((observables.URL, text),) + host[0], ()
