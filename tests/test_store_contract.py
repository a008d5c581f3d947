"""The store contract: what every backend must do. Runs on SQLite and PostgreSQL via ``store``."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
import uuid
from contextlib import closing
from pathlib import Path
from typing import Any, Callable

import orjson
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from communique import node as node_setup
from communique import timestamps
from communique.errors import Conflict
from communique.stix.validate import validate
from communique.store import migrate, open_store, schema
from communique.stix.markings import Tlp
from communique.store.base import Collection, Grant, Outcome, Page, Record, Visibility
from communique.store.engines import SqlStore
from communique.store.sql import SqlTx
from communique.taxii import filters
from communique.taxii.filters import ALL_VERSIONS, Query, Versions
from tests.support import indicator, ipv4, malware, marking_statement, relationship, stix_id, ts

NOW = 1_750_000_000_000_000  # an instant in µs; tests move it by hand
ROOT = "default"


# -- helpers ------------------------------------------------------------------------------
def v(second: int) -> int:
    """Return the version (µs) of an object whose ``modified`` is ``ts(second)``."""
    return timestamps.parse(ts(second))


# The storage mechanics are tested with every level visible; TLP itself is tested in
# tests/test_tlp.py, where the visibility comes from ``access.visibility``.
SEE_ALL = Visibility(frozenset(Tlp), Tlp.AMBER)


def counted(tx: Any, collection_id: str) -> int:
    """Return how many objects (last versions) a collection holds, at every level."""
    return sum(tx.count_objects(collection_id, visibility=SEE_ALL).values())


def version_of(second: int, *, id: str, n: int = 0, **extra: Any) -> dict:
    """Return one version of indicator ``id``, modified ``second`` seconds into 2024."""
    return indicator(n, id=id, created=ts(0), modified=ts(second), **extra)


def add(store: SqlStore, collection_id: str, *raws: dict, now: int | None = None
        ) -> list[tuple[Outcome, int]]:
    """Validate and add ``raws`` to a collection in one write transaction."""
    with store.write() as tx:
        return tx.add_objects(collection_id, [validate(raw) for raw in raws],
                              now=timestamps.now_us() if now is None else now)


def page(store: SqlStore, collection_id: str, query: Query, *, after: int | None = None,
         object_id: str | None = None, with_body: bool = True) -> Page:
    """Return one page of ``list_objects``."""
    with store.read() as tx:
        return tx.list_objects(collection_id, query, visibility=SEE_ALL, after=after, object_id=object_id,
                               with_body=with_body)


def everything(store: SqlStore, collection_id: str, versions: Versions = ALL_VERSIONS, *,
               limit: int = 1000, **criteria: Any) -> list[Record]:
    """Return every matching record, following pages to the end."""
    query = Query(versions=versions, limit=limit, **criteria)
    records: list[Record] = []
    after = None
    while True:
        found = page(store, collection_id, query, after=after)
        records += found.records
        if not found.more:
            return records
        assert found.records, "a page that says there is more must not be empty"
        after = found.last_added


def versions_listed(store: SqlStore, collection_id: str, versions: Versions,
                    **criteria: Any) -> list[tuple[str, int]]:
    """Return the (id, version) pairs a ``match[version]`` filter selects, sorted."""
    return sorted((r.stix_id, r.version) for r in everything(store, collection_id, versions,
                                                              **criteria))


def new_collection(tx: SqlTx, *, root: str = ROOT, alias: str | None = None,
                   title: str = "Collection", now: int = NOW) -> Collection:
    """Add a collection with a fresh id (and its API root when missing)."""
    if tx.get_api_root(root) is None:
        tx.add_api_root(root, title=root.title(), description="", now=now)
    return tx.add_collection(Collection(str(uuid.uuid4()), root, title, "", alias), now=now)


@pytest.fixture
def collection(store: SqlStore) -> str:
    """The id of an empty collection in the ``default`` API root."""
    with store.write() as tx:
        return new_collection(tx).id


@pytest.fixture
def other_collection(store: SqlStore, collection: str) -> str:
    """The id of a second empty collection in the same API root."""
    with store.write() as tx:
        return new_collection(tx, title="Other").id


# -- organisations, users, tokens ------------------------------------------------------------
def test_organisations_add_find_list(store: SqlStore) -> None:
    """Organisations are added, found by name and listed by name."""
    with store.write() as tx:
        ministry = tx.add_organisation("Ministry", now=NOW)
        cert = tx.add_organisation("CERT", now=NOW)
    with store.read() as tx:
        assert tx.find_organisation("Ministry") == ministry
        assert tx.find_organisation("Nobody") is None
        assert tx.list_organisations() == [cert, ministry]
    assert cert.id != ministry.id


def test_duplicate_organisation_is_a_conflict(store: SqlStore) -> None:
    """A taken organisation name raises Conflict and leaves the transaction usable."""
    with store.write() as tx:
        first = tx.add_organisation("CERT", now=NOW)
        with pytest.raises(Conflict):
            tx.add_organisation("CERT", now=NOW)
        second = tx.add_organisation("Agency", now=NOW)
    with store.read() as tx:
        assert tx.list_organisations() == [second, first]


def test_users_add_find_list(store: SqlStore) -> None:
    """Users are added to an organisation, found by e-mail and listed by e-mail."""
    with store.write() as tx:
        org = tx.add_organisation("CERT", now=NOW)
        zoe = tx.add_user("zoe@cert.example", org_id=org.id, role="reader", now=NOW)
        ann = tx.add_user("ann@cert.example", org_id=org.id, role="analyst", now=NOW)
    assert (ann.email, ann.org_id, ann.org_name, ann.role, ann.disabled) == (
        "ann@cert.example", org.id, "CERT", "analyst", False)
    with store.read() as tx:
        assert tx.find_user("zoe@cert.example") == zoe
        assert tx.find_user("nobody@cert.example") is None
        assert tx.list_users() == [ann, zoe]


def test_duplicate_user_email_is_a_conflict(store: SqlStore) -> None:
    """A taken e-mail raises Conflict, even for another organisation."""
    with store.write() as tx:
        cert = tx.add_organisation("CERT", now=NOW)
        agency = tx.add_organisation("Agency", now=NOW)
        tx.add_user("ann@cert.example", org_id=cert.id, role="analyst", now=NOW)
        with pytest.raises(Conflict):
            tx.add_user("ann@cert.example", org_id=agency.id, role="reader", now=NOW)
    with store.read() as tx:
        assert [u.org_name for u in tx.list_users()] == ["CERT"]


def _user(tx: SqlTx, email: str) -> int:
    """Add a user to organisation CERT (made when missing); return the user's id."""
    org = tx.find_organisation("CERT") or tx.add_organisation("CERT", now=NOW)
    return tx.add_user(email, org_id=org.id, role="analyst", now=NOW).id


