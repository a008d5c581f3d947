"""TAXII 2.1 conformance as the reference client sees it: taxii2-client over real HTTP.

Every test drives a real node (SQLite and PostgreSQL) with ``taxii2client.v21``,
authenticating with HTTP Basic: the member's e-mail as user, the API token as password.
"""

from __future__ import annotations

import pytest
import requests
from taxii2client.exceptions import AccessError
from taxii2client.v21 import ApiRoot, Collection, Server, as_pages

from communique import timestamps
from tests.support import TAXII, Member, Node, indicator, ipv4, malware, marking_statement, ts

STIX_21 = "application/stix+json;version=2.1"


# -- helpers -----------------------------------------------------------------------------
def server_for(node: Node, member: Member) -> Server:
    """Return a discovery client authenticated as ``member``."""
    return Server(f"{node.url}/taxii2/", user=member.email, password=member.token)


def root_for(node: Node, member: Member) -> ApiRoot:
    """Return the default API root, as discovered by ``member``."""
    return server_for(node, member).default


def collection_for(node: Node, member: Member, collection_id: str) -> Collection:
    """Return the collection ``member`` finds in the collections listing."""
    found = [c for c in root_for(node, member).collections if c.id == collection_id]
    assert len(found) == 1, f"collection {collection_id} is not listed once"
    return found[0]


def unchecked_collection(node: Node, member: Member, collection_id: str) -> Collection:
    """Return a client that believes it may read and write, so the server alone decides."""
    info = {"id": collection_id, "title": "unchecked", "can_read": True, "can_write": True}
    return Collection(f"{node.root}/collections/{collection_id}/", user=member.email,
                      password=member.token, collection_info=info)


def shared(node: Node, title: str = "Shared") -> tuple[Member, Collection]:
    """Return an analyst of CERT and a collection CERT may read and write."""
    cert = node.member("CERT")
    collection_id = node.collection(title, read=("CERT",), write=("CERT",))
    return cert, collection_for(node, cert, collection_id)


def ids_of(envelope: dict) -> list[str]:
    """Return the ids of an envelope's or manifest's objects, in order."""
    return [obj["id"] for obj in envelope.get("objects", [])]


def http_status(error: pytest.ExceptionInfo[requests.HTTPError]) -> int:
    """Return the HTTP status behind a requests HTTPError."""
    return error.value.response.status_code


def three_versions(collection: Collection) -> str:
    """Add an indicator in three versions (modified at 0 s, 10 s, 20 s); return its id."""
    first = indicator(1)
    versions = [first] + [indicator(1, id=first["id"], modified=ts(s)) for s in (10, 20)]
    status = collection.add_objects({"objects": versions})
    assert status.success_count == 3
    return first["id"]


def same_instant(a: str, b: str) -> bool:
    """Return whether two timestamps name the same instant, whatever their precision."""
    return timestamps.parse(a) == timestamps.parse(b)


# -- discovery and API roots (§4.1, §4.2) -------------------------------------------------
def test_discovery_names_the_node_and_its_default_root(node: Node) -> None:
    """Discovery gives the title, the API roots and a default that is one of them."""
    node.collection("Shared", read=("CERT",))
    server = server_for(node, node.member("CERT"))
    assert server.title == node.settings.title
    assert server.description == node.settings.description
    urls = [root.url for root in server.api_roots]
    assert f"{node.url}/default/" in urls
    assert server.default is not None and server.default.url in urls


def test_discovery_lists_every_api_root(node: Node) -> None:
    """A second API root appears in discovery next to the default one."""
    node.collection("Here", read=("CERT",))
    node.collection("Elsewhere", read=("CERT",), root="second")
    server = server_for(node, node.member("CERT"))
    urls = {root.url for root in server.api_roots}
    assert {f"{node.url}/default/", f"{node.url}/second/"} <= urls


def test_api_root_information(node: Node) -> None:
    """The API root advertises TAXII 2.1 and the node's max_content_length."""
    node.collection("Shared", read=("CERT",))
    root = root_for(node, node.member("CERT"))
    assert root.title
    assert root.versions == [TAXII]
    assert root.max_content_length == node.settings.max_content_length


