"""Provenance at the command line: the node's identity, trusted keys, offline verification."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import click

from communique import audit, importer, node, timestamps
from communique.cli.base import main, node_settings, with_store
from communique.errors import BadRequest
from communique.provenance import keys, publish, signatures, trust
from communique.provenance.signatures import Status, TrustedKey
from communique.settings import DEFAULT_DATABASE
from communique.store import open_store
from communique.store.base import Store


@main.command()
@with_store
def identity(store: Store) -> None:
    """Print the node's signed STIX identity (with its public key) and the key's fingerprint."""
    signer = node.signer(store, node_settings(store))
    click.echo(json.dumps(signer.identity, indent=2, ensure_ascii=False))
    click.echo(f"fingerprint {signer.key.kid}", err=True)


@main.group()
def key() -> None:
    """Signing keys this node trusts, and keys waiting for an administrator's approval."""


@key.command("list")
@with_store
def key_list(store: Store) -> None:
    """List known keys: trusted, pending approval, retired (still verifies), revoked."""
    with store.read() as tx:
        known = tx.list_keys()
    for item in known:
        click.echo(f"{item.state}\t{item.kid}\t{item.identity_id}\t{item.source}\t"
                   f"added {timestamps.format_ms(item.added)}")


@key.command("approve")
@click.argument("kid")
@with_store
def key_approve(store: Store, kid: str) -> None:
    """Trust a key a peer announced in place of its pinned one (its old key is retired)."""
    with store.write() as tx:
        approved = trust.approve(tx, kid, now=timestamps.now_us(), actor=audit.OPERATOR)
    click.echo(f"key {kid} of {approved.identity_id} is now trusted")


@key.command("revoke")
@click.argument("kid")
@with_store
def key_revoke(store: Store, kid: str) -> None:
    """Stop trusting a key for good (lost or stolen): what it signed no longer verifies."""
    with store.write() as tx:
        revoked = trust.revoke(tx, kid, now=timestamps.now_us(), actor=audit.OPERATOR)
    click.echo(f"key {kid} of {revoked.identity_id} is revoked")


@key.command("trust")
@click.argument("identity_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--fingerprint", required=True,
              help="The fingerprint the node's operator gave you; the key must match it.")
@with_store
def key_trust(store: Store, identity_file: str, fingerprint: str) -> None:
    """Trust the key a node identity (as `communique identity` prints it) announces."""
    identity_id, jwks = trust.announced_keys(_json(Path(identity_file).read_bytes()))
    jwk = next((j for j in jwks if j["kid"] == fingerprint), None)
    if jwk is None:
        raise BadRequest(f"the identity announces no key with fingerprint {fingerprint}")
    with store.write() as tx:
        trust.pin(tx, identity_id=identity_id, jwk=jwk, source="operator",
                  now=timestamps.now_us(), actor=audit.OPERATOR)
    click.echo(f"key {fingerprint} of {identity_id} is now trusted")


@main.command()
@click.argument("file", type=click.Path(allow_dash=True, dir_okay=False))
@click.option("--identity", "identities", multiple=True,
              type=click.Path(exists=True, dir_okay=False),
              help="A node identity file whose key to trust for this check (repeatable).")
@click.option("--database", envvar="COMMUNIQUE_DATABASE", default=DEFAULT_DATABASE,
              show_default=True, help="Also trust the keys this node trusts, when it exists.")
@click.option("--list", "listing", is_flag=True, help="Print every object's verdict.")
def verify(file: str, identities: tuple[str, ...], database: str, listing: bool) -> None:
    """Check the signatures of a bundle offline: verified, unsigned, unknown signer, invalid.

    Exits 1 if any signature is invalid.
    """
    ring = _database_keyring(database)
    for path in identities:
        identity_id, jwks = publish.signing_keys_of(_json(Path(path).read_bytes()))
        ring.update({j["kid"]: TrustedKey(identity_id, j["kid"], keys.import_public(j))
                     for j in jwks})
    data = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    objects, _ = importer.read_document(data)
    counts: Counter = Counter()
    for untrusted in objects:
        name = untrusted.get("id", "(no id)") if isinstance(untrusted, dict) else "(not an object)"
        verdict = (signatures.verify(untrusted, ring) if isinstance(untrusted, dict)
                   else signatures.Verdict(Status.INVALID, reason="not a JSON object"))
        counts[verdict.status] += 1
        if listing or verdict.status in (Status.INVALID, Status.UNKNOWN_SIGNER):
            click.echo(f"{verdict.status.word}\t{name}"
                       + (f"\t{verdict.reason}" if verdict.reason else ""))
    click.echo(", ".join(f"{counts[s]} {s.word}" for s in Status), err=True)
    if counts[Status.INVALID]:
        sys.exit(1)


def _database_keyring(database: str) -> dict[str, TrustedKey]:
    """Return the keys a node trusts, or none when there is no initialised node there."""
    if database.startswith("sqlite:///") and not Path(database[len("sqlite:///"):]).exists():
        return {}
    store = open_store(database)
    try:
        return node.keyring(store)
    except Exception:  # no node there (not initialised): an offline check needs none
        return {}
    finally:
        store.close()


def _json(data: bytes) -> object:
    import orjson

    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"not valid JSON: {exc}") from None