def test_token_add_and_find_by_hash(store: SqlStore) -> None:
    """A token is found by its hash, with its user; an unknown hash finds nothing."""
    with store.write() as tx:
        user_id = _user(tx, "ann@cert.example")
        token = tx.add_token(user_id=user_id, token_hash="a" * 64, prefix="cq_aaaa", now=NOW,
                             expires=NOW + 10)
    assert (token.user_id, token.email, token.prefix, token.created, token.expires) == (
        user_id, "ann@cert.example", "cq_aaaa", NOW, NOW + 10)
    assert (token.revoked, token.last_used) == (None, None)
    with store.read() as tx:
        found = tx.find_token("a" * 64)
        assert tx.find_token("b" * 64) is None
    assert found is not None
    assert found[0] == token
    assert (found[1].id, found[1].email) == (user_id, "ann@cert.example")


def test_revoke_token_once(store: SqlStore) -> None:
    """Revoking records when; a second revoke returns False and keeps the first instant."""
    with store.write() as tx:
        token = tx.add_token(user_id=_user(tx, "ann@cert.example"), token_hash="a" * 64,
                             prefix="cq_aaaa", now=NOW, expires=None)
    with store.write() as tx:
        assert tx.revoke_token(token.id, now=NOW + 1) is True
    with store.write() as tx:
        assert tx.revoke_token(token.id, now=NOW + 2) is False
        assert tx.revoke_token(token.id + 1000, now=NOW + 2) is False
    with store.read() as tx:
        found = tx.find_token("a" * 64)
    assert found is not None and found[0].revoked == NOW + 1


def test_touch_token_sets_last_used(store: SqlStore) -> None:
    """touch_token records the instant of last use, and a later touch replaces it."""
    with store.write() as tx:
        token = tx.add_token(user_id=_user(tx, "ann@cert.example"), token_hash="a" * 64,
                             prefix="cq_aaaa", now=NOW, expires=None)
        tx.touch_token(token.id, now=NOW + 5)
    with store.read() as tx:
        assert tx.list_tokens()[0].last_used == NOW + 5
    with store.write() as tx:
        tx.touch_token(token.id, now=NOW + 9)
    with store.read() as tx:
        assert tx.list_tokens()[0].last_used == NOW + 9


def test_list_tokens_per_user(store: SqlStore) -> None:
    """list_tokens lists every token, or only one user's."""
    with store.write() as tx:
        ann, bob = _user(tx, "ann@cert.example"), _user(tx, "bob@cert.example")
        a1 = tx.add_token(user_id=ann, token_hash="1" * 64, prefix="cq_1", now=NOW, expires=None)
        b1 = tx.add_token(user_id=bob, token_hash="2" * 64, prefix="cq_2", now=NOW, expires=None)
        a2 = tx.add_token(user_id=ann, token_hash="3" * 64, prefix="cq_3", now=NOW, expires=None)
    with store.read() as tx:
        assert tx.list_tokens(user_id=ann) == [a1, a2]
        assert tx.list_tokens(user_id=bob) == [b1]
        assert tx.list_tokens() == [a1, b1, a2]
        assert tx.list_tokens(user_id=ann + bob + 1000) == []


# -- API roots and collections ---------------------------------------------------------------
def test_api_roots_add_get_list(store: SqlStore) -> None:
    """API roots are added, got by slug, listed by slug; a taken slug is a Conflict."""
    with store.write() as tx:
        trust = tx.add_api_root("trust", title="Trust group", description="Partners", now=NOW)
        default = tx.add_api_root("default", title="Default", description="", now=NOW)
        with pytest.raises(Conflict):
            tx.add_api_root("trust", title="Again", description="", now=NOW)
    with store.read() as tx:
        assert tx.get_api_root("trust") == trust
        assert tx.get_api_root("missing") is None
        assert tx.list_api_roots() == [default, trust]


def test_collections_add_get_list_in_stable_order(store: SqlStore) -> None:
    """Collections are got by id and listed per API root, oldest first, the same each time."""
    with store.write() as tx:
        made = [new_collection(tx, title=f"C{n}", now=NOW + n) for n in (3, 1, 2)]
        elsewhere = new_collection(tx, root="trust", title="T", now=NOW)
    by_age = sorted(made, key=lambda c: c.title)
    with store.read() as tx:
        assert tx.get_collection(ROOT, made[0].id) == made[0]
        assert tx.list_collections(ROOT) == by_age
        assert tx.list_collections(ROOT) == by_age
        assert tx.list_collections("trust") == [elsewhere]
        assert tx.list_collections("missing") == []
        everywhere = sorted(c.id for c in tx.list_collections())
    assert everywhere == sorted(c.id for c in made + [elsewhere])


def test_collection_same_instant_order_is_stable(store: SqlStore) -> None:
    """Collections made at the same instant list in one repeatable order."""
    with store.write() as tx:
        made = {new_collection(tx, title=f"C{n}").id for n in range(5)}
    with store.read() as tx:
        first = [c.id for c in tx.list_collections(ROOT)]
    with store.read() as tx:
        assert [c.id for c in tx.list_collections(ROOT)] == first
    assert set(first) == made


def test_collection_by_alias(store: SqlStore) -> None:
    """A collection is found by its alias, but only within its own API root."""
    with store.write() as tx:
        shared = new_collection(tx, alias="shared")
        new_collection(tx, root="trust")
    with store.read() as tx:
        assert tx.get_collection(ROOT, "shared") == shared
        assert tx.get_collection("trust", "shared") is None
        assert tx.get_collection("trust", shared.id) is None
        assert tx.get_collection(ROOT, "unknown") is None


def test_alias_unique_per_api_root(store: SqlStore) -> None:
    """An alias is unique within an API root, yet free to reuse in another."""
    with store.write() as tx:
        shared = new_collection(tx, alias="shared")
        with pytest.raises(Conflict):
            new_collection(tx, alias="shared")
        partner = new_collection(tx, root="trust", alias="shared")
        new_collection(tx)  # collections without an alias never clash
        new_collection(tx)
    with store.read() as tx:
        assert tx.get_collection(ROOT, "shared") == shared
        assert tx.get_collection("trust", "shared") == partner
        assert len(tx.list_collections(ROOT)) == 3


