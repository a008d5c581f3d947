"""TLP 2.0 on every read path, by example: a real node on loopback, on both backends.

Who sees what: CLEAR to AMBER+STRICT every organisation that may read the
collection; RED only its producer and the organisations and users it names. An
unmarked object has its collection's default level; a public collection serves
TLP:CLEAR to anyone and takes nothing else. A hidden object is absent, exactly
like one that never existed. The properties behind these examples are checked
at random in ``test_tlp_property.py``.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import requests
from taxii2client.v21 import Collection

from communique import timestamps
from communique.errors import InvalidObject
from communique.stix import markings
from communique.stix.markings import Tlp
from communique.stix.validate import validate
from tests.cli_support import Run, communique
from tests.support import TAXII, Member, Node, indicator, malware, marking_statement, ts

TLP2, TLP1 = markings.TLP2_IDS, markings.TLP1_IDS
FIRST, LAST = "X-TAXII-Date-Added-First", "X-TAXII-Date-Added-Last"
ANONYMOUS = {"Accept": TAXII}
Params = dict[str, Any] | None


# -- helpers -----------------------------------------------------------------------------
def tlp_collection(node: Node, title: str, *, read: tuple[str, ...] = (),
                   write: tuple[str, ...] = (), default: str | None = None,
                   public: bool = False) -> str:
    """Create a collection with `communique collection add`; return its id."""
    args = ["collection", "add", title]
    for name in read:
        args += ["--read", node.org(name)]
    for name in write:
        args += ["--write", node.org(name)]
    if default is not None:
        args += ["--tlp-default", default]
    if public:
        args.append("--public")
    run = communique(*args, database=node.database_url)
    assert run.code == 0, run.err
    return run.last_line


def cli(node: Node, *args: str) -> Run:
    """Run ``communique ARGS`` on the node's database."""
    return communique(*args, database=node.database_url)


def recipients(orgs: tuple[str, ...] = (), users: tuple[str, ...] = ()) -> dict:
    """Return the ``extensions`` of an object that names these RED recipients."""
    return {markings.RECIPIENTS_EXTENSION: {"extension_type": "property-extension",
                                            "recipient_organizations": list(orgs),
                                            "recipient_users": list(users)}}


def marked(*refs: str, n: int = 0, granular: tuple[str, ...] = (), **extra: Any) -> dict:
    """Return an indicator with these object markings and granular markings (on ``name``)."""
    obj = indicator(n, **extra)
    if refs:
        obj["object_marking_refs"] = list(refs)
    if granular:
        obj["granular_markings"] = [{"marking_ref": ref, "selectors": ["name"]} for ref in granular]
    return obj


def headers_of(member: Member | None) -> dict[str, str]:
    """Request headers of ``member``, or of an anonymous caller."""
    return ANONYMOUS if member is None else member.headers


def url(node: Node, collection_id: str, *parts: str) -> str:
    """Return the URL of a collection endpoint: ``url(node, c, "objects", id)``."""
    return "/".join([f"{node.root}/collections/{collection_id}", *parts, ""])


def get(member: Member | None, address: str, params: Params = None) -> requests.Response:
    """GET as ``member`` (None: without any Authorization header)."""
    return requests.get(address, headers=headers_of(member), params=params, timeout=60)


def ok(member: Member | None, address: str, params: Params = None) -> dict:
    """GET, assert 200, return the JSON body."""
    response = get(member, address, params)
    assert response.status_code == 200, response.text
    return response.json()


def ids(member: Member | None, node: Node, collection_id: str, endpoint: str = "objects",
        params: Params = None) -> list[str]:
    """Return the ids of one page of Get Objects (or the manifest), in order."""
    return [o["id"] for o in ok(member, url(node, collection_id, endpoint), params).get("objects", [])]


def walk(member: Member, address: str, params: dict[str, Any]) -> list[dict]:
    """Follow ``next`` from the first page to the last; return every page."""
    pages = [ok(member, address, params)]
    while pages[-1].get("more"):
        pages.append(ok(member, address, {**params, "next": pages[-1]["next"]}))
    return pages


def post(member: Member | None, node: Node, collection_id: str,
         objects: list[dict]) -> requests.Response:
    """POST an envelope as ``member`` (None: anonymously); no assertion."""
    return requests.post(url(node, collection_id, "objects"), json={"objects": objects},
                         headers={**headers_of(member), "Content-Type": TAXII}, timeout=60)


def added(node: Node, member: Member, collection_id: str, objects: list[dict]) -> None:
    """POST and assert that every object was added."""
    status = node.post(member, collection_id, objects)
    assert status["success_count"] == len(objects), status


