"""Find observables in free text (a syslog message, a CEF ``msg``), conservatively.

What is taken, and how narrowly:

- URLs: ``http://`` or ``https://`` followed by characters that may appear in a
  URL; trailing sentence punctuation (``.,;:!?)]}'"``) is cut off.
- IPv4: four dotted numbers not glued to other digits, letters or dots
  (``v1.2.3.4`` and ``1.2.3.4.5`` are not addresses), accepted by ``ipaddress``.
- IPv6: runs of hex digits and colons with at least two colons (``::1``,
  ``2001:db8::53``), accepted by ``ipaddress``; clock times and MAC addresses are
  not (``10:00:00``, ``00:11:22:33:44:55``), nor is a bare ``::``.
- Host names given by a key, as DNS and proxy daemons log them: ``query: x``,
  ``query[A] x``, ``host=x``, ``hostname=x``, ``domain=x``, ``qname=x``, ``sni=x``,
  ``server_name=x``, ``dhost=x``, ``shost=x``, ``fqdn=x`` (an IP given so is an address).
- Bare names: at least two labels, the last one letters only (2 to 63), not
  preceded by ``@``, ``/`` or ``.`` (not mail addresses, paths or URL parts)
  and not ending in a common file-name extension (``sshd.service``, ``app.log``).
- Mail addresses given as ``from=<a@b.example>``/``to=<…>`` (as mail servers log them).
"""

from __future__ import annotations

import re

from communique.detect.logs import observables
from communique.detect.logs.record import Record

_URL = re.compile(r"\bhttps?://[^\s\"'<>`{}|\\^]+", re.IGNORECASE)
_URL_TAIL = ".,;:!?)]}'\""
_IPV4 = re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?!\w|\.\w)")
_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|\d{1,3}(?:\.\d{1,3}){3})?"
                   r"(?:%[\w.-]+)?(?!\w|\.\w)")
_KEYED_HOST = re.compile(
    r"\b(?:query\[\w+\]\s+|(?:query|qname|host|hostname|domain|fqdn|sni|server_name|servername"
    r"|dhost|shost)\s*[:=]\s*)[\"'<]?([^\s\"'<>,;()\[\]]+)", re.IGNORECASE)
_BARE_NAME = re.compile(r"(?<![\w@/.\\-])(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
                        r"[A-Za-z]{2,63}(?![\w-]|\.\w)")
_MAIL = re.compile(r"\b(?:from|to|orig_to|sender|recipient)=<?([^\s<>,;\"']+@[^\s<>,;\"']+?)>?(?=[\s,;]|\Z)",
                   re.IGNORECASE)
# Last labels that are file-name extensions in logs far more often than top-level domains.
_NOT_TLDS = frozenset(
    "service socket target mount timer slice scope device path swap conf cfg ini log txt pid "
    "lock sock tmp bak old json yaml yml xml html htm php asp aspx jsp cgi pl py rb js css "
    "exe dll sys bat cmd ps1 vbs jar class so dat db sqlite gz bz2 xz tgz rpm deb png jpg gif".split())


def scan(text: str, record: Record) -> None:
    """Add the URLs, addresses, host names and mail addresses found in a text."""
    for match in _URL.finditer(text):
        record.add_url(match.group(0).rstrip(_URL_TAIL))
    for match in _KEYED_HOST.finditer(text):
        _add_name(record, match.group(1).rstrip(_URL_TAIL))
    for match in _IPV4.finditer(text):
        record.add_ip(match.group(0))
    for match in _IPV6.finditer(text):
        candidate = match.group(0)
        if candidate.strip(":") and not record.add_ip(candidate):
            record.add_ip(candidate.rstrip(":"))
    for match in _BARE_NAME.finditer(text):
        name = match.group(0)
        if name.rpartition(".")[2].lower() not in _NOT_TLDS:
            record.add(observables.DOMAIN, name)
    for match in _MAIL.finditer(text):
        record.add_email(match.group(1))


def _add_name(record: Record, text: str) -> None:
    """Add a keyed host value: an address, or a name; anything else is ignored."""
    if record.add_ip(observables.split_host(text)):
        return
    if observables.is_hostname(text):
        record.add(observables.DOMAIN, text)