def test_duplicate_collection_id_is_a_conflict(store: SqlStore) -> None:
    """A taken collection id raises Conflict."""
    with store.write() as tx:
        made = new_collection(tx)
        with pytest.raises(Conflict):
            tx.add_collection(Collection(made.id, ROOT, "Again", "", None), now=NOW)
    with store.read() as tx:
        assert tx.list_collections() == [made]


def test_grants_set_replace_remove(store: SqlStore, collection: str) -> None:
    """set_grant adds, replaces, and with neither right removes an organisation's grant."""
    with store.write() as tx:
        org = tx.add_organisation("CERT", now=NOW).id
        tx.set_grant(Grant(collection, org, True, False))
    with store.read() as tx:
        assert tx.grants_on(collection) == [Grant(collection, org, True, False)]
    with store.write() as tx:
        tx.set_grant(Grant(collection, org, False, True))
    with store.read() as tx:
        assert tx.grants_on(collection) == [Grant(collection, org, False, True)]
        assert tx.grants_of(org) == {collection: Grant(collection, org, False, True)}
    with store.write() as tx:
        tx.set_grant(Grant(collection, org, False, False))
    with store.read() as tx:
        assert tx.grants_on(collection) == []
        assert tx.grants_of(org) == {}


def test_grants_of_filtered_by_api_root(store: SqlStore, collection: str) -> None:
    """grants_of lists an organisation's grants, all or those of one API root."""
    with store.write() as tx:
        cert = tx.add_organisation("CERT", now=NOW).id
        agency = tx.add_organisation("Agency", now=NOW).id
        partner = new_collection(tx, root="trust").id
        tx.set_grant(Grant(collection, cert, True, True))
        tx.set_grant(Grant(partner, cert, True, False))
        tx.set_grant(Grant(partner, agency, False, True))
    with store.read() as tx:
        assert tx.grants_of(cert) == {collection: Grant(collection, cert, True, True),
                                      partner: Grant(partner, cert, True, False)}
        assert tx.grants_of(cert, ROOT) == {collection: Grant(collection, cert, True, True)}
        assert tx.grants_of(cert, "trust") == {partner: Grant(partner, cert, True, False)}
        assert tx.grants_of(agency, ROOT) == {}


def test_grants_on_a_collection(store: SqlStore, collection: str) -> None:
    """grants_on lists every organisation's grant on one collection, and no other's."""
    with store.write() as tx:
        cert = tx.add_organisation("CERT", now=NOW).id
        agency = tx.add_organisation("Agency", now=NOW).id
        other = new_collection(tx).id
        tx.set_grant(Grant(collection, cert, True, True))
        tx.set_grant(Grant(collection, agency, True, False))
        tx.set_grant(Grant(other, agency, False, True))
    with store.read() as tx:
        on = sorted(tx.grants_on(collection), key=lambda g: g.org_id)
        assert on == sorted([Grant(collection, cert, True, True),
                             Grant(collection, agency, True, False)], key=lambda g: g.org_id)
        assert tx.grants_on(other) == [Grant(other, agency, False, True)]


# -- node settings ------------------------------------------------------------------------------
def test_settings_get_put_overwrite(store: SqlStore) -> None:
    """A node setting is absent until put, then holds the last value put."""
    with store.read() as tx:
        assert tx.get_setting("colour") is None
    with store.write() as tx:
        tx.put_setting("colour", "blue")
    with store.read() as tx:
        assert tx.get_setting("colour") == "blue"
    with store.write() as tx:
        tx.put_setting("colour", "green")
        tx.put_setting("shape", "round")
    with store.read() as tx:
        assert (tx.get_setting("colour"), tx.get_setting("shape")) == ("green", "round")


# -- add_objects -------------------------------------------------------------------------------
def test_add_returns_outcome_and_version(store: SqlStore, collection: str) -> None:
    """Each object gets (ADDED, its modified, else created) in the order given."""
    marking = marking_statement()  # created only
    first = indicator(1, created=ts(0), modified=ts(7))
    assert add(store, collection, first, marking) == [
        (Outcome.ADDED, v(7)), (Outcome.ADDED, timestamps.parse(marking["created"]))]
    assert add(store, collection) == []


def test_every_version_is_kept(store: SqlStore, collection: str) -> None:
    """Three versions of one object are three stored versions."""
    sid = stix_id("indicator")
    add(store, collection, *(version_of(s, id=sid) for s in (1, 2, 3)))
    assert versions_listed(store, collection, ALL_VERSIONS) == [(sid, v(s)) for s in (1, 2, 3)]


def test_date_added_is_now_when_the_clock_moves_on(store: SqlStore, collection: str) -> None:
    """The first object added at ``now`` gets ``now`` as its date_added."""
    add(store, collection, malware(1), now=NOW)
    add(store, collection, malware(2), now=NOW + 1_000)
    assert [r.date_added for r in everything(store, collection)] == [NOW, NOW + 1_000]


def test_date_added_strictly_increases_when_now_stands_still_or_goes_back(
        store: SqlStore, collection: str) -> None:
    """date_added keeps increasing when ``now`` repeats or moves backwards."""
    add(store, collection, malware(1), malware(2), now=NOW)
    add(store, collection, malware(3), now=NOW)
    add(store, collection, malware(4), malware(5), now=NOW - 60_000_000)
    add(store, collection, malware(6), now=NOW + 1)
    listed = everything(store, collection)
    added = [r.date_added for r in listed]
    assert [orjson.loads(r.body)["name"] for r in listed] == [f"Malware {n}" for n in range(1, 7)]
    assert all(a < b for a, b in zip(added, added[1:]))


def test_date_added_unique_per_collection(store: SqlStore, collection: str) -> None:
    """No two stored versions in a collection share a date_added."""
    sid = stix_id("indicator")
    for n in range(5):
        add(store, collection, malware(n), version_of(n + 1, id=sid), ipv4(f"192.0.2.{n}"),
            now=NOW)
    added = [r.date_added for r in everything(store, collection)]
    assert len(added) == 15 and len(set(added)) == 15


def test_date_added_never_reused_after_delete(store: SqlStore, collection: str) -> None:
    """Deleting the newest object does not free its date_added for the next one."""
    gone = malware(1)
    add(store, collection, gone, now=NOW)
    with store.write() as tx:
        assert tx.delete_object(collection, gone["id"], Query(versions=ALL_VERSIONS), visibility=SEE_ALL) == 1
    add(store, collection, malware(2), now=NOW)
    assert [r.date_added for r in everything(store, collection)] == [NOW + 1]