def test_unknown_api_root_is_not_found(node: Node) -> None:
    """An API root that does not exist answers 404."""
    cert = node.member("CERT")
    root = ApiRoot(f"{node.url}/nowhere/", user=cert.email, password=cert.token)
    with pytest.raises(requests.HTTPError) as error:
        root.refresh_information()
    assert http_status(error) == 404


def test_discovery_without_credentials_is_unauthorised(node: Node) -> None:
    """A client without credentials gets 401 from discovery."""
    with pytest.raises(requests.HTTPError) as error:
        Server(f"{node.url}/taxii2/").refresh()
    assert http_status(error) == 401


def test_wrong_token_is_unauthorised(node: Node) -> None:
    """A password that is not a valid token gets 401."""
    cert = node.member("CERT")
    with pytest.raises(requests.HTTPError) as error:
        Server(f"{node.url}/taxii2/", user=cert.email, password="cq_not-a-token").refresh()
    assert http_status(error) == 401


# -- collections (§5.1, §5.2) -------------------------------------------------------------
def test_collections_lists_only_visible_ones_with_their_rights(node: Node) -> None:
    """An analyst sees the collections their organisation may read or write, with those rights."""
    analyst = node.member("CERT", "analyst")
    both = node.collection("Both", read=("CERT",), write=("CERT",))
    read_only = node.collection("Read only", read=("CERT",), write=("Ministry",))
    write_only = node.collection("Write only", read=("Ministry",), write=("CERT",))
    node.collection("Hidden", read=("Ministry",), write=("Ministry",))
    rights = {c.id: (c.can_read, c.can_write) for c in root_for(node, analyst).collections}
    assert rights == {both: (True, True), read_only: (True, False), write_only: (False, True)}


def test_reader_role_never_can_write(node: Node) -> None:
    """A reader sees can_write false everywhere, and a write-only grant hides the collection."""
    reader = node.member("CERT", "reader")
    both = node.collection("Both", read=("CERT",), write=("CERT",))
    read_only = node.collection("Read only", read=("CERT",))
    node.collection("Write only", write=("CERT",))
    rights = {c.id: (c.can_read, c.can_write) for c in root_for(node, reader).collections}
    assert rights == {both: (True, False), read_only: (True, False)}


def test_collections_resource_describes_each_collection(node: Node) -> None:
    """Each listed collection has its id, title, alias and STIX 2.1 media type."""
    cert = node.member("CERT")
    collection_id = node.collection("Shared indicators", read=("CERT",), alias="shared")
    collection = collection_for(node, cert, collection_id)
    assert collection.title == "Shared indicators"
    assert collection.alias == "shared"
    assert collection.media_types == [STIX_21]
    collection.refresh()  # §5.2 Get a Collection answers the same
    assert (collection.id, collection.can_read, collection.can_write) == (collection_id, True, False)


def test_no_visible_collections_is_an_empty_listing(node: Node) -> None:
    """An organisation with no grants sees no collections."""
    node.collection("Hidden", read=("Ministry",))
    assert root_for(node, node.member("CERT")).collections == []


def test_hidden_collection_is_not_found(node: Node) -> None:
    """A collection the organisation has no grant on answers 404."""
    cert = node.member("CERT")
    hidden = node.collection("Hidden", read=("Ministry",), write=("Ministry",))
    collection = Collection(f"{node.root}/collections/{hidden}/", user=cert.email,
                            password=cert.token)
    with pytest.raises(requests.HTTPError) as error:
        collection.refresh()
    assert http_status(error) == 404


