"""TLP 2.0 visibility as a property: random organisations, users, grants, collections and
marked objects, and every read path checked against a plain model of the rules.

The model below is written from the rules, not from ``access``: an object's level is its
most restrictive TLP marking (TLP 1.0 or 2.0, object or granular), else its collection's
current default; marking definitions are CLEAR. A reader organisation sees every level
but RED; a RED version reaches its producer and the organisations and users it names.
A public collection serves CLEAR only, to anyone. Objects are stored through
``Exchange.add``, as over TAXII, in one store per backend with fresh names per example.
"""

from __future__ import annotations

import io
import itertools
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, Phase, example, given, note, settings
from hypothesis import strategies as st

from communique import access, accounts, importer, node, timestamps
from communique.cli import add_collection
from communique.errors import Forbidden, NotFound, Unauthorized
from communique.exchange import Exchange, Listing
from communique.provenance.signatures import is_signed
from communique.settings import Settings
from communique.stix.markings import Tlp
from communique.store.engines import SqlStore
from tests.support import indicator, malware, ts, unsigned

ROOT = "default"
CLEAR, GREEN, AMBER, AMBER_STRICT, RED = range(5)
LEVEL_NAMES = ("clear", "green", "amber", "amber+strict", "red")
# The OASIS marking definitions, written out here so that the model does not borrow the
# code's table: TLP 2.0 (2022) and TLP 1.0 (STIX 2.1 §7.2.1.4, WHITE standing for CLEAR).
TLP2_REFS = {
    CLEAR: "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    GREEN: "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    AMBER: "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    AMBER_STRICT: "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    RED: "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
TLP1_REFS = {
    CLEAR: "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9",
    GREEN: "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
    AMBER: "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",
    RED: "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed",
}
REF_LEVELS = {ref: lvl for refs in (TLP2_REFS, TLP1_REFS) for lvl, ref in refs.items()}
OTHER_MARKING = "marking-definition--0b2c5f4e-8d3a-4c1e-9f6b-7a2d1e3c4b5a"  # not TLP
RECIPIENTS = "extension-definition--1a97b63f-06a8-4ee3-a22d-7f4d339a07d0"
TYPES = ("indicator", "malware", "ipv4-addr", "marking-definition")
WRITERS = ("admin", "analyst")

# No shrinking: an example takes a second and shrinking one costs minutes. A failure is
# reported as drawn, with the world described (notes); add Phase.shrink locally for a
# minimal one.
PROPERTY = settings(max_examples=40, deadline=None, database=None,
                    phases=[Phase.explicit, Phase.reuse, Phase.generate],
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])


# -- what hypothesis draws: a world described by indices, named at run time ----------------
@dataclass(frozen=True)
class Ref:
    """One marking reference: a TLP level in TLP 2.0 or 1.0 ids, or a marking that is not TLP."""

    scheme: str  # "tlp2", "tlp1" or "other"
    level: int = CLEAR

    @property
    def id(self) -> str:
        if self.scheme == "other":
            return OTHER_MARKING
        return (TLP2_REFS if self.scheme == "tlp2" else TLP1_REFS)[self.level]


@dataclass(frozen=True)
class Named:
    """Recipients: organisation and user indices (a user as (org, user, SHOUTED)), and strangers."""

    orgs: tuple[int, ...]
    users: tuple[tuple[int, int, bool], ...]
    strangers: bool


@dataclass(frozen=True)
class VersionSpec:
    second: int
    refs: tuple[Ref, ...]
    granular: tuple[Ref, ...]
    named: Named | None
    poster: tuple[int, int]  # (org, user)


@dataclass(frozen=True)
class ObjectSpec:
    type: str
    collection: int
    versions: tuple[VersionSpec, ...]


@dataclass(frozen=True)
class CollectionSpec:
    default: int
    public: bool
    grants: tuple[tuple[bool, bool], ...]  # per organisation: (read, write)
    later_default: int | None  # set after the writes (never on a public collection)


