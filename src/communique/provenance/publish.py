"""What a node publishes about its provenance: its signed identity and the extension-definition."""

from __future__ import annotations

from typing import Any

from communique import timestamps
from communique.errors import BadRequest
from communique.provenance import keys, signatures
from communique.provenance.signatures import PROVENANCE_EXTENSION
from communique.stix import markings


def node_identity(*, identity_id: str, name: str, created: int, modified: int,
                  key: keys.NodeKey) -> dict[str, Any]:
    """Return the node's STIX identity, carrying its public key, signed by that key."""
    identity = {
        "type": "identity", "spec_version": "2.1", "id": identity_id,
        "created": timestamps.format_ms(created), "modified": timestamps.format_ms(modified),
        "name": name, "identity_class": "system",
        "description": "A Communiqué exchange node. Objects it signs carry its signature in "
                       "the Communiqué provenance extension.",
        "extensions": {PROVENANCE_EXTENSION: {"extension_type": "property-extension",
                                              "signing_keys": [key.public_jwk()]}},
    }
    return signatures.sign(identity, key.private, signed_by=identity_id)


def signing_keys_of(untrusted: object) -> tuple[str, list[dict[str, str]]]:
    """Return (identity id, public JWKs) an identity object announces, or raise BadRequest."""
    if not isinstance(untrusted, dict) or untrusted.get("type") != "identity" \
            or not isinstance(untrusted.get("id"), str):
        raise BadRequest("the node identity must be a STIX identity object")
    extensions = untrusted.get("extensions")
    entry = extensions.get(PROVENANCE_EXTENSION) if isinstance(extensions, dict) else None
    announced = entry.get("signing_keys") if isinstance(entry, dict) else None
    if not isinstance(announced, list) or not 0 < len(announced) <= 8:
        raise BadRequest("the node identity announces no signing key (1 to 8 expected)")
    jwks = []
    for jwk in announced:
        key = keys.import_public(jwk)
        jwks.append(keys.public_jwk(key))
    return untrusted["id"], jwks


def extension_definition() -> dict[str, Any]:
    """Return the extension-definition of the provenance property extension."""
    return {
        "type": "extension-definition", "spec_version": "2.1", "id": PROVENANCE_EXTENSION,
        "created_by_ref": markings.COMMUNIQUE_IDENTITY,
        "created": "2026-11-27T00:00:00.000Z", "modified": "2026-11-27T00:00:00.000Z",
        "name": "Communiqué provenance", "version": "1.0.0",
        "extension_types": ["property-extension"],
        "description": "Who produced an object, proven by a signature that travels with it.",
        "schema": (
            "A property extension with three optional properties. signed_by: the identity "
            "(a node) that signed the object. signature: a JWS (RFC 7515) in compact "
            "serialisation with detached payload, protected header {\"alg\": \"EdDSA\", "
            "\"kid\": KEY_ID}, Ed25519 (RFC 8037); the payload is the RFC 8785 canonical JSON "
            "of the whole object without the 'signature' property (so 'signed_by' is "
            "covered). KEY_ID is the RFC 7638 thumbprint of the signer's public key. "
            "signing_keys (on a node's identity only): the node's public keys as JWKs "
            "(kty OKP, crv Ed25519, x, kid). A receiver verifies with a key it trusts for "
            "the signed_by identity, pinned out of band or when the peer was added."),
    }


def definitions() -> list[dict[str, Any]]:
    """Return what every node publishes: TLP markings and the Communiqué extensions."""
    return [*markings.definitions(), extension_definition()]