def test_exact_duplicate_adds_nothing(store: SqlStore, collection: str) -> None:
    """The same id, version and content again, keys reordered, is a DUPLICATE."""
    original = indicator(1, created=ts(0), modified=ts(5), labels=["a", "b"],
                         x_detail={"alpha": 1, "beta": {"y": 2, "x": 1}})
    add(store, collection, original, now=NOW)
    before = everything(store, collection)
    reordered = dict(reversed(list(original.items())))
    reordered["x_detail"] = {"beta": {"x": 1, "y": 2}, "alpha": 1}
    assert add(store, collection, reordered, now=NOW + 1) == [(Outcome.DUPLICATE, v(5))]
    assert everything(store, collection) == before


def test_same_version_different_content_is_a_conflict(store: SqlStore, collection: str) -> None:
    """The same id and version with other content is a CONFLICT and stores nothing."""
    original = version_of(5, id=stix_id("indicator"), n=1)
    add(store, collection, original)
    changed = dict(original, name="Tampered")
    assert add(store, collection, changed) == [(Outcome.CONFLICT, v(5))]
    [record] = everything(store, collection)
    assert orjson.loads(record.body) == original


def test_duplicates_inside_one_batch(store: SqlStore, collection: str) -> None:
    """Within one batch, a repeat is a DUPLICATE and a changed repeat a CONFLICT."""
    sid = stix_id("indicator")
    original = version_of(5, id=sid, n=1)
    outcomes = add(store, collection, original, dict(original), dict(original, name="Other"),
                   version_of(6, id=sid, n=1))
    assert outcomes == [(Outcome.ADDED, v(5)), (Outcome.DUPLICATE, v(5)),
                        (Outcome.CONFLICT, v(5)), (Outcome.ADDED, v(6))]
    listed = everything(store, collection)
    assert [(r.stix_id, r.version) for r in listed] == [(sid, v(5)), (sid, v(6))]
    assert orjson.loads(listed[0].body) == original


def test_unversioned_observable_repeated_is_a_duplicate(store: SqlStore, collection: str) -> None:
    """An SCO without created/modified takes its date_added as version; a repeat is DUPLICATE."""
    address = ipv4("203.0.113.7")
    [(outcome, version)] = add(store, collection, address, now=NOW)
    [record] = everything(store, collection)
    assert outcome is Outcome.ADDED and version == record.date_added == record.version
    assert add(store, collection, dict(address), now=NOW + 5) == [(Outcome.DUPLICATE, version)]
    assert everything(store, collection) == [record]


def test_unversioned_observable_changed_is_a_new_version(store: SqlStore, collection: str) -> None:
    """Changed content of an unversioned SCO is a new version, versioned by its date_added."""
    address = ipv4("203.0.113.7")
    [(_, first)] = add(store, collection, address, now=NOW)
    changed = dict(address, x_note="seen again")
    [(outcome, second)] = add(store, collection, changed, now=NOW)
    listed = everything(store, collection)
    assert outcome is Outcome.ADDED and second > first
    assert [(r.version, r.date_added) for r in listed] == [(first, first), (second, second)]
    [latest] = everything(store, collection, filters.LAST_VERSION)
    assert orjson.loads(latest.body) == changed
    assert add(store, collection, address) == [(Outcome.DUPLICATE, first)]


def test_unversioned_observable_repeated_in_one_batch(store: SqlStore, collection: str) -> None:
    """An unversioned SCO twice in one batch is stored once."""
    address = ipv4("203.0.113.9")
    [(added, version), (again, same)] = add(store, collection, address, dict(address))
    assert (added, again, same) == (Outcome.ADDED, Outcome.DUPLICATE, version)
    assert len(everything(store, collection)) == 1


def test_same_object_in_two_collections_is_independent(
        store: SqlStore, collection: str, other_collection: str) -> None:
    """Collections do not share versions, duplicates, conflicts or date_added."""
    original = version_of(5, id=stix_id("indicator"), n=1)
    assert add(store, collection, original, now=NOW) == [(Outcome.ADDED, v(5))]
    rival = dict(original, name="Other view")
    assert add(store, other_collection, rival, now=NOW) == [(Outcome.ADDED, v(5))]
    [mine], [theirs] = everything(store, collection), everything(store, other_collection)
    assert orjson.loads(mine.body) == original and orjson.loads(theirs.body) == rival
    assert mine.date_added == theirs.date_added == NOW


# -- list_objects -------------------------------------------------------------------------------
@pytest.fixture
def three_versions(store: SqlStore, collection: str) -> tuple[str, str]:
    """A collection holding indicator A (versions 10, 20, 30) and malware B (one version)."""
    a = stix_id("indicator")
    b = malware(1, created=ts(40))
    add(store, collection, version_of(10, id=a), version_of(20, id=a))
    add(store, collection, b, version_of(30, id=a))
    return a, b["id"]


def test_match_version_last_is_the_default(store: SqlStore, collection: str,
                                           three_versions: tuple[str, str]) -> None:
    """Without match[version], each object's newest version is listed."""
    a, b = three_versions
    assert Query().versions == filters.LAST_VERSION
    assert versions_listed(store, collection, filters.LAST_VERSION) == sorted(
        [(a, v(30)), (b, v(40))])


def test_match_version_first(store: SqlStore, collection: str,
                             three_versions: tuple[str, str]) -> None:
    """match[version]=first lists each object's oldest version."""
    a, b = three_versions
    assert versions_listed(store, collection, Versions(first=True)) == sorted(
        [(a, v(10)), (b, v(40))])


def test_match_version_all(store: SqlStore, collection: str,
                           three_versions: tuple[str, str]) -> None:
    """match[version]=all lists every version."""
    a, b = three_versions
    assert versions_listed(store, collection, ALL_VERSIONS) == sorted(
        [(a, v(10)), (a, v(20)), (a, v(30)), (b, v(40))])


def test_match_version_exact(store: SqlStore, collection: str,
                             three_versions: tuple[str, str]) -> None:
    """Exact timestamps list exactly the versions they name, of any object."""
    a, b = three_versions
    assert versions_listed(store, collection, Versions(exact=(v(20),))) == [(a, v(20))]
    assert versions_listed(store, collection, Versions(exact=(v(10), v(40), v(99)))) == sorted(
        [(a, v(10)), (b, v(40))])
    assert versions_listed(store, collection, Versions(exact=(v(99),))) == []


def test_match_version_first_and_last(store: SqlStore, collection: str,
                                      three_versions: tuple[str, str]) -> None:
    """first,last lists both ends once each; an only version is listed once."""
    a, b = three_versions
    assert versions_listed(store, collection, Versions(first=True, last=True)) == sorted(
        [(a, v(10)), (a, v(30)), (b, v(40))])