# -- Add Objects and status (§5.5, §4.3) --------------------------------------------------
def test_add_objects_counts_successes_and_failures(node: Node) -> None:
    """Good objects succeed and a bad one fails with its id and a reason."""
    _, collection = shared(node)
    good = [indicator(1), malware(2)]
    bad = indicator(3, pattern="[this is not a pattern")
    status = collection.add_objects({"objects": good + [bad]})
    assert status.status == "complete"
    assert (status.total_count, status.success_count, status.failure_count,
            status.pending_count) == (3, 2, 1, 0)
    assert {s["id"] for s in status.successes} == {o["id"] for o in good}
    assert all(same_instant(s["version"], good[0]["modified"]) for s in status.successes)
    assert [f["id"] for f in status.failures] == [bad["id"]]
    assert status.failures[0]["message"]


def test_add_objects_refuses_stix_20(node: Node) -> None:
    """A STIX 2.0 object is a failure that says this collection stores 2.1."""
    _, collection = shared(node)
    old = malware(1)
    old["spec_version"] = "2.0"
    status = collection.add_objects({"objects": [old]})
    assert (status.success_count, status.failure_count) == (0, 1)
    assert "2.1" in status.failures[0]["message"]


def test_duplicate_is_a_success(node: Node) -> None:
    """Posting the same objects again succeeds and adds nothing."""
    _, collection = shared(node)
    objects = [indicator(i) for i in range(3)]
    collection.add_objects({"objects": objects})
    before = collection.get_manifest()
    status = collection.add_objects({"objects": objects})
    assert (status.success_count, status.failure_count) == (3, 0)
    assert collection.get_manifest()["objects"] == before["objects"]


def test_status_refresh_and_wait_until_final(node: Node) -> None:
    """The status returned by Add Objects can be refreshed and is already final."""
    _, collection = shared(node)
    status = collection.add_objects({"objects": [indicator(1), malware(1)]},
                                    wait_for_completion=False)
    assert status.status == "complete" and bool(status)
    status.refresh()
    assert (status.status, status.total_count, status.success_count) == ("complete", 2, 2)
    status.wait_until_final(poll_interval=1, timeout=5)
    assert status.status == "complete"


def test_status_fetched_by_id(node: Node) -> None:
    """Get Status by id returns the same counts as the Add Objects response."""
    cert, collection = shared(node)
    posted = collection.add_objects({"objects": [indicator(1), indicator(2, pattern="[x")]})
    fetched = root_for(node, cert).get_status(posted.id)
    assert fetched.id == posted.id
    assert (fetched.total_count, fetched.success_count, fetched.failure_count) == (2, 1, 1)
    assert fetched.failures == posted.failures


def test_status_of_another_organisation_is_not_found(node: Node) -> None:
    """Another organisation cannot read a status resource, not even by its id."""
    _, collection = shared(node)
    posted = collection.add_objects({"objects": [indicator(1)]})
    with pytest.raises(requests.HTTPError) as error:
        root_for(node, node.member("Ministry")).get_status(posted.id)
    assert http_status(error) == 404


def test_unknown_status_is_not_found(node: Node) -> None:
    """A status id that was never issued answers 404."""
    node.collection("Shared", read=("CERT",))
    root = root_for(node, node.member("CERT"))
    with pytest.raises(requests.HTTPError) as error:
        root.get_status("2d3a4a5b-1c2d-4e5f-8a9b-0c1d2e3f4a5b")
    assert http_status(error) == 404


# -- Get Objects filters (§5.4, §3.4) -----------------------------------------------------
def test_get_objects_returns_everything_by_default(node: Node) -> None:
    """Without filters every object comes back, oldest first."""
    _, collection = shared(node)
    objects = [indicator(1), malware(2), ipv4("203.0.113.7"), marking_statement()]
    collection.add_objects({"objects": objects})
    assert ids_of(collection.get_objects()) == [o["id"] for o in objects]


def test_filter_by_type(node: Node) -> None:
    """match[type] keeps the listed types; a list of types is ORed."""
    _, collection = shared(node)
    objects = [indicator(1), malware(2), ipv4("203.0.113.7")]
    collection.add_objects({"objects": objects})
    assert ids_of(collection.get_objects(type="malware")) == [objects[1]["id"]]
    assert ids_of(collection.get_objects(type=["indicator", "ipv4-addr"])) == [
        objects[0]["id"], objects[2]["id"]]
    assert ids_of(collection.get_objects(type="campaign")) == []