@dataclass(frozen=True)
class DeleteSpec:
    deleter: tuple[int, int] | None  # None: anonymous
    object: int
    versions: str | None  # None (all), "first" or "last"
    at: int  # before the how-manieth post (past the last: after them all)


@dataclass(frozen=True)
class WorldSpec:
    orgs: tuple[tuple[str, ...], ...]  # each organisation's users, by role
    collections: tuple[CollectionSpec, ...]
    objects: tuple[ObjectSpec, ...]
    order: tuple[tuple[int, int], ...]  # (object, version) in posting order
    batched: tuple[bool, ...]  # join this post to the previous one's envelope
    deletes: tuple[DeleteSpec, ...]


GRANTS = st.sampled_from([(True, True), (True, False), (False, True), (False, False), (True, True)])
LEVELS = st.integers(CLEAR, RED) | st.just(RED)  # RED, the level with most rules, twice as often
REFS = st.one_of(
    st.builds(Ref, st.just("tlp2"), st.integers(CLEAR, RED)),
    st.builds(Ref, st.just("tlp1"), st.sampled_from([CLEAR, GREEN, AMBER, RED])),
    st.just(Ref("other")),
)


@st.composite
def worlds(draw: st.DrawFn) -> WorldSpec:
    """Draw organisations, users, collections, grants, objects, posts and deletes."""
    orgs = tuple(draw(st.lists(st.sampled_from(access.ROLES), min_size=1, max_size=2).map(tuple))
                 for _ in range(draw(st.integers(2, 3))))
    users = [(o, u) for o, roles in enumerate(orgs) for u in range(len(roles))]
    collections = []
    for _ in range(draw(st.integers(1, 2))):
        public = draw(st.sampled_from([False, False, True]))
        default = CLEAR if public else draw(LEVELS)
        grants = tuple(draw(GRANTS) for _ in orgs)
        later = None if public else draw(st.none() | LEVELS)
        collections.append(CollectionSpec(default, public, grants, later))
    user_named = st.tuples(st.sampled_from(users), st.booleans()).map(lambda t: (*t[0], t[1]))
    named_orgs = st.lists(st.integers(0, len(orgs) - 1), max_size=2, unique=True).map(tuple)
    named = st.builds(Named, named_orgs, st.lists(user_named, max_size=2).map(tuple), st.booleans())
    version = st.builds(VersionSpec, st.integers(0, 3),
                        st.lists(REFS, max_size=2).map(tuple), st.lists(REFS, max_size=1).map(tuple),
                        st.none() | named, st.sampled_from(users))
    objects = []
    for _ in range(draw(st.integers(3, 6))):
        stix_type = draw(st.sampled_from(TYPES))
        count = 1 if stix_type == "marking-definition" else draw(st.integers(1, 3))
        versions = [draw(version) for _ in range(count)]
        if draw(st.booleans()):  # the first version again: a duplicate, or re-added once deleted
            versions.append(versions[0])
        objects.append(ObjectSpec(stix_type, draw(st.integers(0, len(collections) - 1)),
                                  tuple(versions)))
    order = draw(st.permutations([(o, v) for o, obj in enumerate(objects)
                                  for v in range(len(obj.versions))]))
    batched = tuple(draw(st.lists(st.booleans(), min_size=len(order), max_size=len(order))))
    deletes = []
    for _ in range(draw(st.integers(0, 3))):
        target = draw(st.integers(0, len(objects) - 1))
        grants = collections[objects[target].collection].grants
        able = [(o, u) for o, u in users if all(grants[o]) and orgs[o][u] in WRITERS]
        deleter = draw(st.sampled_from(able) if able and draw(st.integers(0, 3))
                       else st.none() | st.sampled_from(users))
        deletes.append(DeleteSpec(deleter, target, draw(st.sampled_from([None, "first", "last"])),
                                  draw(st.integers(0, len(order)))))
    return WorldSpec(tuple(orgs), tuple(collections), tuple(objects), tuple(order), batched,
                     tuple(deletes))


# -- the model -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Reader:
    """A user (or, with ``email`` None, an anonymous caller) as the model knows them."""

    email: str | None
    org: str | None
    role: str | None

    def __str__(self) -> str:
        return self.email or "anonymous"