def test_match_version_keyword_and_exact_list(store: SqlStore, collection: str,
                                              three_versions: tuple[str, str]) -> None:
    """A keyword with exact timestamps lists the union, without repeats."""
    a, b = three_versions
    mixed = Versions(first=True, exact=(v(20), v(10)))
    assert versions_listed(store, collection, mixed) == sorted(
        [(a, v(10)), (a, v(20)), (b, v(40))])


def test_versions_arriving_out_of_order(store: SqlStore, collection: str) -> None:
    """An older version added after a newer one keeps first and last right."""
    sid = stix_id("indicator")
    add(store, collection, version_of(20, id=sid))
    add(store, collection, version_of(10, id=sid))
    assert versions_listed(store, collection, filters.LAST_VERSION) == [(sid, v(20))]
    assert versions_listed(store, collection, Versions(first=True)) == [(sid, v(10))]
    add(store, collection, version_of(15, id=sid), version_of(5, id=sid), version_of(25, id=sid))
    assert versions_listed(store, collection, filters.LAST_VERSION) == [(sid, v(25))]
    assert versions_listed(store, collection, Versions(first=True)) == [(sid, v(5))]
    assert len(everything(store, collection)) == 5


def test_filter_by_ids(store: SqlStore, collection: str) -> None:
    """match[id] lists only the objects named."""
    objects = [malware(n) for n in range(4)]
    add(store, collection, *objects)
    wanted = (objects[1]["id"], objects[3]["id"], stix_id("malware"))
    assert {r.stix_id for r in everything(store, collection, ids=wanted)} == set(wanted[:2])


def test_filter_by_types(store: SqlStore, collection: str) -> None:
    """match[type] lists only objects of the types named."""
    bad, ind, address = malware(1), indicator(1), ipv4("192.0.2.1")
    add(store, collection, bad, ind, address, relationship(ind["id"], bad["id"]))
    listed = everything(store, collection, types=("malware", "ipv4-addr"))
    assert {r.stix_id for r in listed} == {bad["id"], address["id"]}
    assert everything(store, collection, types=("campaign",)) == []


def test_filter_by_spec_versions(store: SqlStore, collection: str) -> None:
    """match[spec_version] 2.1 lists the (all 2.1) objects; 2.0 lists none."""
    add(store, collection, malware(1), ipv4("192.0.2.1"))
    assert [r.spec_version for r in everything(store, collection, spec_versions=("2.1",))] == [
        "2.1", "2.1"]
    assert everything(store, collection, spec_versions=("2.0",)) == []


def test_filters_combine_with_and(store: SqlStore, collection: str) -> None:
    """ids, types, versions and spec_versions must all match."""
    sid = stix_id("indicator")
    bad = malware(1)
    add(store, collection, version_of(1, id=sid), version_of(2, id=sid), bad, malware(2))
    both = (sid, bad["id"])
    assert versions_listed(store, collection, filters.LAST_VERSION, ids=both,
                           types=("indicator",)) == [(sid, v(2))]
    assert versions_listed(store, collection, ALL_VERSIONS, ids=both, types=("indicator",),
                           spec_versions=("2.1",)) == [(sid, v(1)), (sid, v(2))]
    assert versions_listed(store, collection, ALL_VERSIONS, ids=both, types=("indicator",),
                           spec_versions=("2.0",)) == []
    assert versions_listed(store, collection, ALL_VERSIONS, ids=(bad["id"],),
                           types=("indicator",)) == []


def test_list_one_object(store: SqlStore, collection: str) -> None:
    """object_id narrows the listing to one object's matching versions."""
    sid = stix_id("indicator")
    add(store, collection, version_of(1, id=sid), malware(1), version_of(2, id=sid))
    found = page(store, collection, Query(versions=ALL_VERSIONS, limit=10), object_id=sid)
    assert [(r.stix_id, r.version) for r in found.records] == [(sid, v(1)), (sid, v(2))]
    latest = page(store, collection, Query(limit=10), object_id=sid)
    assert [r.version for r in latest.records] == [v(2)]
    assert page(store, collection, Query(limit=10), object_id=stix_id("indicator")).records == []


def test_after_lists_only_later_additions(store: SqlStore, collection: str) -> None:
    """``after`` lists the records added strictly after that date_added."""
    add(store, collection, *(malware(n) for n in range(5)), now=NOW)
    added = [r.date_added for r in everything(store, collection)]
    later = page(store, collection, Query(versions=ALL_VERSIONS, limit=10), after=added[1])
    assert [r.date_added for r in later.records] == added[2:]
    assert page(store, collection, Query(limit=10), after=added[-1]).records == []
    from_epoch = page(store, collection, Query(limit=10), after=0)
    assert [r.date_added for r in from_epoch.records] == added


def test_limit_and_more(store: SqlStore, collection: str) -> None:
    """A page holds at most ``limit`` records, and ``more`` says whether others follow."""
    add(store, collection, *(malware(n) for n in range(5)))
    query = Query(limit=2)
    sizes, more, after = [], [], None
    while True:
        found = page(store, collection, query, after=after)
        sizes.append(len(found.records))
        more.append(found.more)
        if not found.more:
            break
        after = found.last_added
    assert (sizes, more) == ([2, 2, 1], [True, True, False])
    assert page(store, collection, Query(limit=5)).more is False
    assert page(store, collection, Query(limit=4)).more is True


def test_page_bounds(store: SqlStore, collection: str) -> None:
    """first_added and last_added are the ends of the page, and None on an empty page."""
    add(store, collection, *(malware(n) for n in range(3)), now=NOW)
    found = page(store, collection, Query(limit=2))
    assert (found.first_added, found.last_added) == (NOW, NOW + 1)
    empty = page(store, collection, Query(limit=2), after=NOW + 2)
    assert (empty.records, empty.more) == ([], False)
    assert (empty.first_added, empty.last_added) == (None, None)


@pytest.mark.parametrize("limit", [1000, 333])
def test_paging_many_objects_is_exact(store: SqlStore, collection: str, limit: int) -> None:
    """Pages over 2,500 objects join up to exactly the objects, each once, in order."""
    objects = [malware(n) for n in range(2_500)]
    for start in range(0, len(objects), 700):
        add(store, collection, *objects[start:start + 700], now=NOW)
    listed = everything(store, collection, filters.LAST_VERSION, limit=limit)
    assert [r.stix_id for r in listed] == [o["id"] for o in objects]
    added = [r.date_added for r in listed]
    assert all(a < b for a, b in zip(added, added[1:]))