def refusals(node: Node, member: Member, collection_id: str, objects: list[dict]) -> dict[str, str]:
    """POST and return {id: message} of the refused objects."""
    status = node.post(member, collection_id, objects)
    return {f["id"]: f.get("message", "") for f in status.get("failures", [])}


def date_added(node: Node, member: Member, collection_id: str) -> dict[str, str]:
    """Return {id: date_added} of every last version ``member`` can see."""
    body = ok(member, url(node, collection_id, "manifest"))
    return {record["id"]: record["date_added"] for record in body.get("objects", [])}


def client(node: Node, member: Member | None, collection_id: str) -> Collection:
    """Return a taxii2-client collection, authenticated as ``member`` (None: anonymous)."""
    address = f"{node.root}/collections/{collection_id}/"
    if member is None:
        return Collection(address)
    return Collection(address, user=member.email, password=member.token)


def unknown_id(stix_type: str = "indicator") -> str:
    """An id no object in any test has."""
    return f"{stix_type}--{uuid.uuid4()}"


def exported(node: Node, collection_id: str, email: str, *more: str) -> list[dict]:
    """Run `communique export` for a user; return the bundle's objects."""
    run = cli(node, "export", "--collection", collection_id, "--as", email, *more)
    assert run.code == 0, run.err
    bundle = json.loads(run.out)
    assert bundle["type"] == "bundle"
    return bundle["objects"]


def level_of_each(levels: list[Tlp], *, tlp1: bool = False) -> dict[Tlp, dict]:
    """Return one indicator marked at each level."""
    ids_by = TLP1 if tlp1 else TLP2
    return {level: marked(ids_by[level], n=int(level)) for level in levels}


# -- who sees which level ----------------------------------------------------------------
def test_each_shared_level_reaches_every_reader_org_and_red_only_its_producer(node: Node) -> None:
    """A reader organisation sees CLEAR to AMBER+STRICT, unmarked (AMBER) and marking
    definitions; RED is seen by the producing organisation, any of its users."""
    producer, colleague = node.member("Producer"), node.member("Producer", role="reader")
    reader = node.member("Reader", role="reader")
    collection = tlp_collection(node, "Shared", read=("Producer", "Reader"), write=("Producer",))
    by_level = level_of_each(list(Tlp))
    unmarked = indicator(9)
    definition = marking_statement()
    definition["object_marking_refs"] = [TLP2[Tlp.RED]]  # a definition is CLEAR whatever it says
    added(node, producer, collection, [*by_level.values(), unmarked, definition])
    shared = [o["id"] for level, o in by_level.items() if level != Tlp.RED]
    everything = [o["id"] for o in by_level.values()]
    assert ids(reader, node, collection) == [*shared, unmarked["id"], definition["id"]]
    for member in (producer, colleague):
        assert ids(member, node, collection) == [*everything, unmarked["id"], definition["id"]]
    seen = client(node, reader, collection).get_objects()
    assert [o["id"] for o in seen["objects"]] == [*shared, unmarked["id"], definition["id"]]


def test_red_reaches_named_organisations_and_named_users_only(node: Node) -> None:
    """RED naming an organisation reaches all its users; naming a user reaches that user
    (whatever the case of the address), not the other users of their organisation."""
    producer = node.member("Producer")
    named_org = [node.member("Named", role="reader"), node.member("Named", role="admin")]
    named_user = node.member("Partial", role="reader",
                             email=f"duty-{uuid.uuid4().hex[:6]}@partial.example")
    same_org = node.member("Partial", role="reader")
    bystander = node.member("Bystander", role="reader")
    collection = tlp_collection(node, "Shared", write=("Producer",),
                                read=("Producer", "Named", "Partial", "Bystander"))
    to_org = marked(TLP2[Tlp.RED], n=1, extensions=recipients(orgs=("Named",)))
    to_user = marked(TLP2[Tlp.RED], n=2, extensions=recipients(users=(named_user.email.upper(),)))
    green = marked(TLP2[Tlp.GREEN], n=3)
    added(node, producer, collection, [to_org, to_user, green])
    for member in named_org:
        assert ids(member, node, collection) == [to_org["id"], green["id"]]
    assert ids(named_user, node, collection) == [to_user["id"], green["id"]]
    for member in (same_org, bystander):
        assert ids(member, node, collection) == [green["id"]]
    assert ids(producer, node, collection) == [to_org["id"], to_user["id"], green["id"]]
    mine = client(node, named_user, collection).get_object(to_user["id"])
    assert [o["id"] for o in mine["objects"]] == [to_user["id"]]
    with pytest.raises(requests.HTTPError) as error:
        client(node, same_org, collection).get_object(to_user["id"])
    assert error.value.response.status_code == 404


