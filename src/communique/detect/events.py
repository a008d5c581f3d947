"""What a log record becomes before it is matched: STIX object paths and their values.

Every log format (Zeek, Suricata EVE, proxy and DNS exports, syslog, CEF, JSON
lines) is read into ``Event`` values, so that the indicator engine never knows
where a record came from. A path is written as in a STIX pattern's object path,
``<object type>:<property path>``; the engine looks values up by exactly these
strings. The paths the readers produce (and the engine indexes) are listed in
``PATHS``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

PATHS = (
    "ipv4-addr:value", "ipv6-addr:value",
    "domain-name:value",
    "url:value",
    "email-addr:value",
    "email-message:from_ref.value", "email-message:sender_ref.value",
    "email-message:subject",
    "file:hashes.'MD5'", "file:hashes.'SHA-1'", "file:hashes.'SHA-256'",
    "file:hashes.'SHA-512'", "file:name",
    "network-traffic:src_ref.value", "network-traffic:dst_ref.value",
    "network-traffic:src_port", "network-traffic:dst_port", "network-traffic:protocols[*]",
    "autonomous-system:number",
    "windows-registry-key:key",
    "mutex:name",
    "process:command_line",
    "user-account:user_id",
    "x509-certificate:hashes.'SHA-1'", "x509-certificate:hashes.'SHA-256'",
    "x509-certificate:subject", "x509-certificate:issuer",
)


@dataclass(frozen=True, slots=True)
class Event:
    """One log record: when it happened, where it came from, and its observable values.

    ``values`` maps a path of ``PATHS`` to the values seen there (strings, or integers
    for ports and AS numbers); a record may hold several (a DNS answer's addresses).
    Values are as logged: normalising them (case, URL form) is the engine's job, so
    that indicators and events are normalised by one rule. An address or e-mail
    address that a record holds as a reference (``network-traffic:dst_ref.value``,
    ``email-message:from_ref.value``) is listed under its own type's path too
    (``ipv4-addr:value``, ``email-addr:value``): STIX matches such a path against
    every object of that type in an observation, referenced or not.
    """

    time_us: int | None
    values: Mapping[str, tuple[str | int, ...]]
    source: str = ""  # e.g. "conn.log:1042", for reports


@dataclass
class ReadReport:
    """What reading logs came to: records read, and the ones skipped, by reason."""

    events: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    examples: dict[str, str] = field(default_factory=dict)  # reason -> first "file:line"

    def skip(self, reason: str, where: str) -> None:
        """Count one record that could not be read (never an exception for bad input)."""
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        self.examples.setdefault(reason, where)