def test_listing_without_bodies(store: SqlStore, collection: str) -> None:
    """with_body=False lists the same records with body None."""
    add(store, collection, malware(1), ipv4("192.0.2.1"))
    full = page(store, collection, Query(limit=10))
    bare = page(store, collection, Query(limit=10), with_body=False)
    assert all(isinstance(r.body, bytes) for r in full.records)
    assert [r.body for r in bare.records] == [None, None]
    assert [(r.stix_id, r.version, r.date_added, r.spec_version, r.media_type)
            for r in bare.records] == [(r.stix_id, r.version, r.date_added, r.spec_version,
                                        r.media_type) for r in full.records]


def test_bodies_round_trip(store: SqlStore, collection: str) -> None:
    """Each stored body parses back to the object exactly as given."""
    given = [indicator(1, confidence=85, labels=["ünïcode ✓"], x_nested={"z": [1, {"a": None}]},
                       external_references=[{"source_name": "cert", "url": "https://e.example"}]),
             ipv4("198.51.100.2"), marking_statement("© Ministère")]
    add(store, collection, *given)
    listed = everything(store, collection)
    assert [orjson.loads(r.body) for r in listed] == given
    assert {r.media_type for r in listed} == {"application/stix+json;version=2.1"}


# -- list_versions ------------------------------------------------------------------------------
def test_list_versions_in_date_added_order(store: SqlStore, collection: str) -> None:
    """list_versions lists one object's every version, in the order they were added."""
    sid = stix_id("indicator")
    add(store, collection, version_of(20, id=sid), malware(1))
    add(store, collection, version_of(10, id=sid), version_of(30, id=sid))
    with store.read() as tx:
        found = tx.list_versions(collection, sid, visibility=SEE_ALL, query=Query(versions=ALL_VERSIONS, limit=10),
                                 after=None)
        missing = tx.list_versions(collection, stix_id("indicator"), visibility=SEE_ALL,
                                   query=Query(versions=ALL_VERSIONS, limit=10), after=None)
    assert [r.version for r in found.records] == [v(20), v(10), v(30)]
    assert {r.stix_id for r in found.records} == {sid}
    added = [r.date_added for r in found.records]
    assert added == sorted(added) and found.more is False
    assert missing.records == [] and missing.more is False


def test_list_versions_paging(store: SqlStore, collection: str) -> None:
    """list_versions pages by date_added with ``limit`` and ``more``, skipping nothing."""
    sid = stix_id("indicator")
    for second in (5, 4, 3, 2, 1):
        add(store, collection, version_of(second, id=sid), malware(second))
    seen: list[int] = []
    after = None
    pages = 0
    while True:
        with store.read() as tx:
            found = tx.list_versions(collection, sid, visibility=SEE_ALL, query=Query(versions=ALL_VERSIONS, limit=2),
                                     after=after)
        assert len(found.records) <= 2
        seen += [r.version for r in found.records]
        pages += 1
        if not found.more:
            break
        after = found.last_added
    assert seen == [v(s) for s in (5, 4, 3, 2, 1)] and pages == 3


def test_list_versions_by_spec_version(store: SqlStore, collection: str) -> None:
    """list_versions honours match[spec_version]."""
    sid = stix_id("indicator")
    add(store, collection, version_of(1, id=sid), version_of(2, id=sid))
    with store.read() as tx:
        none = tx.list_versions(collection, sid, visibility=SEE_ALL, query=Query(versions=ALL_VERSIONS, limit=10,
                                                       spec_versions=("2.0",)), after=None)
        some = tx.list_versions(collection, sid, visibility=SEE_ALL, query=Query(versions=ALL_VERSIONS, limit=10,
                                                       spec_versions=("2.1",)), after=None)
    assert none.records == [] and len(some.records) == 2


# -- delete_object ------------------------------------------------------------------------------
def test_delete_every_version(store: SqlStore, collection: str) -> None:
    """Deleting with match[version]=all removes every version and returns how many."""
    sid = stix_id("indicator")
    keep = malware(1)
    add(store, collection, version_of(1, id=sid), version_of(2, id=sid), keep,
        version_of(3, id=sid))
    with store.write() as tx:
        assert tx.delete_object(collection, sid, Query(versions=filters.ALL_VERSIONS), visibility=SEE_ALL) == 3
    assert [r.stix_id for r in everything(store, collection)] == [keep["id"]]


def test_delete_unknown_object_removes_nothing(store: SqlStore, collection: str) -> None:
    """Deleting an id the collection does not hold returns 0."""
    add(store, collection, malware(1))
    with store.write() as tx:
        assert tx.delete_object(collection, stix_id("malware"), Query(versions=ALL_VERSIONS), visibility=SEE_ALL) == 0
    assert len(everything(store, collection)) == 1


def test_delete_exact_versions_recomputes_first_and_last(store: SqlStore, collection: str) -> None:
    """Deleting the oldest and newest versions makes the survivors first and last."""
    sid = stix_id("indicator")
    add(store, collection, *(version_of(s, id=sid) for s in (10, 20, 30, 40)))
    with store.write() as tx:
        ends = Query(versions=Versions(exact=(v(10), v(40))))
        assert tx.delete_object(collection, sid, ends, visibility=SEE_ALL) == 2
    assert versions_listed(store, collection, ALL_VERSIONS) == [(sid, v(20)), (sid, v(30))]
    assert versions_listed(store, collection, Versions(first=True)) == [(sid, v(20))]
    assert versions_listed(store, collection, filters.LAST_VERSION) == [(sid, v(30))]
    with store.read() as tx:
        assert counted(tx, collection) == 1


def test_delete_middle_version_keeps_ends(store: SqlStore, collection: str) -> None:
    """Deleting a middle version leaves first and last as they were."""
    sid = stix_id("indicator")
    add(store, collection, *(version_of(s, id=sid) for s in (10, 20, 30)))
    with store.write() as tx:
        assert tx.delete_object(collection, sid, Query(versions=Versions(exact=(v(20),))), visibility=SEE_ALL) == 1
    assert versions_listed(store, collection, Versions(first=True, last=True)) == [
        (sid, v(10)), (sid, v(30))]


def test_delete_last_version_promotes_the_previous(store: SqlStore, collection: str) -> None:
    """Deleting match[version]=last makes the version before it the last."""
    sid = stix_id("indicator")
    add(store, collection, version_of(30, id=sid), version_of(10, id=sid), version_of(20, id=sid))
    with store.write() as tx:
        assert tx.delete_object(collection, sid, Query(versions=filters.LAST_VERSION), visibility=SEE_ALL) == 1
    assert versions_listed(store, collection, filters.LAST_VERSION) == [(sid, v(20))]
    assert versions_listed(store, collection, Versions(first=True)) == [(sid, v(10))]


