"""Ingest: validate untrusted STIX objects and store the good ones, one result per object.

Shared by TAXII Add Objects, ``communique import``, forwarding and pulls from
peers, so all refuse the same things for the same reasons. Validation and
signatures (checked, and made for what the node's own users submit) run before
the write transaction opens, so the single writer is held only for the insert.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from typing import Callable, Sequence

from communique import access, audit, timestamps
from communique.detect import filing
from communique.errors import InvalidObject
from communique.provenance import signatures
from communique.provenance.signatures import PROVENANCE_EXTENSION, Keyring, Status, Verdict
from communique.stix.markings import Tlp
from communique.stix.validate import StixObject, encode, summary_id, summary_version, validate
from communique.store.base import Collection, Outcome, Tx

ADDED, DUPLICATE, REFUSED = "added", "duplicate", "refused"


@dataclass(frozen=True, slots=True)
class Result:
    """What became of one object of a request."""

    id: str
    version: str
    outcome: str
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome != REFUSED


@dataclass(frozen=True)
class Provenance:
    """How signatures are treated on one path in.

    ``key`` and ``signed_by``: sign what arrives unsigned (objects the node's own
    users submit); None for objects relayed from a peer, which keep what they carry.
    """

    keyring: Keyring
    key: object | None = None  # joserfc OKPKey
    signed_by: str | None = None
    accept_invalid: bool = False


@dataclass(frozen=True, slots=True)
class Checked:
    """The objects of one request after validation, in request order."""

    results: list[Result | None]     # None where the object is valid and awaits storing
    valid: list[tuple[int, StixObject]]
    invalid: list[tuple[str, Verdict]] = field(default_factory=list)  # bad signatures seen


def joined(first: Checked, second: Checked) -> Checked:
    """Return the check of two consecutive parts of one request as one."""
    offset = len(first.results)
    return Checked(first.results + second.results,
                   first.valid + [(index + offset, obj) for index, obj in second.valid],
                   first.invalid + second.invalid)


def check(untrusted_objects: Sequence[object], provenance: Provenance) -> Checked:
    """Validate every object and its signature; remember why each bad one was refused."""
    results: list[Result | None] = []
    valid: list[tuple[int, StixObject]] = []
    invalid: list[tuple[str, Verdict]] = []
    for index, untrusted in enumerate(untrusted_objects):
        try:
            obj = validate(untrusted)
            obj, verdict = _provenance(obj, provenance)
        except InvalidObject as exc:
            results.append(Result(summary_id(untrusted), summary_version(untrusted), REFUSED,
                                  exc.description))
            continue
        if verdict.status is Status.INVALID:
            invalid.append((obj.id, verdict))
            if not provenance.accept_invalid:
                results.append(Result(obj.id, obj.version or "", REFUSED,
                                      f"invalid signature: {verdict.reason}"))
                continue
        results.append(None)
        valid.append((index, obj))
    return Checked(results, valid, invalid)


def refuse_where(checked: Checked, rule: Callable[[StixObject], str | None]) -> Checked:
    """Return ``checked`` with each valid object that ``rule`` gives a reason against refused."""
    results = list(checked.results)
    valid = []
    for index, obj in checked.valid:
        reason = rule(obj)
        if reason:
            results[index] = Result(obj.id, obj.version or "", REFUSED, reason)
        else:
            valid.append((index, obj))
    return Checked(results, valid, checked.invalid)


def as_received(checked: Checked) -> Checked:
    """Store objects that came unmarked from another node at TLP:AMBER, the level they were
    taken at, so that no later change of the collection's default can widen them."""
    valid = [(index, obj if obj.tlp is not None else dataclasses.replace(obj, tlp=Tlp.AMBER))
             for index, obj in checked.valid]
    return Checked(checked.results, valid, checked.invalid)


def _provenance(obj: StixObject, provenance: Provenance) -> tuple[StixObject, Verdict]:
    """Verify the object's signature; sign it first when it is ours to sign and unsigned.

    The digest that tells duplicates leaves the signature out: the same object signed by
    two nodes is one object, kept as first stored.
    """
    verdict = signatures.verify(obj.raw, provenance.keyring)
    raw = obj.raw
    if verdict.status is Status.UNSIGNED and provenance.key is not None:
        raw = signatures.sign(raw, provenance.key, signed_by=provenance.signed_by or "")
        verdict = Verdict(Status.VERIFIED, provenance.signed_by)
    extensions = raw.get("extensions")
    digest = (hashlib.sha256(encode(signatures.without_provenance(raw))).digest()
              if isinstance(extensions, dict) and (PROVENANCE_EXTENSION in extensions
                                                   or not extensions) else None)
    body = obj.body if raw is obj.raw else encode(raw)
    return dataclasses.replace(obj, raw=raw, body=body, signature=int(verdict.status),
                               digest=digest), verdict


def store_checked(tx: Tx, checked: Checked, *, collection: Collection, producer_org: int | None,
                  now: int, actor: audit.Actor, origin_peer: int | None = None) -> list[Result]:
    """Add the valid objects to a collection; return one result per requested object.

    ``producer_org`` is the organisation that adds them: it may always read back
    the TLP:RED ones. Every invalid signature seen is recorded in the audit log,
    stored or not.
    """
    refused = {r.id for r in checked.results if r is not None and not r.ok}
    for stix_id, verdict in checked.invalid:
        tx.append_audit(actor.event(
            "object.invalid_signature", target=f"{collection.api_root}/{collection.id}/{stix_id}",
            outcome=audit.REFUSED if stix_id in refused else audit.OK,
            signed_by=verdict.signed_by or "", key=verdict.kid or "", reason=verdict.reason),
            now=now)
    results = list(checked.results)
    valid = []
    for index, obj in checked.valid:
        refusal = access.refusal_to_store(collection, obj.tlp)
        if refusal:
            results[index] = Result(obj.id, obj.version or "", REFUSED, refusal)
        else:
            valid.append((index, obj))
    outcomes = tx.add_objects(collection.id, [obj for _, obj in valid], now=now,
                              producer_org=producer_org, origin_peer=origin_peer)
    added = []
    for (index, obj), (outcome, stored_version) in zip(valid, outcomes):
        version = obj.version or timestamps.format_us(stored_version)
        if outcome is Outcome.ADDED:
            results[index] = Result(obj.id, version, ADDED)
            added.append((obj.raw, stored_version))
        elif outcome is Outcome.DUPLICATE:
            results[index] = Result(obj.id, version, DUPLICATE,
                                    "already in the collection (exact duplicate)")
        else:
            results[index] = Result(obj.id, version, REFUSED,
                                    "a different object with this id and version is already "
                                    "in the collection; change 'modified' to make a new version")
    filing.file_stored(tx, collection.id, added)
    return [r for r in results if r is not None]