def test_filter_by_id(node: Node) -> None:
    """match[id] keeps the listed ids; a list of ids is ORed."""
    _, collection = shared(node)
    objects = [indicator(i) for i in range(4)]
    collection.add_objects({"objects": objects})
    assert ids_of(collection.get_objects(id=objects[2]["id"])) == [objects[2]["id"]]
    wanted = [objects[0]["id"], objects[3]["id"]]
    assert ids_of(collection.get_objects(id=wanted)) == wanted


def test_filter_by_version(node: Node) -> None:
    """match[version] takes last (default), first, all, exact timestamps and lists of them."""
    _, collection = shared(node)
    object_id = three_versions(collection)

    def modified(**filters: object) -> list[str]:
        """Return the modified of each object the filters keep."""
        return [o["modified"] for o in collection.get_objects(**filters).get("objects", [])]

    assert modified() == [ts(20)]
    assert modified(version="last") == [ts(20)]
    assert modified(version="first") == [ts(0)]
    assert modified(version="all") == [ts(0), ts(10), ts(20)]
    assert modified(version=ts(10)) == [ts(10)]
    assert modified(version=["first", "last"]) == [ts(0), ts(20)]
    assert modified(version=[ts(0), ts(10)]) == [ts(0), ts(10)]
    assert modified(version=ts(30)) == []
    assert {o["id"] for o in collection.get_objects(version="all")["objects"]} == {object_id}


def test_filter_by_spec_version(node: Node) -> None:
    """match[spec_version] 2.1 keeps every object; 2.0 keeps none."""
    _, collection = shared(node)
    objects = [indicator(1), malware(2)]
    collection.add_objects({"objects": objects})
    assert ids_of(collection.get_objects(spec_version="2.1")) == [o["id"] for o in objects]
    assert ids_of(collection.get_objects(spec_version=["2.0", "2.1"])) == [o["id"] for o in objects]
    assert ids_of(collection.get_objects(spec_version="2.0")) == []


def test_filter_by_added_after(node: Node) -> None:
    """added_after keeps only objects added strictly later."""
    _, collection = shared(node)
    objects = [indicator(i) for i in range(5)]
    for obj in objects:
        collection.add_objects({"objects": [obj]})
    records = collection.get_manifest()["objects"]
    after = records[1]["date_added"]
    assert ids_of(collection.get_objects(added_after=after)) == [o["id"] for o in objects[2:]]
    assert ids_of(collection.get_objects(added_after=records[-1]["date_added"])) == []


def test_filters_combine(node: Node) -> None:
    """Different filters are ANDed together."""
    _, collection = shared(node)
    versioned = three_versions(collection)
    other, plain = malware(1), indicator(2)
    collection.add_objects({"objects": [other, plain]})
    every_version = collection.get_objects(type="indicator", id=versioned, version="all")
    assert [o["modified"] for o in every_version["objects"]] == [ts(0), ts(10), ts(20)]
    assert ids_of(collection.get_objects(type="indicator", id=other["id"])) == []
    assert ids_of(collection.get_objects(type="malware", spec_version="2.1")) == [other["id"]]
    first_added = collection.get_manifest(version="all")["objects"][0]["date_added"]
    later_firsts = collection.get_objects(type="indicator", version="first", added_after=first_added)
    assert ids_of(later_firsts) == [plain["id"]]


# -- one object, its versions, manifests (§5.6, §5.8, §5.3) -------------------------------
def test_get_object_returns_its_latest_version(node: Node) -> None:
    """Get an Object returns an envelope with the latest version unless told otherwise."""
    _, collection = shared(node)
    object_id = three_versions(collection)
    collection.add_objects({"objects": [indicator(9)]})
    assert [o["modified"] for o in collection.get_object(object_id)["objects"]] == [ts(20)]
    assert [o["modified"] for o in collection.get_object(object_id, version="first")["objects"]] == [ts(0)]
    assert len(collection.get_object(object_id, version="all")["objects"]) == 3