def test_delete_version_not_held_removes_nothing(store: SqlStore, collection: str) -> None:
    """An exact version the object does not have deletes nothing."""
    sid = stix_id("indicator")
    add(store, collection, version_of(10, id=sid))
    with store.write() as tx:
        assert tx.delete_object(collection, sid, Query(versions=Versions(exact=(v(11),))), visibility=SEE_ALL) == 0
    assert versions_listed(store, collection, Versions(first=True, last=True)) == [(sid, v(10))]


def test_delete_leaves_other_collections_alone(
        store: SqlStore, collection: str, other_collection: str) -> None:
    """Deleting an object from one collection keeps its copy in another."""
    sid = stix_id("indicator")
    for target in (collection, other_collection):
        add(store, target, version_of(1, id=sid), version_of(2, id=sid))
    with store.write() as tx:
        assert tx.delete_object(collection, sid, Query(versions=ALL_VERSIONS), visibility=SEE_ALL) == 2
    assert everything(store, collection) == []
    assert versions_listed(store, other_collection, ALL_VERSIONS) == [(sid, v(1)), (sid, v(2))]


def test_readd_after_delete(store: SqlStore, collection: str) -> None:
    """A deleted version can be added again, and is ADDED, not a DUPLICATE."""
    original = version_of(1, id=stix_id("indicator"))
    add(store, collection, original)
    with store.write() as tx:
        tx.delete_object(collection, original["id"], Query(versions=ALL_VERSIONS), visibility=SEE_ALL)
    assert add(store, collection, original) == [(Outcome.ADDED, v(1))]
    assert versions_listed(store, collection, Versions(first=True, last=True)) == [
        (original["id"], v(1))]


# -- count_objects ------------------------------------------------------------------------------
def test_count_objects_not_versions(store: SqlStore, collection: str,
                                    other_collection: str) -> None:
    """count_objects counts distinct objects, however many versions each has."""
    sid = stix_id("indicator")
    with store.read() as tx:
        assert counted(tx, collection) == 0
    add(store, collection, *(version_of(s, id=sid) for s in (1, 2, 3)), malware(1),
        ipv4("192.0.2.1"))
    add(store, collection, dict(ipv4("192.0.2.1"), x_note="changed"))
    add(store, other_collection, malware(2))
    with store.read() as tx:
        assert counted(tx, collection) == 3
        assert counted(tx, other_collection) == 1


# -- status resources ----------------------------------------------------------------------------
def _status(tx: SqlTx, *, created: int, api_root: str = ROOT, org_id: int = 7) -> str:
    """Save a status resource created at ``created``; return its id."""
    status_id = str(uuid.uuid4())
    tx.save_status(status_id=status_id, api_root=api_root, org_id=org_id, now=created,
                   body=orjson.dumps({"id": status_id, "status": "complete"}))
    return status_id


def test_status_save_and_get(store: SqlStore) -> None:
    """A status is got back, with its organisation, only under its own API root."""
    with store.write() as tx:
        status_id = _status(tx, created=NOW, org_id=42)
    with store.read() as tx:
        found = tx.get_status(status_id, api_root=ROOT)
        assert tx.get_status(status_id, api_root="trust") is None
        assert tx.get_status(str(uuid.uuid4()), api_root=ROOT) is None
    assert found is not None
    assert found[0] == 42 and orjson.loads(found[1]) == {"id": status_id, "status": "complete"}


def test_purge_statuses_removes_only_older(store: SqlStore) -> None:
    """purge_statuses(before=t) removes statuses created before t, keeps the rest."""
    with store.write() as tx:
        old = _status(tx, created=NOW - 2)
        older = _status(tx, created=NOW - 1, api_root="trust")
        edge = _status(tx, created=NOW)
        new = _status(tx, created=NOW + 1)
    with store.write() as tx:
        assert tx.purge_statuses(before=NOW) == 2
    with store.read() as tx:
        assert tx.get_status(old, api_root=ROOT) is None
        assert tx.get_status(older, api_root="trust") is None
        assert tx.get_status(edge, api_root=ROOT) is not None
        assert tx.get_status(new, api_root=ROOT) is not None
    with store.write() as tx:
        assert tx.purge_statuses(before=NOW) == 0


# -- concurrency ----------------------------------------------------------------------------------
THREADS, BATCHES, BATCH_SIZE = 4, 10, 50


Clock = Callable[[], int]


def stopped_clock() -> int:
    """A clock that never moves: the store alone must keep date_added increasing."""
    return NOW


def _writer(store: SqlStore, collection: str, batches: list[list[dict]], clock: Clock,
            start: threading.Barrier, outcomes: list[Outcome], errors: list[BaseException]) -> None:
    """Add each batch in its own write transaction, collecting the outcomes."""
    try:
        start.wait()
        for batch in batches:
            with store.write() as tx:
                done = tx.add_objects(collection, [validate(o) for o in batch], now=clock())
            outcomes += [outcome for outcome, _ in done]
    except BaseException as exc:  # noqa: BLE001 - reported by the test thread
        errors.append(exc)


def _follow(store: SqlStore, collection: str, writers: list[threading.Thread],
            seen: list[str], errors: list[BaseException]) -> None:
    """Page by date_added while the writers run, as a polling TAXII client would."""
    try:
        after = None
        while True:
            done = not any(w.is_alive() for w in writers)
            found = page(store, collection, Query(limit=37), after=after, with_body=False)
            seen += [r.stix_id for r in found.records]
            after = found.last_added if found.records else after
            if done and not found.more:
                return
    except BaseException as exc:  # noqa: BLE001
        errors.append(exc)


def _write_at_once(stores: list[SqlStore], collection: str, work: list[list[list[dict]]],
                   clock: Clock = timestamps.now_us) -> tuple[list[Outcome], list[str]]:
    """Run one writer thread per item of ``work`` and a following reader; return what happened."""
    start, errors = threading.Barrier(len(work)), []
    outcomes: list[Outcome] = []
    seen: list[str] = []
    writers = [threading.Thread(target=_writer, args=(stores[n % len(stores)], collection,
                                                      batches, clock, start, outcomes, errors))
               for n, batches in enumerate(work)]
    reader = threading.Thread(target=_follow, args=(stores[0], collection, writers, seen, errors))
    for thread in writers + [reader]:
        thread.start()
    for thread in writers + [reader]:
        thread.join()
    assert errors == []
    return outcomes, seen