def test_hidden_red_is_absent_from_every_read_path(node: Node) -> None:
    """Objects, manifest, object by id, versions, filters, added_after, paging and the
    Date-Added headers all behave as if the hidden RED objects were never added."""
    producer, reader = node.member("Producer"), node.member("Reader", role="reader")
    collection = tlp_collection(node, "Shared", read=("Producer", "Reader"), write=("Producer",))
    green_1 = marked(TLP2[Tlp.GREEN], n=1)
    red_1 = marked(TLP2[Tlp.RED], n=2)
    green_2 = malware(3)
    green_2["object_marking_refs"] = [TLP2[Tlp.GREEN]]
    red_2 = malware(4)
    red_2["object_marking_refs"] = [TLP2[Tlp.RED]]
    for obj in (green_1, red_1, green_2, red_2):
        added(node, producer, collection, [obj])
    visible = [green_1["id"], green_2["id"]]
    added_at = date_added(node, producer, collection)
    assert len(added_at) == 4
    objects = url(node, collection, "objects")

    assert ids(reader, node, collection) == visible
    assert ids(reader, node, collection, "manifest") == visible
    assert ids(reader, node, collection, params={"match[version]": "all"}) == visible
    both = f"{red_1['id']},{green_1['id']}"
    assert ids(reader, node, collection, params={"match[id]": both}) == [green_1["id"]]
    assert ids(reader, node, collection, params={"match[id]": red_1["id"]}) == []
    assert ids(reader, node, collection, params={"match[type]": "indicator"}) == [green_1["id"]]
    assert ids(reader, node, collection, params={"match[type]": "malware"}) == [green_2["id"]]
    assert ids(reader, node, collection, params={"match[type]": "malware,indicator"}) == visible
    after_green_1 = {"added_after": added_at[green_1["id"]]}
    assert ids(reader, node, collection, params=after_green_1) == [green_2["id"]]
    assert ids(reader, node, collection, "manifest", after_green_1) == [green_2["id"]]

    pages = walk(reader, objects, {"limit": 1})
    assert [[o["id"] for o in p["objects"]] for p in pages] == [[green_1["id"]], [green_2["id"]]]
    assert not pages[-1].get("more")  # the hidden red_2 after green_2 does not show as 'more'
    pages = walk(reader, url(node, collection, "manifest"), {"limit": 1, "match[type]": "indicator"})
    assert [[o["id"] for o in p.get("objects", [])] for p in pages] == [[green_1["id"]]]

    response = get(reader, objects)
    assert response.headers[FIRST] == added_at[green_1["id"]]
    assert response.headers[LAST] == added_at[green_2["id"]]  # not red_2's, added later
    after = added_at[green_2["id"]]
    response = get(reader, objects, {"added_after": after})
    assert response.json().get("objects", []) == []
    assert timestamps.parse(response.headers[FIRST]) == timestamps.parse(after)
    assert timestamps.parse(response.headers[LAST]) == timestamps.parse(after)

    for hidden in (red_1["id"], red_2["id"]):
        for parts, params in ((("objects", hidden), None),
                              (("objects", hidden), {"match[version]": "all"}),
                              (("objects", hidden, "versions"), None)):
            assert get(reader, url(node, collection, *parts), params).status_code == 404
    with pytest.raises(requests.HTTPError) as error:
        client(node, reader, collection).get_object(red_1["id"])
    assert error.value.response.status_code == 404
    manifest = client(node, reader, collection).get_manifest()
    assert [o["id"] for o in manifest["objects"]] == visible
    assert ids(producer, node, collection) == [green_1["id"], red_1["id"], green_2["id"], red_2["id"]]


def test_hidden_red_id_answers_exactly_like_an_unknown_id(node: Node) -> None:
    """For a reader-writer who may not see it, a RED object's id gets the very answer
    (status, headers of note, TAXII error) that a never-used id gets."""
    producer, other = node.member("Producer"), node.member("Other")
    collection = tlp_collection(node, "Shared", read=("Producer", "Other"),
                                write=("Producer", "Other"))
    red = marked(TLP2[Tlp.RED], n=1)
    added(node, producer, collection, [red])
    absent = unknown_id()
    probes = [("GET", ("objects", "{id}"), None),
              ("GET", ("objects", "{id}"), {"match[version]": "all"}),
              ("GET", ("objects", "{id}"), {"added_after": ts(0)}),
              ("GET", ("objects", "{id}", "versions"), None),
              ("DELETE", ("objects", "{id}"), None),
              ("DELETE", ("objects", "{id}"), {"match[version]": "last"})]
    for method, parts, params in probes:
        answers = []
        for object_id in (red["id"], absent):
            address = url(node, collection, *(p.format(id=object_id) for p in parts))
            response = requests.request(method, address, headers=other.headers, params=params,
                                        timeout=60)
            answers.append((response.status_code, response.headers["Content-Type"],
                            response.json(), sorted(k.lower() for k in response.headers
                                                    if k.lower().startswith("x-taxii"))))
        assert answers[0] == answers[1], (method, parts, params)
        assert answers[0][0] == 404
    assert ids(producer, node, collection) == [red["id"]]