@dataclass
class Version:
    """One stored version, as the model expects the store to hold it."""

    stix_id: str
    type: str
    version: int
    seq: int  # order of date_added
    body: bytes  # as posted; the node stores it signed
    own_level: int | None
    producer: str | None
    named: frozenset[str]


@dataclass
class ModelCollection:
    """A collection as the model knows it: settings, grants, and the versions it holds."""

    id: str
    default: int
    public: bool
    grants: dict[str, tuple[bool, bool]]  # organisation name: (read, write)
    versions: list[Version] = field(default_factory=list)


def own_level(raw: dict) -> int | None:
    """The most restrictive TLP marking of an object, or None; marking definitions are CLEAR."""
    if raw["type"] == "marking-definition":
        return CLEAR
    refs = list(raw.get("object_marking_refs", ()))
    refs += [g["marking_ref"] for g in raw.get("granular_markings", ()) if "marking_ref" in g]
    levels = [REF_LEVELS[r] for r in refs if r in REF_LEVELS]
    return max(levels) if levels else None


def named_in(raw: dict) -> frozenset[str]:
    """The principals an object's recipients extension names."""
    extension = raw.get("extensions", {}).get(RECIPIENTS, {})
    return frozenset([f"org:{n}" for n in extension.get("recipient_organizations", ())]
                     + [f"user:{e.lower()}" for e in extension.get("recipient_users", ())])


def level(collection: ModelCollection, version: Version) -> int:
    """A version's level: its own, else the collection's default as it is now."""
    return collection.default if version.own_level is None else version.own_level


def rights(reader: Reader, collection: ModelCollection) -> tuple[bool, bool]:
    """(may read, may write) the collection."""
    read, write = collection.grants.get(reader.org or "", (False, False))
    return read or collection.public, write and reader.role in WRITERS


def sees(reader: Reader, collection: ModelCollection, version: Version) -> bool:
    """Whether the rules let ``reader`` see this version."""
    lvl = level(collection, version)
    if collection.public:
        return lvl == CLEAR
    if reader.email is None:
        return False
    if lvl != RED:
        return True
    return (version.producer == reader.org or f"org:{reader.org}" in version.named
            or f"user:{reader.email}" in version.named)


def refusal(reader: Reader, collection: ModelCollection, *, writing: bool = False,
            deleting: bool = False) -> type[Exception] | None:
    """The error a request must get before it looks at any object, or None."""
    if reader.email is None and (writing or deleting or not collection.public):
        return Unauthorized
    read, write = rights(reader, collection)
    if not (read or write):
        return NotFound
    if writing:
        return None if write else Forbidden
    if deleting:
        return None if read and write else Forbidden
    return None if read else Forbidden


def matching(collection: ModelCollection, which: str, ids: set[str] | None = None,
             types: set[str] | None = None) -> list[Version]:
    """Stored versions selected by match[version] (over every stored version), in date_added order."""
    by_id: dict[str, list[Version]] = {}
    for v in collection.versions:
        by_id.setdefault(v.stix_id, []).append(v)
    chosen = []
    for v in collection.versions:
        numbers = [other.version for other in by_id[v.stix_id]]
        selected = (which == "all" or which == "last" and v.version == max(numbers)
                    or which == "first" and v.version == min(numbers))
        if selected and (ids is None or v.stix_id in ids) and (types is None or v.type in types):
            chosen.append(v)
    return sorted(chosen, key=lambda v: v.seq)


def seen(reader: Reader, collection: ModelCollection,
         versions: list[Version]) -> list[tuple[str, int]]:
    """(id, version) of those of ``versions`` the reader may see, in order."""
    return [(v.stix_id, v.version) for v in versions if sees(reader, collection, v)]