def _distinct_batches() -> list[list[list[dict]]]:
    """Return, per thread, its batches of objects no other thread writes."""
    return [[[malware(t * 10_000 + b * 100 + n) for n in range(BATCH_SIZE)]
             for b in range(BATCHES)] for t in range(THREADS)]


def _assert_committed_in_order(listed: list[Record], work: list[list[list[dict]]]) -> None:
    """Check each batch is one contiguous run of date_added, each thread's in its own order."""
    batch_of = {o["id"]: (t, b) for t, mine in enumerate(work)
                for b, batch in enumerate(mine) for o in batch}
    assert sorted(r.stix_id for r in listed) == sorted(batch_of)
    added = [r.date_added for r in listed]
    assert all(a < b for a, b in zip(added, added[1:]))
    runs = [batch_of[r.stix_id] for r in listed]
    starts = [runs[i] for i in range(0, len(runs), BATCH_SIZE)]
    assert runs == [batch for batch in starts for _ in range(BATCH_SIZE)], "batches interleaved"
    for thread in range(len(work)):
        assert [b for t, b in starts if t == thread] == list(range(len(work[thread])))


@pytest.mark.parametrize("clock", [timestamps.now_us, stopped_clock], ids=["clock", "stopped"])
def test_concurrent_writers_hand_out_date_added_in_commit_order(
        store: SqlStore, collection: str, clock: Clock) -> None:
    """Parallel writers store every object once, each batch a contiguous run of date_added."""
    work = _distinct_batches()
    outcomes, seen = _write_at_once([store], collection, work, clock)
    assert set(outcomes) == {Outcome.ADDED}
    listed = everything(store, collection, limit=97)
    _assert_committed_in_order(listed, work)
    assert seen == [r.stix_id for r in listed], "a reader paging by date_added skipped or repeated"


def test_concurrent_writers_through_separate_stores(store: SqlStore, collection: str) -> None:
    """Writers in separate stores on one database (as separate workers) also keep the order."""
    others = [open_store(store.url) for _ in range(THREADS - 1)]
    try:
        work = _distinct_batches()
        outcomes, seen = _write_at_once([store, *others], collection, work, stopped_clock)
    finally:
        for other in others:
            other.close()
    assert set(outcomes) == {Outcome.ADDED}
    listed = everything(store, collection, limit=97)
    _assert_committed_in_order(listed, work)
    assert seen == [r.stix_id for r in listed], "a reader paging by date_added skipped or repeated"


def test_concurrent_writers_of_the_same_objects_store_each_once(
        store: SqlStore, collection: str) -> None:
    """Threads racing to add the same objects store each once; the others see DUPLICATE."""
    shared = [malware(n) for n in range(BATCH_SIZE * BATCHES)]
    batches = [shared[i:i + BATCH_SIZE] for i in range(0, len(shared), BATCH_SIZE)]
    work = [batches[t:] + batches[:t] for t in range(THREADS)]  # each thread starts elsewhere
    outcomes, seen = _write_at_once([store], collection, work)
    assert outcomes.count(Outcome.ADDED) == len(shared)
    assert outcomes.count(Outcome.DUPLICATE) == len(shared) * (THREADS - 1)
    listed = everything(store, collection, limit=97)
    assert sorted(r.stix_id for r in listed) == sorted(o["id"] for o in shared)
    assert len({r.date_added for r in listed}) == len(shared)
    assert seen == [r.stix_id for r in listed]


# -- schema ---------------------------------------------------------------------------------------
def test_migrations_match_schema(store: SqlStore) -> None:
    """The migrated database is exactly schema.metadata: migrations and schema never drift."""
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, schema.metadata) == []


def test_migrated_to_head(store: SqlStore) -> None:
    """A fresh database stands at the newest migration."""
    head = ScriptDirectory.from_config(migrate.config()).get_current_head()
    with store.engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == head


def test_initialise_twice_is_harmless(store: SqlStore, collection: str) -> None:
    """Running node.initialise again keeps the data, the cursor key and the schema."""
    add(store, collection, malware(1))
    with store.read() as tx:
        key = tx.get_setting(node_setup.CURSOR_KEY)
    node_setup.initialise(store)
    node_setup.initialise(store)
    with store.read() as tx:
        assert key is not None and tx.get_setting(node_setup.CURSOR_KEY) == key
        assert counted(tx, collection) == 1
    with store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), schema.metadata) == []


def test_sqlite_connections_are_durable_and_bounded(store: SqlStore) -> None:
    """Every SQLite connection: WAL, fsync at each commit, a small cache, a backstop checkpoint."""
    if store.engine.dialect.name != "sqlite":
        pytest.skip("SQLite connection settings")
    with store.engine.connect() as conn:
        def pragma(name: str) -> Any:
            return conn.exec_driver_sql(f"PRAGMA {name}").scalar()
        assert pragma("journal_mode") == "wal"
        assert pragma("synchronous") == 2      # FULL: a commit survives power loss
        assert pragma("cache_size") == -8192   # 8 MiB, so memory stays flat
        assert pragma("wal_autocheckpoint") == 50000  # a backstop: checkpoint.py does the work
        assert pragma("journal_size_limit") == 64 * 2**20
        assert pragma("foreign_keys") == 1


# -- the background checkpoint (SQLite) ---------------------------------------------------
def _checkpoint_threads() -> int:
    return sum(t.name == "communique-wal-checkpoint" for t in threading.enumerate())


def test_wal_is_checkpointed_in_the_background(store: SqlStore, tmp_path: Any) -> None:
    """A committed write reaches the database file itself without a commit waiting for it."""
    if store.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's write-ahead log")
    path = Path(store.engine.url.database)
    before = _checkpoint_threads()
    with store.write() as tx:
        tx.add_organisation("checkpointed", now=NOW)
    assert _checkpoint_threads() == before + 1
    deadline = time.monotonic() + 10
    while True:
        copy = tmp_path / "main-file-only.db"  # the database file without its WAL
        shutil.copyfile(path, copy)
        try:
            with closing(sqlite3.connect(copy)) as conn:
                names = [row[0] for row in conn.execute("SELECT name FROM organisations")]
        except sqlite3.DatabaseError:  # copied in the middle of a checkpoint: look again
            names = []
        copy.unlink()
        if "checkpointed" in names:
            break
        assert time.monotonic() < deadline, "the WAL was not copied into the database file"
        time.sleep(0.05)
    store.close()
    assert _checkpoint_threads() == before