def test_delete_of_a_hidden_red_object_is_not_found_and_deletes_nothing(node: Node) -> None:
    """A reader-writer cannot delete a RED object it cannot see; the producer still has it."""
    producer, other = node.member("Producer"), node.member("Other")
    collection = tlp_collection(node, "Shared", read=("Producer", "Other"),
                                write=("Producer", "Other"))
    red = marked(TLP2[Tlp.RED], n=1, modified=ts(0))
    red_later = marked(TLP2[Tlp.RED], n=1, id=red["id"], modified=ts(10))
    added(node, producer, collection, [red, red_later])
    for params in (None, {"match[version]": "all"}, {"match[version]": "first"}):
        response = requests.delete(url(node, collection, "objects", red["id"]),
                                   headers=other.headers, params=params, timeout=60)
        assert response.status_code == 404, response.text
    versions = ok(producer, url(node, collection, "objects", red["id"], "versions"))["versions"]
    assert len(versions) == 2
    response = requests.delete(url(node, collection, "objects", red["id"]), headers=producer.headers,
                               timeout=60)
    assert response.status_code == 200, response.text
    assert get(producer, url(node, collection, "objects", red["id"])).status_code == 404


def test_visibility_is_per_version(node: Node) -> None:
    """An earlier visible version is never served in place of a hidden last one."""
    producer, reader = node.member("Producer"), node.member("Reader", role="reader")
    collection = tlp_collection(node, "Shared", read=("Producer", "Reader"), write=("Producer",))
    turned_red = [marked(TLP2[Tlp.GREEN], n=1, modified=ts(0))]
    turned_red.append(marked(TLP2[Tlp.RED], n=1, id=turned_red[0]["id"], modified=ts(10)))
    turned_green = [marked(TLP2[Tlp.RED], n=2, modified=ts(0))]
    turned_green.append(marked(TLP2[Tlp.GREEN], n=2, id=turned_green[0]["id"], modified=ts(10)))
    added(node, producer, collection, [*turned_red, *turned_green])
    red_id, green_id = turned_red[0]["id"], turned_green[0]["id"]

    assert ids(reader, node, collection) == [green_id]
    assert ids(reader, node, collection, "manifest", {"match[version]": "all"}) == [red_id, green_id]
    first = ok(reader, url(node, collection, "objects"), {"match[version]": "first"})
    assert [(o["id"], o["modified"]) for o in first["objects"]] == [(red_id, ts(0))]
    by_id = ok(reader, url(node, collection, "objects", red_id))
    assert by_id.get("objects", []) == []
    versions = ok(reader, url(node, collection, "objects", red_id, "versions"))["versions"]
    assert [timestamps.parse(v) for v in versions] == [timestamps.parse(ts(0))]
    versions = ok(reader, url(node, collection, "objects", green_id, "versions"))["versions"]
    assert [timestamps.parse(v) for v in versions] == [timestamps.parse(ts(10))]
    latest = ok(producer, url(node, collection, "objects", red_id))["objects"]
    assert [o["modified"] for o in latest] == [ts(10)]


# -- what decides an object's level --------------------------------------------------------
def test_tlp_1_markings_count_as_their_tlp_2_levels(node: Node) -> None:
    """TLP 1.0 WHITE, GREEN and AMBER are shared and RED is not, in a collection whose
    default (RED) would hide anything whose marking went unrecognised."""
    producer, reader = node.member("Producer"), node.member("Reader", role="reader")
    collection = tlp_collection(node, "Strict", read=("Producer", "Reader"), write=("Producer",),
                                default="red")
    by_level = level_of_each([Tlp.CLEAR, Tlp.GREEN, Tlp.AMBER, Tlp.RED], tlp1=True)
    added(node, producer, collection, list(by_level.values()))
    shared = [by_level[lvl]["id"] for lvl in (Tlp.CLEAR, Tlp.GREEN, Tlp.AMBER)]
    assert ids(reader, node, collection) == shared
    assert get(reader, url(node, collection, "objects", by_level[Tlp.RED]["id"])).status_code == 404

    public = tlp_collection(node, "Open", write=("Producer",), public=True)
    refused = refusals(node, producer, public,
                       [marked(TLP1[Tlp.CLEAR], n=1), marked(TLP1[Tlp.GREEN], n=2)])
    assert len(refused) == 1 and "TLP:GREEN" in next(iter(refused.values()))
    assert len(ids(None, node, public)) == 1


