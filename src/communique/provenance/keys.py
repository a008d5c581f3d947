"""The node's Ed25519 signing key: a PEM file outside the database, readable by its owner only.

Its public half is published as a JWK (RFC 8037) in the node's STIX identity; its
key id is the JWK thumbprint (RFC 7638), which is also the fingerprint an
administrator compares when pinning a peer's key.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from joserfc.jwk import OKPKey

from communique.errors import BadRequest, CommuniqueError


class KeyFileError(CommuniqueError):
    title = "Signing key unusable"


@dataclass(frozen=True)
class NodeKey:
    """The node's private signing key, and what it publishes of it."""

    private: OKPKey

    @property
    def kid(self) -> str:
        """The key id: its RFC 7638 thumbprint (base64url of SHA-256)."""
        return self.private.thumbprint()

    def public_jwk(self) -> dict[str, str]:
        """Return the public key as a JWK, with its key id and use."""
        return public_jwk(self.private)


def public_jwk(key: OKPKey) -> dict[str, str]:
    """Return ``key``'s public half as a JWK carrying kid, alg and use."""
    jwk = dict(key.as_dict(private=False))
    return {"kty": "OKP", "crv": "Ed25519", "x": jwk["x"], "kid": key.thumbprint(),
            "alg": "EdDSA", "use": "sig"}


def import_public(untrusted: object) -> OKPKey:
    """Return the Ed25519 public key a JWK describes, or raise BadRequest."""
    if not isinstance(untrusted, dict) or untrusted.get("kty") != "OKP" \
            or untrusted.get("crv") != "Ed25519" or not isinstance(untrusted.get("x"), str) \
            or "d" in untrusted:
        raise BadRequest("a signing key must be a public Ed25519 JWK (kty OKP, crv Ed25519, x)")
    try:
        return OKPKey.import_key({"kty": "OKP", "crv": "Ed25519", "x": untrusted["x"]})
    except Exception:  # joserfc raises several kinds for a malformed x
        raise BadRequest("the signing key's 'x' is not an Ed25519 public key") from None


def create(path: Path) -> NodeKey:
    """Make a new key pair and write its private key to ``path`` with mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(pem)
    return load(path)


def load(path: Path) -> NodeKey:
    """Read the node's key; refuse a file that others may read or that is not an Ed25519 key."""
    try:
        mode = path.stat().st_mode
        pem = path.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"no signing key at {path}: run `communique init`") from None
    except OSError as exc:
        raise KeyFileError(f"cannot read the signing key at {path}: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(f"the signing key {path} may be read by others: "
                           f"run `chmod 600 {path}`")
    try:
        private = serialization.load_pem_private_key(pem, password=None)
    except ValueError:
        raise KeyFileError(f"{path} does not hold a PEM private key") from None
    if not isinstance(private, Ed25519PrivateKey):
        raise KeyFileError(f"{path} holds a key that is not Ed25519")
    return NodeKey(OKPKey.import_key(pem))


def load_or_create(path: Path) -> tuple[NodeKey, bool]:
    """Return the node's key, making it first if the file does not exist; say if it is new."""
    if path.exists():
        return load(path), False
    return create(path), True