# -- building the world through the real code path ---------------------------------------
@dataclass
class World:
    """One drawn world, built: the store, its users under fresh names, and the model."""

    store: SqlStore
    exchange: Exchange
    readers: list[Reader]
    users: dict[tuple[int, int], Reader]
    orgs: list[str]
    collections: list[ModelCollection]
    object_ids: list[str]
    seq: Iterator[int] = field(default_factory=itertools.count)

    principals: dict[str, access.Principal] = field(default_factory=dict)

    def principal(self, reader: Reader) -> access.Principal | None:
        if reader.email is None:
            return None
        if reader.email not in self.principals:
            self.principals[reader.email] = accounts.principal_for(self.store, reader.email)
        return self.principals[reader.email]


def build(store: SqlStore, exchange: Exchange, spec: WorldSpec) -> World:
    """Create the organisations, users and collections of ``spec`` under fresh names."""
    tag = uuid.uuid4().hex[:8]
    orgs = [f"Org {i} {tag}" for i in range(len(spec.orgs))]
    users: dict[tuple[int, int], Reader] = {}
    for o, roles in enumerate(spec.orgs):
        accounts.add_organisation(store, orgs[o])
        for u, role in enumerate(roles):
            email = f"user{u}@org{o}-{tag}.example"
            accounts.add_user(store, email, org=orgs[o], role=role)
            users[(o, u)] = Reader(email, orgs[o], role)
    collections = []
    for c in spec.collections:
        created = add_collection(store, f"TLP {tag}", root=ROOT, default_tlp=Tlp(c.default),
                                 public=c.public,
                                 read=tuple(orgs[o] for o, g in enumerate(c.grants) if g[0]),
                                 write=tuple(orgs[o] for o, g in enumerate(c.grants) if g[1]))
        grants = {orgs[o]: g for o, g in enumerate(c.grants) if g[0] or g[1]}
        collections.append(ModelCollection(created.id, c.default, c.public, grants))
    object_ids = [f"{o.type}--{uuid.uuid4()}" for o in spec.objects]
    return World(store, exchange, [*users.values(), Reader(None, None, None)], users, orgs,
                 collections, object_ids)


def stix(world: World, spec: ObjectSpec, index: int, version: VersionSpec) -> dict:
    """The STIX object of one version of one drawn object."""
    stix_id = world.object_ids[index]
    if spec.type == "indicator":
        obj = indicator(index, id=stix_id, modified=ts(version.second))
    elif spec.type == "malware":
        obj = malware(index, id=stix_id, modified=ts(version.second))
    elif spec.type == "ipv4-addr":
        obj = {"type": "ipv4-addr", "spec_version": "2.1", "id": stix_id,
               "value": f"198.51.100.{index}"}
    else:
        obj = {"type": "marking-definition", "spec_version": "2.1", "id": stix_id,
               "created": ts(version.second), "definition_type": "statement",
               "definition": {"statement": f"Statement {index}"}}
    if version.refs:
        obj["object_marking_refs"] = [r.id for r in version.refs]
    if version.granular:
        obj["granular_markings"] = [{"marking_ref": r.id, "selectors": ["id"]}
                                    for r in version.granular]
    if version.named is not None:
        users = []
        for o, u, shout in version.named.users:
            email = world.users[(o, u)].email or ""
            users.append(email.upper() if shout else email)
        orgs = [world.orgs[o] for o in version.named.orgs]
        if version.named.strangers:
            orgs, users = orgs + ["Nobody at all"], users + ["nobody@nowhere.example"]
        obj["extensions"] = {RECIPIENTS: {"extension_type": "property-extension",
                                          "recipient_organizations": orgs,
                                          "recipient_users": users}}
    return obj