def test_granular_markings_raise_the_level_and_other_markings_do_not_count(node: Node) -> None:
    """The most restrictive TLP marking wins, object-level or granular; a marking that is
    not TLP leaves the object at the collection's default."""
    producer, reader = node.member("Producer"), node.member("Reader", role="reader")
    collection = tlp_collection(node, "Strict", read=("Producer", "Reader"), write=("Producer",),
                                default="red")
    statement = marking_statement()
    green_red = marked(TLP2[Tlp.GREEN], n=1, granular=(TLP2[Tlp.RED],))
    green_amber = marked(TLP2[Tlp.GREEN], n=2, granular=(TLP2[Tlp.AMBER],))
    granular_only = marked(n=3, granular=(TLP1[Tlp.GREEN],))
    clear_lang = marked(TLP2[Tlp.CLEAR], n=4)
    clear_lang["granular_markings"] = [{"lang": "en", "selectors": ["name"]}]
    statement_only = marked(statement["id"], n=5)
    green_statement = marked(statement["id"], TLP2[Tlp.GREEN], n=6, granular=(statement["id"],))
    objects = [statement, green_red, green_amber, granular_only, clear_lang, statement_only,
               green_statement]
    added(node, producer, collection, objects)
    shown = [statement, green_amber, granular_only, clear_lang, green_statement]
    assert ids(reader, node, collection) == [o["id"] for o in shown]
    assert ids(producer, node, collection) == [o["id"] for o in objects]

    public = tlp_collection(node, "Open", write=("Producer",), public=True)
    refused = refusals(node, producer, public,
                       [marked(TLP2[Tlp.CLEAR], n=7, granular=(TLP2[Tlp.AMBER],))])
    assert len(refused) == 1 and "TLP:AMBER" in next(iter(refused.values()))


@pytest.mark.parametrize("marking_ref", [[TLP2[Tlp.RED]], {"id": TLP2[Tlp.RED]}])
def test_granular_marking_ref_that_is_not_a_string_is_refused(node: Node, marking_ref: object) -> None:
    """A granular marking whose marking_ref is not an identifier is refused in the status
    resource, like any invalid object, and the server keeps answering."""
    producer = node.member("Producer")
    collection = tlp_collection(node, "Shared", read=("Producer",), write=("Producer",))
    bad = marked(n=1)
    bad["granular_markings"] = [{"marking_ref": marking_ref, "selectors": ["name"]}]
    # First in process: a server error over HTTP would be logged by the server thread while
    # pytest renders the failure, and Python 3.11's AST converter is not safe for that.
    with pytest.raises(InvalidObject, match="marking_ref"):
        validate(bad)
    response = post(producer, node, collection, [bad, marked(n=2)])
    assert response.status_code == 202, response.text
    status = response.json()
    assert (status["success_count"], status["failure_count"]) == (1, 1)
    assert "marking_ref" in status["failures"][0]["message"]


def test_unmarked_objects_follow_the_collection_default_when_it_changes(node: Node) -> None:
    """The default level applies at read time: `collection set --tlp-default` moves every
    unmarked object at once, and leaves marked ones where they are."""
    producer, reader = node.member("Producer"), node.member("Reader", role="reader")
    collection = tlp_collection(node, "Shared", read=("Producer", "Reader"), write=("Producer",),
                                default="green")
    unmarked, green = indicator(1), marked(TLP2[Tlp.GREEN], n=2)
    added(node, producer, collection, [unmarked, green])
    assert ids(reader, node, collection) == [unmarked["id"], green["id"]]

    run = cli(node, "collection", "set", collection, "--tlp-default", "red")
    assert run.code == 0 and "TLP:RED" in run.out, run.err
    assert ids(reader, node, collection) == [green["id"]]
    assert get(reader, url(node, collection, "objects", unmarked["id"])).status_code == 404
    assert ids(producer, node, collection) == [unmarked["id"], green["id"]]
    assert "default: TLP:RED" in cli(node, "collection", "list").out

    assert cli(node, "collection", "set", collection, "--tlp-default", "amber+strict").code == 0
    assert ids(reader, node, collection) == [unmarked["id"], green["id"]]