def test_object_versions_lists_every_version(node: Node) -> None:
    """Get Object Versions lists the three versions, oldest added first."""
    _, collection = shared(node)
    object_id = three_versions(collection)
    versions = collection.object_versions(object_id)["versions"]
    assert [timestamps.parse(v) for v in versions] == [timestamps.parse(ts(s)) for s in (0, 10, 20)]


def test_manifest_records(node: Node) -> None:
    """Each manifest record has the id, date_added, version and media type of a version."""
    _, collection = shared(node)
    object_id = three_versions(collection)
    latest = collection.get_manifest()["objects"]
    assert [(r["id"], r["media_type"]) for r in latest] == [(object_id, STIX_21)]
    assert same_instant(latest[0]["version"], ts(20))
    every = collection.get_manifest(version="all")["objects"]
    assert [timestamps.parse(r["version"]) for r in every] == [timestamps.parse(ts(s)) for s in (0, 10, 20)]
    added = [timestamps.parse(r["date_added"]) for r in every]
    assert added == sorted(set(added))


def test_manifest_takes_the_object_filters(node: Node) -> None:
    """The manifest filters on the objects it describes: type, id and version."""
    _, collection = shared(node)
    versioned = three_versions(collection)
    other = malware(1)
    collection.add_objects({"objects": [other]})
    assert ids_of(collection.get_manifest(type="malware")) == [other["id"]]
    assert ids_of(collection.get_manifest(id=versioned, version="all")) == [versioned] * 3


def test_delete_object(node: Node) -> None:
    """A deleted object is gone from Get an Object and from the manifest."""
    _, collection = shared(node)
    object_id = three_versions(collection)
    kept = malware(1)
    collection.add_objects({"objects": [kept]})
    collection.delete_object(object_id)
    with pytest.raises(requests.HTTPError) as error:
        collection.get_object(object_id)
    assert http_status(error) == 404
    assert ids_of(collection.get_manifest(version="all")) == [kept["id"]]


def test_delete_one_version(node: Node) -> None:
    """Delete with a version filter removes only that version."""
    _, collection = shared(node)
    object_id = three_versions(collection)
    collection.delete_object(object_id, version="last")
    assert [o["modified"] for o in collection.get_object(object_id)["objects"]] == [ts(10)]
    assert len(collection.object_versions(object_id)["versions"]) == 2


# -- paging (§3.5) -----------------------------------------------------------------------
def test_as_pages_walks_objects(node: Node) -> None:
    """as_pages over Get Objects returns every object once over several pages."""
    _, collection = shared(node)
    objects = [indicator(i) for i in range(10)]
    collection.add_objects({"objects": objects})
    pages = list(as_pages(collection.get_objects, per_request=4))
    assert [len(p["objects"]) for p in pages] == [4, 4, 2]
    assert [p["more"] for p in pages] == [True, True, False]
    assert [i for p in pages for i in ids_of(p)] == [o["id"] for o in objects]


def test_as_pages_walks_the_manifest(node: Node) -> None:
    """as_pages over Get Object Manifests returns every record once over several pages."""
    _, collection = shared(node)
    objects = [malware(i) for i in range(7)]
    collection.add_objects({"objects": objects})
    pages = list(as_pages(collection.get_manifest, per_request=3))
    assert [len(p["objects"]) for p in pages] == [3, 3, 1]
    assert [i for p in pages for i in ids_of(p)] == [o["id"] for o in objects]


def test_as_pages_with_filters(node: Node) -> None:
    """as_pages keeps the filters on every page."""
    _, collection = shared(node)
    objects = [indicator(i) if i % 2 else malware(i) for i in range(12)]
    collection.add_objects({"objects": objects})
    pages = list(as_pages(collection.get_objects, per_request=2, type="malware"))
    assert len(pages) == 3
    assert [i for p in pages for i in ids_of(p)] == [o["id"] for o in objects if o["type"] == "malware"]


