"""Which keys this node trusts, and how that changes: only by an administrator's decision.

A key is pinned when an administrator adds a peer or trusts a node identity; a
key a known peer announces later waits as pending until approved. A key id is
bound to one identity for good: no peer can move a key known here to another
identity, nor demote a trusted one.
"""

from __future__ import annotations

from typing import Any

from communique import audit
from communique.errors import BadRequest, Conflict, NotFound
from communique.provenance import keys, publish, signatures
from communique.provenance.signatures import Status, TrustedKey
from communique.store.base import PublicKey, Tx


def announced_keys(untrusted: object) -> tuple[str, list[dict[str, str]]]:
    """Return the identity id and keys a node identity announces, once its self-signature
    (by one of those keys, for that identity) is checked; raise BadRequest otherwise."""
    identity_id, jwks = publish.signing_keys_of(untrusted)
    ring = {j["kid"]: TrustedKey(identity_id, j["kid"], keys.import_public(j)) for j in jwks}
    verdict = signatures.verify(untrusted, ring)  # type: ignore[arg-type]
    if verdict.status is not Status.VERIFIED:
        raise BadRequest("the node identity is not signed by a key it announces "
                         f"({verdict.reason or verdict.status.word})")
    return identity_id, jwks


def pin(tx: Tx, *, identity_id: str, jwk: dict[str, str], source: str, now: int,
        actor: audit.Actor) -> None:
    """Trust ``jwk`` for ``identity_id`` (an administrator's decision), and record it."""
    known = _known(tx, jwk["kid"])
    if known is not None and known.identity_id != identity_id:
        raise Conflict(f"key {jwk['kid']} is already known here as {known.identity_id}'s")
    if known is not None and known.state == "revoked":
        raise Conflict(f"key {jwk['kid']} was revoked here: it is never trusted again")
    if known is None:
        tx.put_key(PublicKey(jwk["kid"], identity_id, jwk["x"], "trusted", source, now, now))
    elif known.state != "trusted":
        tx.set_key_state(jwk["kid"], "trusted", now=now)
    tx.append_audit(actor.event("key.pin", target=identity_id, key=jwk["kid"], source=source),
                    now=now)


def hold_new(tx: Tx, *, identity_id: str, jwks: list[dict[str, Any]], source: str, now: int,
             actor: audit.Actor) -> list[str]:
    """Record keys an identity announces that are not known yet, as pending; return them.

    Raise Conflict when one is known as another identity's: a peer may not claim it.
    """
    held = []
    for jwk in jwks:
        known = _known(tx, jwk["kid"])
        if known is not None and known.state == "revoked":
            raise Conflict(f"the peer announces key {jwk['kid']}, which was revoked here")
        if known is not None:
            if known.identity_id != identity_id:
                raise Conflict(f"the peer announces key {jwk['kid']}, which is "
                               f"{known.identity_id}'s")
            continue
        tx.put_key(PublicKey(jwk["kid"], identity_id, jwk["x"], "pending", source, now))
        tx.append_audit(actor.event("key.pending", target=identity_id, key=jwk["kid"],
                                    source=source), now=now)
        held.append(jwk["kid"])
    return held


def approve(tx: Tx, kid: str, *, now: int, actor: audit.Actor) -> PublicKey:
    """Trust a pending key (a peer's new key); the identity's other keys are retired."""
    key = _known(tx, kid)
    if key is None or key.state != "pending":
        raise NotFound(f"no key {kid!r} waits for approval (`communique key list`)")
    for old in tx.list_keys(identity_id=key.identity_id, state="trusted"):
        tx.set_key_state(old.kid, "retired", now=now)
    tx.set_key_state(kid, "trusted", now=now)
    tx.append_audit(actor.event("key.approve", target=key.identity_id, key=kid), now=now)
    return key


def revoke(tx: Tx, kid: str, *, now: int, actor: audit.Actor) -> PublicKey:
    """Stop trusting a key for good (it was lost or stolen): nothing it signed verifies."""
    key = _known(tx, kid)
    if key is None:
        raise NotFound(f"no key {kid!r} (`communique key list`)")
    tx.set_key_state(kid, "revoked", now=now)
    tx.append_audit(actor.event("key.revoke", target=key.identity_id, key=kid), now=now)
    return key


def _known(tx: Tx, kid: str) -> PublicKey | None:
    return next((k for k in tx.list_keys() if k.kid == kid), None)