def test_unmarked_object_red_by_default_reaches_its_named_recipients(node: Node) -> None:
    """An unmarked object in a collection whose default is RED is a RED object: the
    organisations and users it names see it, like those named by a marked one."""
    producer, named = node.member("Producer"), node.member("Named", role="reader")
    named_user, bystander = node.member("Partial", role="reader"), node.member("Partial", role="reader")
    collection = tlp_collection(node, "Strict", read=("Producer", "Named", "Partial"),
                                write=("Producer",), default="red")
    to_both = indicator(1, extensions=recipients(orgs=("Named",), users=(named_user.email,)))
    added(node, producer, collection, [to_both])
    assert ids(bystander, node, collection) == []
    assert ids(producer, node, collection) == [to_both["id"]]
    assert ids(named, node, collection) == [to_both["id"]]
    assert ids(named_user, node, collection) == [to_both["id"]]


def test_recipients_of_an_unmarked_object_count_once_the_default_becomes_red(node: Node) -> None:
    """Turning a collection's default to RED makes its unmarked objects RED for everyone
    but the producer and the recipients each object names."""
    producer, named, bystander = (node.member("Producer"), node.member("Named", role="reader"),
                                  node.member("Bystander", role="reader"))
    collection = tlp_collection(node, "Shared", read=("Producer", "Named", "Bystander"),
                                write=("Producer",))
    to_named = indicator(1, extensions=recipients(orgs=("Named",)))
    added(node, producer, collection, [to_named])
    assert ids(bystander, node, collection) == [to_named["id"]]  # AMBER for now
    assert cli(node, "collection", "set", collection, "--tlp-default", "red").code == 0
    assert ids(bystander, node, collection) == []
    assert ids(named, node, collection) == [to_named["id"]]


# -- public collections and anonymous callers ---------------------------------------------
def test_public_collection_serves_clear_to_anyone_and_takes_nothing_else(node: Node) -> None:
    """Anyone reads a public collection without credentials; it takes TLP:CLEAR (TLP 1.0
    WHITE, unmarked, definitions) and refuses every other level on write."""
    producer, reader = node.member("Producer"), node.member("Reader", role="reader")
    public = tlp_collection(node, "Open", read=("Reader",), write=("Producer",), public=True)
    taken = [marked(TLP2[Tlp.CLEAR], n=1), marked(TLP1[Tlp.CLEAR], n=2), indicator(3),
             marking_statement()]
    refused_objects = [marked(TLP2[lvl], n=10 + int(lvl)) for lvl in Tlp if lvl != Tlp.CLEAR]
    refused = refusals(node, producer, public, [*taken, *refused_objects])
    assert set(refused) == {o["id"] for o in refused_objects}
    for message in refused.values():
        assert "public" in message and "TLP:CLEAR" in message
    clear = [o["id"] for o in taken]
    for member in (None, reader, producer):
        assert ids(member, node, public) == clear
        assert ids(member, node, public, "manifest") == clear
        by_id = ok(member, url(node, public, "objects", clear[0]))["objects"]
        assert [o["id"] for o in by_id] == clear[:1]
        assert len(ok(member, url(node, public, "objects", clear[0], "versions"))["versions"]) == 1
    listed = ok(None, f"{node.root}/collections/")["collections"]
    assert [c["id"] for c in listed] == [public]
    assert listed[0]["can_read"] and not listed[0]["can_write"]
    assert [o["id"] for o in client(node, None, public).get_objects()["objects"]] == clear
    response = post(None, node, public, [marked(TLP2[Tlp.CLEAR], n=20)])
    assert response.status_code == 401
    response = requests.delete(url(node, public, "objects", clear[0]), headers=ANONYMOUS, timeout=60)
    assert response.status_code == 401
    assert ids(None, node, public) == clear


def test_public_collection_serves_clear_only_even_to_its_producer(node: Node) -> None:
    """Should a stored version be above CLEAR (the store itself does not refuse), no one,
    producer and granted readers included, is served it from a public collection."""
    producer, reader = node.member("Producer"), node.member("Reader", role="reader")
    public = tlp_collection(node, "Open", read=("Producer", "Reader"), write=("Producer",), public=True)
    amber = validate(marked(TLP2[Tlp.AMBER], n=1, modified=ts(0)))
    clear = validate(marked(TLP2[Tlp.CLEAR], n=1, id=amber.id, modified=ts(10)))
    red = validate(marked(TLP2[Tlp.RED], n=2))
    with node.store.write() as tx:
        producer_org = tx.find_organisation("Producer")
        assert producer_org is not None
        tx.add_objects(public, [amber, clear, red], now=timestamps.now_us(),
                       producer_org=producer_org.id)
    for member in (None, reader, producer):
        assert ids(member, node, public, params={"match[version]": "all"}) == [amber.id]
        first = ok(member, url(node, public, "objects", amber.id), {"match[version]": "first"})
        assert first.get("objects", []) == []
        assert len(ok(member, url(node, public, "objects", amber.id, "versions"))["versions"]) == 1
        assert get(member, url(node, public, "objects", red.id)).status_code == 404
    assert [o["id"] for o in exported(node, public, producer.email, "--all-versions")] == [amber.id]