def post(world: World, spec: WorldSpec, batch: list[tuple[int, int]]) -> None:
    """Add one envelope through ``Exchange.add``; check its status against the model."""
    first_object, first_version = batch[0]
    poster = world.users[spec.objects[first_object].versions[first_version].poster]
    collection = world.collections[spec.objects[first_object].collection]
    objects = [stix(world, spec.objects[o], o, spec.objects[o].versions[v]) for o, v in batch]
    envelope = orjson.dumps({"objects": objects})
    expected_error = refusal(poster, collection, writing=True)
    note(f"{poster} posts {[(o['id'], o.get('modified') or o.get('created')) for o in objects]} "
         f"to collection {spec.objects[first_object].collection}")
    if expected_error is not None:
        with pytest.raises(expected_error):
            world.exchange.add(world.principal(poster), ROOT, collection.id, envelope)
        return
    status = orjson.loads(world.exchange.add(world.principal(poster), ROOT, collection.id, envelope))
    successes, failures = list(status.get("successes", [])), list(status.get("failures", []))
    for raw in objects:
        outcome, version = expect_outcome(collection, raw)
        entry = (failures if outcome == "refused" else successes).pop(0)
        assert entry["id"] == raw["id"], (outcome, entry, raw)
        duplicate = "duplicate" in entry.get("message", "")
        if outcome == "refused":
            assert "public" in entry["message"] or "different object" in entry["message"], entry
        assert duplicate == (outcome == "duplicate"), (outcome, entry, raw)
        if outcome == "added":
            stored = timestamps.parse(entry["version"]) if version is None else version
            collection.versions.append(Version(
                raw["id"], raw["type"], stored, next(world.seq),
                orjson.dumps(raw, option=orjson.OPT_SORT_KEYS), own_level(raw), poster.org,
                named_in(raw)))
    assert not successes and not failures


def expect_outcome(collection: ModelCollection, raw: dict) -> tuple[str, int | None]:
    """('added' | 'duplicate' | 'refused', the version when the object names one).

    Bodies are compared as posted: the node signs each one with Ed25519, which is
    deterministic, so the same object posted twice is stored the same way twice.
    """
    lvl = own_level(raw)
    if collection.public and (collection.default if lvl is None else lvl) != CLEAR:
        return "refused", None
    body = orjson.dumps(raw, option=orjson.OPT_SORT_KEYS)
    stamp = raw.get("modified") or raw.get("created")
    if stamp is None:
        same = [v for v in collection.versions if v.stix_id == raw["id"] and v.body == body]
        return ("duplicate" if same else "added"), None
    number = timestamps.parse(stamp)
    same = [v for v in collection.versions if v.stix_id == raw["id"] and v.version == number]
    if same:
        return ("duplicate" if same[0].body == body else "refused"), number
    return "added", number


def delete(world: World, spec: WorldSpec, item: DeleteSpec) -> None:
    """Delete through ``Exchange.delete``; check the outcome against the model."""
    deleter = world.users[item.deleter] if item.deleter is not None else Reader(None, None, None)
    collection = world.collections[spec.objects[item.object].collection]
    stix_id = world.object_ids[item.object]
    params = [] if item.versions is None else [("match[version]", item.versions)]
    doomed = [v for v in matching(collection, item.versions or "all", {stix_id})
              if sees(deleter, collection, v)]
    expected_error = refusal(deleter, collection, deleting=True) or (None if doomed else NotFound)
    note(f"{deleter} deletes {stix_id} {params}: expecting {expected_error or len(doomed)}")
    removed = refused_or(expected_error, world.exchange.delete, world.principal(deleter), ROOT,
                         collection.id, stix_id, params)
    if removed is None:
        return
    assert removed == len(doomed)
    collection.versions = [v for v in collection.versions if v not in doomed]


def set_defaults(world: World, spec: WorldSpec) -> None:
    """Change collection defaults after the writes: the level of unmarked objects follows."""
    for model, drawn in zip(world.collections, spec.collections, strict=True):
        if drawn.later_default is not None:
            with world.store.write() as tx:
                tx.set_collection_tlp(model.id, default_tlp=drawn.later_default, public=False)
            model.default = drawn.later_default
            note(f"collection default of {model.id} is now {LEVEL_NAMES[drawn.later_default]}")


# -- the checks ----------------------------------------------------------------------------
def refused_or(expected_error: type[Exception] | None, call: Callable[..., Any], *args: Any,
               **kwargs: Any) -> Any:
    """Return ``call(*args, **kwargs)``, or assert that it raises ``expected_error`` and return None."""
    if expected_error is None:
        return call(*args, **kwargs)
    with pytest.raises(expected_error):
        call(*args, **kwargs)
    return None


