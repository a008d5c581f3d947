"""Ingest: validate untrusted STIX objects and store the good ones, one result per object.

Shared by TAXII Add Objects and ``communique import``, so both refuse the same
things for the same reasons. Validation runs before the write transaction opens,
so the single writer is held only for the insert itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from communique import access, timestamps
from communique.errors import InvalidObject
from communique.stix.validate import StixObject, summary_id, summary_version, validate
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


@dataclass(frozen=True, slots=True)
class Checked:
    """The objects of one request after validation, in request order."""

    results: list[Result | None]     # None where the object is valid and awaits storing
    valid: list[tuple[int, StixObject]]


def check(untrusted_objects: Sequence[object]) -> Checked:
    """Validate every object; remember why each bad one was refused."""
    results: list[Result | None] = []
    valid: list[tuple[int, StixObject]] = []
    for index, untrusted in enumerate(untrusted_objects):
        try:
            obj = validate(untrusted)
        except InvalidObject as exc:
            results.append(Result(summary_id(untrusted), summary_version(untrusted), REFUSED,
                                  exc.description))
            continue
        results.append(None)
        valid.append((index, obj))
    return Checked(results, valid)


def store_checked(tx: Tx, checked: Checked, *, collection: Collection, producer_org: int | None,
                  now: int) -> list[Result]:
    """Add the valid objects to a collection; return one result per requested object.

    ``producer_org`` is the organisation that adds them: it may always read back
    the TLP:RED ones.
    """
    results = list(checked.results)
    valid = []
    for index, obj in checked.valid:
        refusal = access.refusal_to_store(collection, obj.tlp)
        if refusal:
            results[index] = Result(obj.id, obj.version or "", REFUSED, refusal)
        else:
            valid.append((index, obj))
    outcomes = tx.add_objects(collection.id, [obj for _, obj in valid], now=now,
                              producer_org=producer_org)
    for (index, obj), (outcome, stored_version) in zip(valid, outcomes):
        version = obj.version or timestamps.format_us(stored_version)
        if outcome is Outcome.ADDED:
            results[index] = Result(obj.id, version, ADDED)
        elif outcome is Outcome.DUPLICATE:
            results[index] = Result(obj.id, version, DUPLICATE,
                                    "already in the collection (exact duplicate)")
        else:
            results[index] = Result(obj.id, version, REFUSED,
                                    "a different object with this id and version is already "
                                    "in the collection; change 'modified' to make a new version")
    return [r for r in results if r is not None]
