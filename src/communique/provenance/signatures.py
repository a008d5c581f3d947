"""Detached signatures on STIX objects, carried in the Communiqué provenance extension.

A signed object carries, in ``extensions``::

    "extension-definition--74f7d6a3-…": {
        "extension_type": "property-extension",
        "signed_by": "identity--…",           # the node identity that signed
        "signature": "eyJhbGciOiJFZERTQSIs…..Sg3x…"}

``signature`` is a JWS (RFC 7515) in compact serialisation with a detached
payload (Appendix F), algorithm EdDSA over Ed25519, ``kid`` the signing key's
RFC 7638 thumbprint. The payload is the RFC 8785 canonical JSON of the object
without the ``signature`` property, so ``signed_by`` is covered and the
signature survives any TAXII server that keeps the object's JSON values, however
it re-orders or re-spaces them. Verification needs the signer's public key from
a ``Keyring`` the node trusts; nothing here reads files or the database.
"""

from __future__ import annotations

import base64
import binascii
import enum
import functools
from dataclasses import dataclass
from typing import Any, Mapping

import orjson
import rfc8785
from cryptography.exceptions import InvalidSignature
from joserfc.jwk import OKPKey

from communique.errors import InvalidObject

PROVENANCE_EXTENSION = "extension-definition--74f7d6a3-cb02-4420-87de-256d267d4592"
ALGORITHM = "EdDSA"
_MAX_SIGNATURE = 512  # a detached EdDSA JWS is about 150 characters


class Status(enum.IntEnum):
    """What a node knows of an object's signature (stored per version)."""

    UNSIGNED = 0
    VERIFIED = 1
    UNKNOWN_SIGNER = 2  # signed with a key this node has not been told to trust
    INVALID = 3

    @property
    def word(self) -> str:
        return self.name.lower().replace("_", " ")


@dataclass(frozen=True, slots=True)
class TrustedKey:
    """A public key this node trusts, and the identity it belongs to."""

    identity_id: str
    kid: str
    key: OKPKey


Keyring = Mapping[str, TrustedKey]  # by key id


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of checking one object's signature, with the reason when not verified."""

    status: Status
    signed_by: str | None = None
    kid: str | None = None
    reason: str = ""


def canonical_payload(raw: Mapping[str, Any]) -> bytes:
    """Return the bytes a signature covers: RFC 8785 JSON of ``raw`` without its signature."""
    entry = (raw.get("extensions") or {}).get(PROVENANCE_EXTENSION)
    if isinstance(entry, dict) and "signature" in entry:
        extensions = dict(raw["extensions"])
        extensions[PROVENANCE_EXTENSION] = {k: v for k, v in entry.items() if k != "signature"}
        raw = {**raw, "extensions": extensions}
    if _plain(raw):  # the common case: orjson's sorted output is already RFC 8785's
        return orjson.dumps(raw, option=orjson.OPT_SORT_KEYS)
    try:
        return rfc8785.dumps(raw)
    except rfc8785.CanonicalizationError as exc:
        raise InvalidObject(f"the object has no RFC 8785 canonical form, so it cannot be "
                            f"signed or verified: {exc}") from None
    except RecursionError:
        raise InvalidObject("the object is nested too deeply to be signed or verified") from None


_SAFE_INTEGER = 2 ** 53 - 1