def as_posted(body: bytes) -> bytes:
    """A stored body as the model holds it: assert the node signed it, and drop the signature."""
    served = orjson.loads(body)
    assert is_signed(served), served.get("id")
    return orjson.dumps(unsigned(served), option=orjson.OPT_SORT_KEYS)


def records(listing: Listing) -> list[tuple[str, int]]:
    """(id, version) of a listing's records, in order."""
    return [(r.stix_id, r.version) for r in listing.page.records]


def check_listings(world: World, reader: Reader, collection: ModelCollection, ids: list[str]) -> None:
    """Get Objects and the manifest, with version, id and type filters, and paged."""
    principal = world.principal(reader)
    error = refusal(reader, collection)
    types = sorted({v.type for v in collection.versions})[:1] or ["indicator"]
    probe = ids[:2] or [f"indicator--{uuid.uuid4()}"]
    cases: list[tuple[list[tuple[str, str]], list[Version]]] = [
        ([], matching(collection, "last")),
        ([("match[version]", "all")], matching(collection, "all")),
        ([("match[version]", "first")], matching(collection, "first")),
        ([("match[type]", types[0])], matching(collection, "last", types=set(types))),
        ([("match[id]", ",".join(probe))], matching(collection, "last", ids=set(probe))),
        ([("match[version]", "all"), ("match[type]", "indicator,malware")],
         matching(collection, "all", types={"indicator", "malware"})),
    ]
    bodies = {(v.stix_id, v.version): v.body for v in collection.versions}
    for params, candidates in cases:
        expected = seen(reader, collection, candidates)
        for manifest in (False, True):
            listing = refused_or(error, world.exchange.objects, principal, ROOT, collection.id,
                                 params, manifest=manifest)
            if listing is None:
                continue
            assert records(listing) == expected, (str(reader), params, manifest)
            assert not listing.page.more
            for record in listing.page.records:
                if manifest:
                    assert record.body is None
                else:
                    assert as_posted(record.body) == bodies[(record.stix_id, record.version)]
        if error is None:
            assert paged(world, principal, collection, params) == expected, (str(reader), params)


def paged(world: World, principal: access.Principal | None, collection: ModelCollection,
          params: list[tuple[str, str]]) -> list[tuple[str, int]]:
    """Walk Get Objects two records at a time through ``next``; check each page's ``more``."""
    got: list[tuple[str, int]] = []
    cursor = None
    while True:
        extra = [("limit", "2")] + ([("next", cursor)] if cursor else [])
        listing = world.exchange.objects(principal, ROOT, collection.id, params + extra)
        page = records(listing)
        assert len(page) <= 2
        got += page
        if not listing.page.more:
            return got
        assert len(page) == 2 and listing.next_cursor
        cursor = listing.next_cursor


def check_objects(world: World, reader: Reader, collection: ModelCollection, ids: list[str]) -> None:
    """Get an Object (last and all versions) and Get Object Versions, for each id and an unknown one."""
    principal = world.principal(reader)
    error = refusal(reader, collection)
    for stix_id in [*ids, f"indicator--{uuid.uuid4()}"]:
        every = seen(reader, collection, matching(collection, "all", {stix_id}))
        hidden = error or (None if every else NotFound)
        for which in ("last", "all", "first"):
            params = [] if which == "last" else [("match[version]", which)]
            listing = refused_or(hidden, world.exchange.object, principal, ROOT, collection.id,
                                 stix_id, params)
            if listing is not None:
                expected = seen(reader, collection, matching(collection, which, {stix_id}))
                assert records(listing) == expected, (str(reader), stix_id, which)
        listing = refused_or(hidden, world.exchange.versions, principal, ROOT, collection.id,
                             stix_id, [])
        if listing is not None:
            assert records(listing) == every, (str(reader), stix_id, "versions")