def test_anonymous_callers_get_401_outside_public_collections(node: Node) -> None:
    """Without credentials, a private collection and a collection that does not exist both
    answer 401 with the same TAXII error, on every endpoint."""
    producer = node.member("Producer")
    tlp_collection(node, "Open", write=("Producer",), public=True)
    private = tlp_collection(node, "Closed", read=("Producer",), write=("Producer",))
    clear = marked(TLP2[Tlp.CLEAR], n=1)
    added(node, producer, private, [clear])
    nowhere = str(uuid.uuid4())
    for parts in ((), ("manifest",), ("objects",), ("objects", clear["id"]),
                  ("objects", clear["id"], "versions")):
        answers = []
        for collection in (private, nowhere):
            response = get(None, url(node, collection, *parts))
            answers.append((response.status_code, response.json(),
                            response.headers.get("WWW-Authenticate")))
        assert answers[0] == answers[1], parts
        assert answers[0][0] == 401 and answers[0][2]
    for collection in (private, nowhere):
        assert post(None, node, collection, [marked(TLP2[Tlp.CLEAR], n=2)]).status_code == 401
    assert ids(producer, node, private) == [clear["id"]]


# -- the recipients extension, status resources ------------------------------------------
def test_malformed_recipients_extension_is_refused_with_a_clear_message(node: Node) -> None:
    """Each malformation of the recipients extension refuses the object with a message that
    names what is wrong; the well-formed object next to them is added."""
    producer = node.member("Producer")
    collection = tlp_collection(node, "Shared", read=("Producer",), write=("Producer",))
    ext = markings.RECIPIENTS_EXTENSION
    cases = {
        "not an object": ({ext: ["CERT"]}, "property-extension"),
        "no extension_type": ({ext: {"recipient_organizations": ["CERT"]}}, "property-extension"),
        "wrong extension_type": ({ext: {"extension_type": "new-sdo"}}, "property-extension"),
        "unknown property": ({ext: {"extension_type": "property-extension", "recipients": ["x"]}},
                             "unknown properties: recipients"),
        "a string for a list": ({ext: {"extension_type": "property-extension",
                                       "recipient_organizations": "CERT"}}, "'recipient_organizations'"),
        "a number in the list": ({ext: {"extension_type": "property-extension",
                                        "recipient_users": [5]}}, "'recipient_users'"),
        "an empty name": ({ext: {"extension_type": "property-extension",
                                 "recipient_organizations": [""]}}, "'recipient_organizations'"),
        "surrounding spaces": ({ext: {"extension_type": "property-extension",
                                      "recipient_users": [" a@b.example"]}}, "surrounding spaces"),
        "a name too long": ({ext: {"extension_type": "property-extension",
                                   "recipient_organizations": ["x" * 201]}}, "1 to 200 characters"),
        "too many names": ({ext: {"extension_type": "property-extension",
                                  "recipient_organizations": [f"org {i}" for i in range(300)],
                                  "recipient_users": [f"u{i}@x.example" for i in range(201)]}},
                           "at most 500 recipients"),
    }
    objects = {name: marked(TLP2[Tlp.RED], n=i, extensions=extensions)
               for i, (name, (extensions, _)) in enumerate(cases.items())}
    good = marked(TLP2[Tlp.RED], n=99, extensions=recipients(orgs=("Producer",), users=("a@b.example",)))
    refused = refusals(node, producer, collection, [*objects.values(), good])
    for name, (_, expected) in cases.items():
        message = refused.get(objects[name]["id"])
        assert message is not None, f"{name}: not refused"
        assert "recipient" in message and expected in message, (name, message)
    assert set(refused) == {o["id"] for o in objects.values()}
    assert ids(producer, node, collection) == [good["id"]]


def test_status_resources_are_read_only_by_the_posting_organisation(node: Node) -> None:
    """Another user of the posting organisation reads the status; another organisation
    gets the 404 of an unknown status."""
    producer, colleague = node.member("Producer"), node.member("Producer", role="reader")
    other = node.member("Other")
    collection = tlp_collection(node, "Shared", read=("Producer", "Other"), write=("Producer", "Other"))
    status = node.post(producer, collection, [marked(TLP2[Tlp.RED], n=1)])
    address = f"{node.root}/status/{status['id']}/"
    assert ok(colleague, address)["id"] == status["id"]
    hidden, unknown = get(other, address), get(other, f"{node.root}/status/{uuid.uuid4()}/")
    assert (hidden.status_code, hidden.json()) == (unknown.status_code, unknown.json())
    assert hidden.status_code == 404
    assert get(None, address).status_code == 401