def _plain(value: Any, depth: int = 0) -> bool:
    """Return whether orjson's sorted output of ``value`` is its RFC 8785 form.

    It is, for JSON without floats (ES6 number formatting differs), with integers that
    ES6 holds exactly, and with keys in the Basic Multilingual Plane (RFC 8785 sorts by
    UTF-16 code units, orjson by code points: they differ only above U+FFFF). The two
    escape strings alike. A test compares both on generated documents.
    """
    if isinstance(value, str) or value is None or isinstance(value, bool):
        return True
    if isinstance(value, int):
        return -_SAFE_INTEGER <= value <= _SAFE_INTEGER
    if depth > 100:
        return False
    if isinstance(value, dict):
        return all(isinstance(k, str) and (k.isascii() or max(map(ord, k)) <= 0xFFFF)
                   and _plain(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(v, depth + 1) for v in value)
    return False


def sign(raw: Mapping[str, Any], key: OKPKey, *, signed_by: str) -> dict[str, Any]:
    """Return a copy of ``raw`` signed by ``key`` for identity ``signed_by``."""
    extensions = dict(raw.get("extensions") or {})
    kept = extensions.get(PROVENANCE_EXTENSION)
    kept = {k: v for k, v in kept.items() if k != "signature"} if isinstance(kept, dict) else {}
    extensions[PROVENANCE_EXTENSION] = {**kept, "extension_type": "property-extension",
                                        "signed_by": signed_by}
    unsigned = {**raw, "extensions": extensions}
    payload = canonical_payload(unsigned)
    # RFC 7515 compact serialisation (§7.1), the payload detached (Appendix F)
    header = _protected_header(key.thumbprint())
    signature = key.private_key.sign(header.encode() + b"." + _base64(payload))
    extensions[PROVENANCE_EXTENSION] = {**extensions[PROVENANCE_EXTENSION],
                                        "signature": f"{header}..{_base64(signature).decode()}"}
    return unsigned


@functools.lru_cache(maxsize=64)
def _protected_header(kid: str) -> str:
    return _base64(orjson.dumps({"alg": ALGORITHM, "kid": kid})).decode()


def _base64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def without_provenance(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``raw`` without the provenance extension (and without ``extensions`` if empty,
    so that ``"extensions": {}`` and no extensions at all are one object).

    Two copies of one object signed by different nodes are the same object: this is
    what is compared to tell a duplicate from a conflicting version.
    """
    extensions = raw.get("extensions")
    if not isinstance(extensions, dict) or (extensions and PROVENANCE_EXTENSION not in extensions):
        return dict(raw)
    rest = {k: v for k, v in extensions.items() if k != PROVENANCE_EXTENSION}
    copy = {k: v for k, v in raw.items() if k != "extensions"}
    if rest:
        copy["extensions"] = rest
    return copy


def is_signed(raw: Mapping[str, Any]) -> bool:
    """Return whether ``raw`` carries a provenance signature (valid or not)."""
    extensions = raw.get("extensions")
    entry = extensions.get(PROVENANCE_EXTENSION) if isinstance(extensions, dict) else None
    return isinstance(entry, dict) and "signature" in entry


def verify(raw: Mapping[str, Any], keyring: Keyring) -> Verdict:
    """Check ``raw``'s signature against the keys this node trusts."""
    if not is_signed(raw):
        return Verdict(Status.UNSIGNED)
    entry = raw["extensions"][PROVENANCE_EXTENSION]
    signed_by, compact = entry.get("signed_by"), entry.get("signature")
    if not isinstance(signed_by, str) or not signed_by.startswith("identity--"):
        return Verdict(Status.INVALID, reason="'signed_by' must name an identity")
    kid = _kid_of(compact)
    if kid is None:
        return Verdict(Status.INVALID, signed_by,
                       reason="'signature' is not a detached EdDSA JWS with a key id")
    trusted = keyring.get(kid)
    if trusted is None:
        return Verdict(Status.UNKNOWN_SIGNER, signed_by, kid,
                       reason=f"signed with key {kid}, which this node does not trust")
    if trusted.identity_id != signed_by:
        return Verdict(Status.INVALID, signed_by, kid,
                       reason=f"key {kid} belongs to {trusted.identity_id}, not {signed_by}")
    try:
        payload = canonical_payload(raw)
    except InvalidObject as exc:
        return Verdict(Status.INVALID, signed_by, kid, reason=exc.description)
    # RFC 7515 §5.2 for a detached payload: the signing input is the protected header and
    # the payload, each base64url-encoded, joined by a dot (the header was checked above).
    header, _, signature = compact.partition("..")
    signing_input = header.encode() + b"." + _base64(payload)
    try:
        trusted.key.public_key.verify(_unbase64(signature), signing_input)
    except (InvalidSignature, binascii.Error, ValueError):
        return Verdict(Status.INVALID, signed_by, kid,
                       reason="the signature does not match the object: it was changed after "
                              "signing, or signed by another key")
    return Verdict(Status.VERIFIED, signed_by, kid)


def _unbase64(text: str) -> bytes:
    """Decode unpadded base64url strictly (no other characters, no padding)."""
    if not text or "=" in text or not text.isascii():
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _kid_of(untrusted: object) -> str | None:
    """Return the key id of a detached compact EdDSA JWS, or None if it is not one."""
    if not isinstance(untrusted, str) or len(untrusted) > _MAX_SIGNATURE:
        return None
    parts = untrusted.split(".")
    if len(parts) != 3 or parts[1] != "" or not parts[0] or not parts[2]:
        return None
    try:
        header = orjson.loads(_unbase64(parts[0]))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(header, dict) or header.get("alg") != ALGORITHM \
            or set(header) - {"alg", "kid"} or not isinstance(header.get("kid"), str):
        return None
    return header["kid"]