def check_export_and_counts(world: World, reader: Reader, collection: ModelCollection) -> None:
    """The export (never RED) and the counts by level of what the reader sees."""
    if reader.email is None or refusal(reader, collection) is not None:
        return
    principal = world.principal(reader)
    assert principal is not None
    with world.store.read() as tx:
        stored = tx.get_collection(ROOT, collection.id)
        assert stored is not None
        counts = tx.count_objects(collection.id, visibility=access.visibility(principal, stored))
    last = [v for v in matching(collection, "last") if sees(reader, collection, v)]
    assert counts == dict(Counter(level(collection, v) for v in last)), str(reader)
    for all_versions in (False, True):
        out = io.BytesIO()
        count = importer.export_bundle(world.store, stored, out, principal=principal,
                                       all_versions=all_versions)
        bundle = orjson.loads(out.getvalue())
        chosen = matching(collection, "all" if all_versions else "last")
        expected = [v.body for v in chosen
                    if sees(reader, collection, v) and level(collection, v) != RED]
        got = [as_posted(orjson.dumps(o)) for o in bundle["objects"]]
        assert got == expected, (str(reader), "export", all_versions)
        assert count == len(expected)


def describe(world: World) -> str:
    """The collections and what the model holds in them, for the report of a failing example."""
    lines = []
    for c, model in enumerate(world.collections):
        lines.append(f"collection {c}: default {LEVEL_NAMES[model.default]}, public {model.public}, "
                     f"grants {model.grants}")
        for v in model.versions:
            lines.append(f"  {v.stix_id} v{v.version} own {v.own_level} producer {v.producer} "
                         f"named {sorted(v.named)}")
    return "\n".join(lines)


@pytest.fixture
def exchange(store: SqlStore, database_url: str) -> Exchange:
    """The use cases the TAXII routes call, in process, over the test's store, signing what
    its users add with the node's own key, as the server does."""
    settings = Settings(database=database_url)
    return Exchange(store, settings, b"property-test-cursor-key-32bytes",
                    node.signer(store, settings))


# Two worlds that are always tried first: an unmarked object is RED by its collection's
# default (from the start, or once the default changes), and names recipients.
RED_BY_DEFAULT = WorldSpec(
    orgs=(("analyst",), ("reader",)),
    collections=(CollectionSpec(RED, False, ((True, True), (True, False)), None),),
    objects=(ObjectSpec("indicator", 0, (VersionSpec(0, (), (), Named((1,), (), False), (0, 0)),)),),
    order=((0, 0),), batched=(False,), deletes=())
RED_LATER = WorldSpec(
    orgs=(("analyst",), ("reader", "reader")),
    collections=(CollectionSpec(AMBER, False, ((True, True), (True, False)), RED),),
    objects=(ObjectSpec("malware", 0, (VersionSpec(0, (Ref("other"),), (),
                                                   Named((), ((1, 0, True),), False), (0, 0)),)),),
    order=((0, 0),), batched=(False,), deletes=())


def test_every_read_path_shows_exactly_what_the_rules_allow(store: SqlStore,
                                                            exchange: Exchange) -> None:
    """For random worlds, every user (and an anonymous caller) gets, on every read path,
    exactly the versions the model of the TLP rules lets them see."""

    @PROPERTY
    @given(spec=worlds())
    @example(spec=RED_BY_DEFAULT)
    @example(spec=RED_LATER)
    def check(spec: WorldSpec) -> None:
        world = build(store, exchange, spec)
        batches: list[list[tuple[int, int]]] = []
        for item, join in zip(spec.order, spec.batched, strict=True):
            collection = spec.objects[item[0]].collection
            if join and batches and spec.objects[batches[-1][0][0]].collection == collection:
                batches[-1].append(item)
            else:
                batches.append([item])
        for at, batch in enumerate([*batches, []]):
            for item in spec.deletes:
                if item.at == at or at == len(batches) and item.at > at:
                    delete(world, spec, item)
            if batch:
                post(world, spec, batch)
        set_defaults(world, spec)
        note(describe(world))
        for c, collection in enumerate(world.collections):
            ids = [world.object_ids[o] for o, obj in enumerate(spec.objects) if obj.collection == c]
            for reader in world.readers:
                check_listings(world, reader, collection, ids)
                check_objects(world, reader, collection, ids)
                check_export_and_counts(world, reader, collection)

    check()
