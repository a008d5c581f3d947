"""Node settings: one frozen value, filled from one table of (name, default, help).

Every setting is read from an environment variable ``COMMUNIQUE_<NAME>`` when the
settings are loaded (never at import). The README documents each row of ``TABLE``;
a test fails when one is missing there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Any, Callable, Mapping

DEFAULT_DATABASE = "sqlite:///var/communique.db"


@dataclass(frozen=True)
class Row:
    name: str
    default: Any
    help: str
    parse: Callable[[str], Any] = str


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError(f"expected a positive integer, got {text!r}")
    return value


def _flag(text: str) -> bool:
    word = text.strip().lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


TABLE: tuple[Row, ...] = (
    Row("database", DEFAULT_DATABASE,
        "SQLAlchemy URL of the store: sqlite:///path or postgresql://user@host/db."),
    Row("title", "Communiqué node", "Title shown in the TAXII discovery resource."),
    Row("description", "A Communiqué exchange node (STIX 2.1 over TAXII 2.1).",
        "Description shown in the TAXII discovery resource."),
    Row("contact", "", "Contact shown in the TAXII discovery resource (empty: omitted)."),
    Row("public_url", "",
        "Base URL clients use to reach this node (empty: taken from each request)."),
    Row("max_content_length", 10 * 1024 * 1024,
        "Largest request body accepted, in bytes; advertised by every API root.",
        _positive_int),
    Row("max_page_size", 1000,
        "Most objects returned in one page; a larger `limit` is lowered to it.",
        _positive_int),
    Row("status_retention_hours", 168,
        "How long status resources of Add Objects requests are kept (at least 24).",
        _positive_int),
    Row("secret_key", "",
        "Key that signs paging cursors (empty: a random key kept in the database)."),
    Row("session_idle_minutes", 30,
        "A web session ends after this many minutes without a request.", _positive_int),
    Row("session_max_hours", 12,
        "A web session ends this many hours after sign-in, however active.", _positive_int),
    Row("lockout_failures", 5,
        "Failed sign-ins in a row (password or code) that lock an account.", _positive_int),
    Row("lockout_minutes", 15, "How long a locked account stays locked.", _positive_int),
    Row("address_failures", 30,
        "Failed sign-ins from one client address, within `lockout_minutes`, after which "
        "that address is refused until the window passes.", _positive_int),
    Row("signing_key", "",
        "Path of the node's Ed25519 signing key (PEM, mode 0600), made by `communique init`. "
        "Empty: next to a SQLite database (`FILE.signing.key`), else `var/DBNAME.signing.key`."),
    Row("accept_invalid_signatures", False,
        "Store objects whose signature does not verify (marked invalid) instead of refusing "
        "them. Refusals are recorded in the audit log either way.", _flag),
    Row("peer_ca_file", "",
        "PEM file of the certificate authorities trusted for peers' HTTPS (empty: the "
        "usual public ones). Certificates and host names are always checked."),
)


@dataclass(frozen=True)
class Settings:
    """Everything a node needs to know about itself."""

    database: str = DEFAULT_DATABASE
    title: str = "Communiqué node"
    description: str = "A Communiqué exchange node (STIX 2.1 over TAXII 2.1)."
    contact: str = ""
    public_url: str = ""
    max_content_length: int = 10 * 1024 * 1024
    max_page_size: int = 1000
    status_retention_hours: int = 168
    secret_key: str = ""
    session_idle_minutes: int = 30
    session_max_hours: int = 12
    lockout_failures: int = 5
    lockout_minutes: int = 15
    address_failures: int = 30
    signing_key: str = ""
    accept_invalid_signatures: bool = False
    peer_ca_file: str = ""

    def __post_init__(self) -> None:
        if self.status_retention_hours < 24:
            raise ValueError("status_retention_hours must be at least 24 (TAXII 2.1 §4.3)")


def env_name(name: str) -> str:
    """Return the environment variable that sets ``name``."""
    return f"COMMUNIQUE_{name.upper()}"


def load(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build settings from defaults, then the environment, then explicit overrides."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for row in TABLE:
        raw = environ.get(env_name(row.name))
        if raw is not None and raw != "":
            try:
                values[row.name] = row.parse(raw)
            except ValueError as exc:
                raise ValueError(f"{env_name(row.name)}: {exc}") from None
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**values)


def as_environ(settings: Settings) -> dict[str, str]:
    """Return the environment that reproduces ``settings`` in another process."""
    return {env_name(f.name): str(getattr(settings, f.name)) for f in fields(settings)}