# -- the command line: export and import -------------------------------------------------
def test_export_carries_what_the_user_may_read_and_never_red(node: Node) -> None:
    """`communique export --as` holds the user's view minus every RED object: RED is not
    exported even to its producer or its named recipients; others are refused."""
    producer, named = node.member("Producer"), node.member("Named", role="reader")
    reader = node.member("Reader", role="reader")
    outsider = node.member("Outsider", role="reader")
    collection = tlp_collection(node, "Shared", read=("Producer", "Named", "Reader"),
                                write=("Producer",))
    clear, amber, unmarked = marked(TLP2[Tlp.CLEAR], n=1), marked(TLP2[Tlp.AMBER], n=2), indicator(3)
    red = marked(TLP2[Tlp.RED], n=4, extensions=recipients(orgs=("Named",)))
    turned_red = [marked(TLP2[Tlp.AMBER], n=5, modified=ts(0))]
    turned_red.append(marked(TLP2[Tlp.RED], n=5, id=turned_red[0]["id"], modified=ts(10)))
    added(node, producer, collection, [clear, amber, unmarked, red, *turned_red])
    shared = [clear["id"], amber["id"], unmarked["id"]]
    for member in (producer, named, reader):
        assert [o["id"] for o in exported(node, collection, member.email)] == shared
        every = exported(node, collection, member.email, "--all-versions")
        assert [(o["id"], o["modified"]) for o in every] == [
            *[(i, ts(0)) for i in shared], (turned_red[0]["id"], ts(0))]
    assert [o["id"] for o in exported(node, collection, reader.email, "--type", "indicator")] == shared
    run = cli(node, "export", "--collection", collection, "--as", outsider.email)
    assert run.code == 1 and run.err.startswith("error: ")
    assert "objects" not in run.out

    assert cli(node, "collection", "set", collection, "--tlp-default", "red").code == 0
    assert [o["id"] for o in exported(node, collection, producer.email)] == [clear["id"], amber["id"]]


def test_import_as_a_user_makes_their_organisation_the_producer(node: Node, tmp_path: Any) -> None:
    """`communique import --as` records the user's organisation as producer of RED objects;
    without --as, a RED object reaches only the recipients it names."""
    producer, named = node.member("Producer"), node.member("Named", role="reader")
    reader = node.member("Reader", role="reader")
    collection = tlp_collection(node, "Shared", read=("Producer", "Named", "Reader"),
                                write=("Producer",))
    mine = marked(TLP2[Tlp.RED], n=1)
    orphan = marked(TLP2[Tlp.RED], n=2, extensions=recipients(orgs=("Named",)))
    for obj, more in ((mine, ("--as", producer.email)), (orphan, ())):
        path = tmp_path / f"{obj['id']}.json"
        path.write_text(json.dumps({"type": "bundle", "id": f"bundle--{uuid.uuid4()}",
                                    "objects": [obj]}))
        run = cli(node, "import", str(path), "--collection", collection, *more)
        assert run.code == 0, run.err
    assert ids(producer, node, collection) == [mine["id"]]
    assert ids(named, node, collection) == [orphan["id"]]
    assert ids(reader, node, collection) == []


def test_a_collection_with_an_older_version_above_clear_cannot_become_public(node: Node) -> None:
    """`collection set --public` looks at every version, not only the last ones."""
    producer = node.member("Producer")
    collection = tlp_collection(node, "Mixed", read=("Producer",), write=("Producer",))
    first = marked(TLP2[Tlp.RED], n=1, created=ts(0), modified=ts(0))
    later = dict(first, modified=ts(60), object_marking_refs=[TLP2[Tlp.CLEAR]])
    added(node, producer, collection, [first, later])
    run = cli(node, "collection", "set", collection, "--public")
    assert run.code == 1 and "older versions" in run.err
    assert " public\t" not in cli(node, "collection", "list").out


def test_anonymous_discovery_names_only_roots_with_a_public_collection(node: Node) -> None:
    """An anonymous caller learns of no API root but those that hold a public collection."""
    assert get(None, f"{node.url}/taxii2/").status_code == 401  # nothing public yet
    node.org("Producer")
    assert cli(node, "collection", "add", "Private", "--root", "closed", "--read",
               "Producer").code == 0
    assert cli(node, "collection", "add", "Open", "--root", "open", "--public").code == 0
    roots = ok(None, f"{node.url}/taxii2/")["api_roots"]
    assert [r.rstrip("/").rsplit("/", 1)[-1] for r in roots] == ["open"]
    assert get(None, f"{node.url}/closed/").status_code == 401
    assert [c["title"] for c in ok(None, f"{node.url}/open/collections/")["collections"]] == ["Open"]