# -- errors -----------------------------------------------------------------------------
def test_client_refuses_to_read_a_write_only_collection(node: Node) -> None:
    """taxii2-client sees can_read false and raises AccessError before asking."""
    cert = node.member("CERT")
    collection = collection_for(node, cert, node.collection("Drop box", write=("CERT",)))
    with pytest.raises(AccessError):
        collection.get_objects()


def test_server_refuses_reads_of_a_write_only_collection(node: Node) -> None:
    """The server itself answers 403 to reads of a write-only collection."""
    cert = node.member("CERT")
    collection = unchecked_collection(node, cert, node.collection("Drop box", write=("CERT",)))
    for read in (collection.get_objects, collection.get_manifest):
        with pytest.raises(requests.HTTPError) as error:
            read()
        assert http_status(error) == 403


def test_server_refuses_writes_to_a_read_only_collection(node: Node) -> None:
    """The server answers 403 to Add Objects on a read-only collection."""
    cert = node.member("CERT")
    collection = unchecked_collection(node, cert, node.collection("Feed", read=("CERT",)))
    with pytest.raises(requests.HTTPError) as error:
        collection.add_objects({"objects": [indicator(1)]})
    assert http_status(error) == 403


def test_reader_cannot_add_objects(node: Node) -> None:
    """A reader in an organisation that may write still gets 403."""
    node.member("CERT")
    reader = node.member("CERT", "reader")
    collection_id = node.collection("Both", read=("CERT",), write=("CERT",))
    with pytest.raises(AccessError):
        collection_for(node, reader, collection_id).add_objects({"objects": [indicator(1)]})
    with pytest.raises(requests.HTTPError) as error:
        unchecked_collection(node, reader, collection_id).add_objects({"objects": [indicator(1)]})
    assert http_status(error) == 403


def test_hidden_collection_endpoints_are_not_found(node: Node) -> None:
    """Every endpoint of a collection without a grant answers 404."""
    cert = node.member("CERT")
    collection = unchecked_collection(node, cert, node.collection("Hidden", read=("Ministry",)))
    calls = [collection.get_objects, collection.get_manifest,
             lambda: collection.add_objects({"objects": [indicator(1)]}),
             lambda: collection.get_object(indicator(1)["id"]),
             lambda: collection.object_versions(indicator(1)["id"]),
             lambda: collection.delete_object(indicator(1)["id"])]
    for call in calls:
        with pytest.raises(requests.HTTPError) as error:
            call()
        assert http_status(error) == 404


def test_unknown_object_is_not_found(node: Node) -> None:
    """Get, versions and delete of an id not in the collection answer 404."""
    _, collection = shared(node)
    collection.add_objects({"objects": [indicator(1)]})
    missing = indicator(2)["id"]
    for call in (collection.get_object, collection.object_versions, collection.delete_object):
        with pytest.raises(requests.HTTPError) as error:
            call(missing)
        assert http_status(error) == 404


def test_malformed_filters_are_bad_requests(node: Node) -> None:
    """A malformed added_after, version, id or type answers 400."""
    _, collection = shared(node)
    for filters in ({"added_after": "yesterday"}, {"version": "newest"},
                    {"id": "not-an-id"}, {"type": "Not A Type"}):
        with pytest.raises(requests.HTTPError) as error:
            collection.get_objects(**filters)
        assert http_status(error) == 400, filters


def test_wrong_content_type_is_unsupported(node: Node) -> None:
    """Add Objects with a non-TAXII Content-Type answers 415."""
    _, collection = shared(node)
    with pytest.raises(requests.HTTPError) as error:
        collection.add_objects({"objects": [indicator(1)]}, content_type="application/json")
    assert http_status(error) == 415


def test_body_that_is_not_an_envelope_is_refused(node: Node) -> None:
    """A body that is not JSON answers 400."""
    _, collection = shared(node)
    with pytest.raises(requests.HTTPError) as error:
        collection.add_objects(b"{not json")
    assert http_status(error) == 400
