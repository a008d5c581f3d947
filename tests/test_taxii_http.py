"""TAXII 2.1 conformance over raw HTTP: headers, resource shapes, filters, paging, access.

Every test runs a real node on a loopback port (SQLite and PostgreSQL) and talks to it
with ``requests``, so what is checked is exactly what goes over the wire.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from communique import accounts, timestamps
from tests.support import (
    TAXII, Member, Node, indicator, ipv4, malware, marking_statement, running_node, ts,
)

STIX_21 = "application/stix+json;version=2.1"
FIRST, LAST = "X-TAXII-Date-Added-First", "X-TAXII-Date-Added-Last"
EPOCH = "1970-01-01T00:00:00.000000Z"
TAXII_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z\Z")
DAY_US = 86_400 * 1_000_000
Params = dict[str, Any] | list[tuple[str, Any]] | None


# -- helpers -----------------------------------------------------------------------------
def url(node: Node, collection_id: str, *parts: str) -> str:
    """Return the URL of a collection endpoint: ``url(node, c, "objects", id)``."""
    return "/".join([f"{node.root}/collections/{collection_id}", *parts, ""])


def get(member: Member, address: str, params: Params = None) -> requests.Response:
    """GET as ``member``."""
    return requests.get(address, headers=member.headers, params=params, timeout=60)


def ok(member: Member, address: str, params: Params = None) -> dict:
    """GET as ``member``, assert 200, and return the JSON body."""
    response = get(member, address, params)
    assert response.status_code == 200, response.text
    return response.json()


def post(headers: dict[str, str], address: str, objects: list[dict]) -> requests.Response:
    """POST an envelope of ``objects`` with the given headers."""
    return requests.post(address, json={"objects": objects},
                         headers={**headers, "Content-Type": TAXII}, timeout=60)


def send(method: str, address: str, headers: dict[str, str]) -> requests.Response:
    """Call any endpoint; a POST carries an envelope with one indicator."""
    if method == "POST":
        return post(headers, address, [indicator(1)])
    return requests.request(method, address, headers=headers, timeout=60)


def ids_of(body: dict) -> list[str]:
    """Return the ids in an envelope or manifest, in order."""
    return [obj["id"] for obj in body.get("objects", [])]


def dates_added(member: Member, node: Node, collection_id: str, params: Params = None) -> list[str]:
    """Return date_added of every manifest record (one page, up to 1000)."""
    body = ok(member, url(node, collection_id, "manifest"), params)
    return [record["date_added"] for record in body.get("objects", [])]


def walk(member: Member, address: str, params: dict[str, Any]) -> list[requests.Response]:
    """Follow ``next`` from the first page to the last; return every response."""
    responses = [get(member, address, params)]
    while responses[-1].json().get("more"):
        assert responses[-1].status_code == 200, responses[-1].text
        responses.append(get(member, address, {**params, "next": responses[-1].json()["next"]}))
    assert responses[-1].status_code == 200, responses[-1].text
    return responses


def bounds(response: requests.Response) -> tuple[str, str]:
    """Return the X-TAXII-Date-Added-First and -Last headers of a response."""
    return response.headers[FIRST], response.headers[LAST]


def shared(node: Node) -> tuple[Member, str]:
    """Return an analyst of CERT and a collection CERT may read and write."""
    cert = node.member("CERT")
    return cert, node.collection("Shared", read=("CERT",), write=("CERT",))


def one_by_one(node: Node, member: Member, collection_id: str, objects: list[dict]) -> None:
    """Post each object in its own request."""
    for obj in objects:
        node.post(member, collection_id, [obj])


def versioned(node: Node, member: Member, collection_id: str, seconds: tuple[int, ...] = (0, 10, 20)) -> str:
    """Add one indicator in a version per entry of ``seconds``; return its id."""
    first = indicator(1, modified=ts(seconds[0]))
    versions = [first] + [indicator(1, id=first["id"], modified=ts(s)) for s in seconds[1:]]
    assert node.post(member, collection_id, versions)["success_count"] == len(seconds)
    return first["id"]


def instant(text: str) -> int:
    """Return a timestamp as microseconds, whatever its precision."""
    return timestamps.parse(text)


def token_row(node: Node, member: Member, *, expires: int | None) -> str:
    """Insert a new token for ``member`` straight through the store; return it."""
    token = accounts.TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = timestamps.now_us()
    with node.store.write() as tx:
        user = tx.find_user(member.email)
        assert user is not None
        tx.add_token(user_id=user.id, token_hash=accounts.hash_token(token), prefix=token[:10],
                     now=now - 2 * DAY_US, expires=expires)
    return token


def bearer(token: str) -> dict[str, str]:
    """Return request headers carrying ``token``."""
    return {"Accept": TAXII, "Authorization": f"Bearer {token}"}


def every_endpoint(node: Node, collection_id: str, object_id: str, status_id: str) -> list[tuple[str, str]]:
    """Return (method, URL) for every TAXII endpoint of the node."""
    return [("GET", f"{node.url}/taxii2/"), ("GET", f"{node.root}/"),
            ("GET", f"{node.root}/status/{status_id}/"), ("GET", f"{node.root}/collections/"),
            *collection_endpoints(node, collection_id, object_id)]


def collection_endpoints(node: Node, collection_id: str, object_id: str) -> list[tuple[str, str]]:
    """Return (method, URL) for every endpoint under one collection."""
    return [("GET", url(node, collection_id)), ("GET", url(node, collection_id, "manifest")),
            ("GET", url(node, collection_id, "objects")),
            ("POST", url(node, collection_id, "objects")),
            ("GET", url(node, collection_id, "objects", object_id)),
            ("GET", url(node, collection_id, "objects", object_id, "versions")),
            ("DELETE", url(node, collection_id, "objects", object_id))]


READ_ENDPOINTS = (("manifest",), ("objects",), ("objects", "{id}"), ("objects", "{id}", "versions"))


# -- media type on every response (§3.1) -------------------------------------------------
def test_every_success_is_taxii_json(node: Node) -> None:
    """Every endpoint answers with Content-Type exactly application/taxii+json;version=2.1."""
    cert, collection = shared(node)
    status = node.post(cert, collection, [indicator(1)])
    object_id = status["successes"][0]["id"]
    for method, address in every_endpoint(node, collection, object_id, status["id"]):
        response = send(method, address, cert.headers)
        assert response.status_code in (200, 202), (method, address, response.text)
        assert response.headers["Content-Type"] == TAXII, (method, address)


def test_every_error_is_taxii_json(node: Node) -> None:
    """Errors are TAXII error messages whose http_status matches the HTTP status."""
    cert, collection = shared(node)
    objects = url(node, collection, "objects")
    responses = [
        get(cert, objects, {"limit": "zero"}),                                       # 400
        requests.get(objects, headers={"Accept": TAXII}, timeout=60),              # 401
        send("POST", url(node, node.collection("Feed", read=("CERT",)), "objects"),
             cert.headers),                                                         # 403
        get(cert, url(node, collection, "objects", indicator(1)["id"])),           # 404
        requests.get(objects, headers={**cert.headers, "Accept": "application/json"},
                     timeout=60),                                                   # 406
        requests.post(objects, json={"objects": []}, headers=cert.headers, timeout=60),  # 415
    ]
    responses.append(requests.put(objects, headers=cert.headers, timeout=60))  # 405
    assert [r.status_code for r in responses] == [400, 401, 403, 404, 406, 415, 405]
    for response in responses:
        assert response.headers["Content-Type"] == TAXII
        body = response.json()
        assert body["title"] and body["http_status"] == str(response.status_code)


def test_url_without_trailing_slash_is_not_found(node: Node) -> None:
    """A TAXII URL without its trailing slash is a 404, not a redirect."""
    cert, collection = shared(node)
    response = requests.get(url(node, collection, "objects").rstrip("/"), headers=cert.headers,
                            allow_redirects=False, timeout=60)
    assert response.status_code == 404
    assert response.headers["Content-Type"] == TAXII


def test_accept_variants_that_admit_taxii_21(node: Node) -> None:
    """Accept headers that admit TAXII 2.1 are served; others get 406."""
    cert, collection = shared(node)
    objects = url(node, collection, "objects")
    for accept, expected in ((TAXII, 200), ("application/taxii+json", 200), ("*/*", 200),
                             ("application/*", 200), (f"{TAXII},{STIX_21}", 200),
                             ("application/taxii+json;version=2.0", 406),
                             ("application/json", 406), ("text/html", 406)):
        response = requests.get(objects, headers={**cert.headers, "Accept": accept}, timeout=60)
        assert response.status_code == expected, accept


# -- X-TAXII-Date-Added headers (§3.2) ---------------------------------------------------
def test_date_added_headers_bound_objects_and_manifest_pages(node: Node) -> None:
    """Objects and manifest pages carry the first and last date_added of the page."""
    cert, collection = shared(node)
    one_by_one(node, cert, collection, [indicator(i) for i in range(6)])
    dates = dates_added(cert, node, collection)
    for params, (start, end) in (({}, (0, 5)), ({"limit": 2}, (0, 1)),
                                 ({"added_after": dates[1], "limit": 3}, (2, 4))):
        for endpoint in ("objects", "manifest"):
            response = get(cert, url(node, collection, endpoint), params)
            assert bounds(response) == (dates[start], dates[end]), (endpoint, params)


def test_date_added_headers_bound_object_and_versions(node: Node) -> None:
    """Get an Object and Get Object Versions carry the date_added of the versions returned."""
    cert, collection = shared(node)
    object_id = versioned(node, cert, collection)
    node.post(cert, collection, [indicator(1, id=object_id, modified=ts(30))])
    dates = dates_added(cert, node, collection, {"match[version]": "all"})
    assert len(dates) == 4
    one = url(node, collection, "objects", object_id)
    assert bounds(get(cert, one)) == (dates[3], dates[3])
    assert bounds(get(cert, one, {"match[version]": "all"})) == (dates[0], dates[3])
    assert bounds(get(cert, one, {"match[version]": "first"})) == (dates[0], dates[0])
    assert bounds(get(cert, one + "versions/")) == (dates[0], dates[3])
    assert bounds(get(cert, one + "versions/", {"limit": 2})) == (dates[0], dates[1])


def test_date_added_headers_on_an_empty_collection(node: Node) -> None:
    """An empty page still has both headers: the epoch, where it started."""
    cert, collection = shared(node)
    for endpoint in ("objects", "manifest"):
        response = get(cert, url(node, collection, endpoint))
        assert response.status_code == 200
        assert bounds(response) == (EPOCH, EPOCH)


def test_date_added_headers_on_empty_pages_after_added_after(node: Node) -> None:
    """An empty page after added_after has both headers at that position."""
    cert, collection = shared(node)
    object_id = versioned(node, cert, collection)
    end = dates_added(cert, node, collection)[-1]
    for address in (url(node, collection, "objects"), url(node, collection, "manifest"),
                    url(node, collection, "objects", object_id),
                    url(node, collection, "objects", object_id, "versions")):
        response = get(cert, address, {"added_after": end})
        assert response.status_code == 200, address
        first, last = bounds(response)
        assert TAXII_TIMESTAMP.match(first) and TAXII_TIMESTAMP.match(last)
        assert instant(first) == instant(last) == instant(end), address


def test_date_added_headers_when_no_version_matches(node: Node) -> None:
    """Get an Object with a version that does not exist is an empty envelope with both headers."""
    cert, collection = shared(node)
    object_id = versioned(node, cert, collection)
    response = get(cert, url(node, collection, "objects", object_id), {"match[version]": ts(5)})
    assert response.status_code == 200
    assert "objects" not in response.json()
    assert all(TAXII_TIMESTAMP.match(value) for value in bounds(response))


def test_header_timestamps_have_microseconds(node: Node) -> None:
    """The date_added headers and records are TAXII timestamps with six fractional digits."""
    cert, collection = shared(node)
    node.post(cert, collection, [indicator(1), malware(1)])
    response = get(cert, url(node, collection, "manifest"))
    assert all(TAXII_TIMESTAMP.match(value) for value in bounds(response))
    assert all(TAXII_TIMESTAMP.match(r["date_added"]) for r in response.json()["objects"])


# -- resource shapes (§3.7, §4, §5) ------------------------------------------------------
def test_discovery_and_api_root_shapes(node: Node) -> None:
    """Discovery lists relative API roots with a default; the API root has its required keys."""
    cert, _ = shared(node)
    discovery = ok(cert, f"{node.url}/taxii2/")
    assert discovery["title"] == node.settings.title
    assert discovery["default"] in discovery["api_roots"]
    assert all(r.startswith("/") and not r.startswith("//") for r in discovery["api_roots"])
    root = ok(cert, node.url + discovery["default"])
    assert root["versions"] == [TAXII]
    assert root["max_content_length"] == node.settings.max_content_length > 0


def test_envelope_shape(node: Node) -> None:
    """An envelope has more, next only when there is more, and a non-empty objects list."""
    cert, collection = shared(node)
    node.post(cert, collection, [indicator(i) for i in range(3)])
    page = ok(cert, url(node, collection, "objects"), {"limit": 2})
    assert set(page) == {"more", "next", "objects"}
    assert page["more"] is True and isinstance(page["next"], str) and len(page["objects"]) == 2
    last = ok(cert, url(node, collection, "objects"), {"limit": 2, "next": page["next"]})
    assert set(last) <= {"more", "objects"} and last.get("more", False) is False
    assert len(last["objects"]) == 1


def test_empty_collection_has_no_objects_key(node: Node) -> None:
    """An empty envelope and an empty manifest leave out the objects key."""
    cert, collection = shared(node)
    for endpoint in ("objects", "manifest"):
        body = ok(cert, url(node, collection, endpoint))
        assert "objects" not in body and body.get("more", False) is False


def test_manifest_record_shape(node: Node) -> None:
    """Manifest records have exactly id, date_added, version and a media type of the collection."""
    cert, collection = shared(node)
    objects = [indicator(1, created=ts(3), modified=ts(4)), marking_statement(), ipv4("192.0.2.1")]
    node.post(cert, collection, objects)
    records = ok(cert, url(node, collection, "manifest"))["objects"]
    media_types = ok(cert, url(node, collection))["media_types"]
    assert [r["id"] for r in records] == [o["id"] for o in objects]
    for record in records:
        assert set(record) == {"id", "date_added", "version", "media_type"}
        assert record["media_type"] in media_types
    assert instant(records[0]["version"]) == instant(ts(4))   # modified
    assert instant(records[1]["version"]) == instant(ts(0))   # created, when no modified
    assert instant(records[2]["version"]) == instant(records[2]["date_added"])  # unversioned SCO


def test_versions_shape(node: Node) -> None:
    """The versions resource lists every version; an empty page leaves the key out."""
    cert, collection = shared(node)
    object_id = versioned(node, cert, collection)
    address = url(node, collection, "objects", object_id, "versions")
    body = ok(cert, address)
    assert set(body) <= {"more", "versions"} and body.get("more", False) is False
    assert [instant(v) for v in body["versions"]] == [instant(ts(s)) for s in (0, 10, 20)]
    end = dates_added(cert, node, collection)[-1]
    assert "versions" not in ok(cert, address, {"added_after": end})


def test_collections_come_in_a_consistent_order(node: Node) -> None:
    """The collections resource lists the same collections in the same order every time."""
    cert = node.member("CERT")
    created = [node.collection(f"C{i}", read=("CERT",)) for i in range(5)]
    listings = [[c["id"] for c in ok(cert, f"{node.root}/collections/")["collections"]]
                for _ in range(3)]
    assert listings[0] == listings[1] == listings[2]
    assert sorted(listings[0]) == sorted(created)


def test_unknown_api_root_is_not_found(node: Node) -> None:
    """An API root that does not exist answers 404 on its information and its collections."""
    cert, _ = shared(node)
    for address in (f"{node.url}/nowhere/", f"{node.url}/nowhere/collections/"):
        assert get(cert, address).status_code == 404, address


def test_collections_resource_is_empty_when_none_visible(node: Node) -> None:
    """With no visible collection the collections resource is exactly {}."""
    node.collection("Hidden", read=("Ministry",))
    assert ok(node.member("CERT"), f"{node.root}/collections/") == {}


def test_status_resource_shape(node: Node) -> None:
    """Add Objects answers 202 with a complete status; Get Status returns the same resource."""
    cert, collection = shared(node)
    good, bad = indicator(1), indicator(2, pattern="[nonsense")
    response = post(cert.headers, url(node, collection, "objects"), [good, bad])
    assert response.status_code == 202 and response.headers["Content-Type"] == TAXII
    status = response.json()
    assert status["status"] == "complete"
    assert (status["total_count"], status["success_count"], status["failure_count"],
            status["pending_count"]) == (2, 1, 1, 0)
    assert status["successes"] == [{"id": good["id"], "version": good["modified"]}]
    assert status["failures"][0]["id"] == bad["id"] and status["failures"][0]["message"]
    assert ok(cert, f"{node.root}/status/{status['id']}/") == status


def test_body_up_to_max_content_length_is_accepted(database_url: str) -> None:
    """A body of exactly max_content_length is accepted; one byte more is a 413."""
    limit = 4000
    with running_node(database_url, max_content_length=limit) as node:
        cert, collection = shared(node)
        body = json.dumps({"objects": [indicator(1)]}).encode()
        exact = body[:-1] + b" " * (limit - len(body)) + b"}"
        headers = {**cert.headers, "Content-Type": TAXII}
        address = url(node, collection, "objects")
        assert ok(cert, f"{node.root}/")["max_content_length"] == limit
        response = requests.post(address, data=exact, headers=headers, timeout=60)
        assert response.status_code == 202, response.text
        response = requests.post(address, data=exact + b" ", headers=headers, timeout=60)
        assert response.status_code == 413
        assert response.headers["Content-Type"] == TAXII


# -- order and filters (§3.3, §3.4) ------------------------------------------------------
def test_objects_come_in_ascending_date_added(node: Node) -> None:
    """Objects and manifest records come oldest-added first, whatever their own timestamps."""
    cert, collection = shared(node)
    objects = [indicator(i, created=ts(100 - i)) for i in range(5)]
    one_by_one(node, cert, collection, objects)
    manifest = ok(cert, url(node, collection, "manifest"))["objects"]
    added = [instant(r["date_added"]) for r in manifest]
    assert added == sorted(added) and len(set(added)) == len(added)
    assert [r["id"] for r in manifest] == [o["id"] for o in objects]
    assert ids_of(ok(cert, url(node, collection, "objects"))) == [o["id"] for o in objects]


def test_added_after_is_exclusive(node: Node) -> None:
    """added_after equal to an object's date_added leaves that object out."""
    cert, collection = shared(node)
    objects = [malware(i) for i in range(4)]
    one_by_one(node, cert, collection, objects)
    dates = dates_added(cert, node, collection)
    for index, date in enumerate(dates):
        body = ok(cert, url(node, collection, "objects"), {"added_after": date})
        assert ids_of(body) == [o["id"] for o in objects[index + 1:]]
    just_before = timestamps.format_us(instant(dates[2]) - 1)
    assert ids_of(ok(cert, url(node, collection, "objects"), {"added_after": just_before})) == [
        o["id"] for o in objects[2:]]


def test_match_fields_are_anded(node: Node) -> None:
    """Different match fields must all hold."""
    cert, collection = shared(node)
    ind, mal = indicator(1), malware(1)
    node.post(cert, collection, [ind, mal])
    objects = url(node, collection, "objects")
    assert ids_of(ok(cert, objects, {"match[type]": "indicator", "match[id]": mal["id"]})) == []
    assert ids_of(ok(cert, objects, {"match[type]": "malware", "match[id]": mal["id"]})) == [mal["id"]]
    assert ids_of(ok(cert, objects, {"match[type]": "indicator", "match[spec_version]": "2.0"})) == []


def test_comma_values_are_ored(node: Node) -> None:
    """Comma-separated values of one field match any of them."""
    cert, collection = shared(node)
    objects = [indicator(1), malware(1), ipv4("198.51.100.9")]
    node.post(cert, collection, objects)
    address = url(node, collection, "objects")
    both_types = ok(cert, address, {"match[type]": "indicator,ipv4-addr"})
    assert ids_of(both_types) == [objects[0]["id"], objects[2]["id"]]
    both_ids = ok(cert, address, {"match[id]": f"{objects[1]['id']},{objects[2]['id']}"})
    assert ids_of(both_ids) == [objects[1]["id"], objects[2]["id"]]
    object_id = versioned(node, cert, collection)
    first_and_last = ok(cert, address, {"match[id]": object_id, "match[version]": "first,last"})
    assert [o["modified"] for o in first_and_last["objects"]] == [ts(0), ts(20)]


def test_match_version_all_with_other_fields(node: Node) -> None:
    """match[version]=all returns every version of only the objects the other fields keep."""
    cert, collection = shared(node)
    kept = versioned(node, cert, collection)
    versioned(node, cert, collection, (1, 2))
    node.post(cert, collection, [malware(1), malware(2)])
    body = ok(cert, url(node, collection, "objects"),
              {"match[version]": "all", "match[id]": kept, "match[type]": "indicator"})
    assert [(o["id"], o["modified"]) for o in body["objects"]] == [(kept, ts(s)) for s in (0, 10, 20)]
    indicators = ok(cert, url(node, collection, "manifest"),
                    {"match[version]": "all", "match[type]": "indicator"})
    assert len(indicators["objects"]) == 5


def test_exact_version_matches_at_any_precision(node: Node) -> None:
    """An exact version matches whether written to the second, millisecond or microsecond."""
    cert, collection = shared(node)
    object_id = versioned(node, cert, collection, (0, 5, 10))
    for written in ("2024-01-01T00:00:05Z", "2024-01-01T00:00:05.000Z",
                    "2024-01-01T00:00:05.000000Z", "2024-01-01T00:00:05.0Z"):
        for address in (url(node, collection, "objects"), url(node, collection, "objects", object_id)):
            body = ok(cert, address, {"match[version]": written})
            assert [o["modified"] for o in body.get("objects", [])] == [ts(5)], (written, address)
    near = ok(cert, url(node, collection, "objects"), {"match[version]": "2024-01-01T00:00:05.001Z"})
    assert "objects" not in near


def test_unknown_match_fields_are_ignored(node: Node) -> None:
    """A match field the server does not know changes nothing."""
    cert, collection = shared(node)
    objects = [indicator(1), malware(2)]
    node.post(cert, collection, objects)
    body = ok(cert, url(node, collection, "objects"), {"match[colour]": "red", "match[x_foo]": "1"})
    assert ids_of(body) == [o["id"] for o in objects]


def test_malformed_parameters_are_bad_requests(node: Node) -> None:
    """Malformed limit, added_after and match values answer 400."""
    cert, collection = shared(node)
    address = url(node, collection, "objects")
    for params in ({"limit": "0"}, {"limit": "-3"}, {"limit": "ten"}, {"added_after": "today"},
                   {"added_after": "2024-13-01T00:00:00Z"},
                   [("added_after", ts(0)), ("added_after", ts(1))],
                   {"match[version]": "newest"}, {"match[id]": "indicator--nope"},
                   {"match[spec_version]": "two"}, {"next": "not-a-cursor"}):
        response = get(cert, address, params)
        assert response.status_code == 400, params
        assert response.headers["Content-Type"] == TAXII


# -- limit (§3.4) ------------------------------------------------------------------------
def test_limit_is_never_exceeded(node: Node) -> None:
    """Every page holds at most limit objects, and paging gets each object once."""
    cert, collection = shared(node)
    objects = [malware(i) for i in range(11)]
    node.post(cert, collection, objects)
    for limit in (1, 2, 3, 5, 10, 11, 12):
        for endpoint in ("objects", "manifest"):
            pages = [r.json() for r in walk(cert, url(node, collection, endpoint), {"limit": limit})]
            assert all(len(p.get("objects", [])) <= limit for p in pages), (limit, endpoint)
            assert [i for p in pages for i in ids_of(p)] == [o["id"] for o in objects]


def test_limit_is_clamped_to_max_page_size(database_url: str) -> None:
    """A limit above max_page_size, or none, gives max_page_size objects and more."""
    with running_node(database_url, max_page_size=50) as node:
        cert, collection = shared(node)
        objects = [malware(i) for i in range(120)]
        node.post(cert, collection, objects)
        for endpoint in ("objects", "manifest"):
            address = url(node, collection, endpoint)
            for params in ({}, {"limit": 51}, {"limit": 1000}):
                body = ok(cert, address, params)
                assert len(body["objects"]) == 50 and body["more"] is True, (endpoint, params)
            pages = [r.json() for r in walk(cert, address, {"limit": 1000})]
            assert [len(p["objects"]) for p in pages] == [50, 50, 20]
            assert [i for p in pages for i in ids_of(p)] == [o["id"] for o in objects]


def test_largest_taxii_integer_limit_is_clamped(node: Node) -> None:
    """limit = 2**53 - 1, the largest TAXII integer (§2), is valid: it is lowered, not refused."""
    cert, collection = shared(node)
    node.post(cert, collection, [malware(i) for i in range(3)])
    for endpoint in ("objects", "manifest"):
        body = ok(cert, url(node, collection, endpoint), {"limit": 2**53 - 1})
        assert len(body["objects"]) == 3, endpoint


# -- next cursors (§3.5) -----------------------------------------------------------------
def test_next_walks_objects_manifest_and_versions(node: Node) -> None:
    """Following next visits every object, record and version exactly once."""
    cert, collection = shared(node)
    objects = [indicator(i) for i in range(9)]
    node.post(cert, collection, objects)
    for endpoint in ("objects", "manifest"):
        pages = walk(cert, url(node, collection, endpoint), {"limit": 4, "match[type]": "indicator"})
        assert [len(p.json()["objects"]) for p in pages] == [4, 4, 1]
        assert [i for p in pages for i in ids_of(p.json())] == [o["id"] for o in objects]
    object_id = versioned(node, cert, collection, (0, 1, 2, 3, 4))
    pages = walk(cert, url(node, collection, "objects", object_id, "versions"), {"limit": 2})
    versions = [v for p in pages for v in p.json()["versions"]]
    assert [instant(v) for v in versions] == [instant(ts(s)) for s in range(5)]
    pages = walk(cert, url(node, collection, "objects", object_id), {"limit": 2, "match[version]": "all"})
    assert [o["modified"] for p in pages for o in p.json()["objects"]] == [ts(s) for s in range(5)]


def test_empty_page_after_next_starts_where_the_cursor_ended(node: Node) -> None:
    """When the rest was deleted, the next page is empty and its headers hold the cursor's place."""
    cert, collection = shared(node)
    objects = [malware(i) for i in range(3)]
    node.post(cert, collection, objects)
    address = url(node, collection, "objects")
    first = get(cert, address, {"limit": 2})
    assert first.json()["more"] is True
    gone = url(node, collection, "objects", objects[2]["id"])
    assert requests.delete(gone, headers=cert.headers, timeout=60).status_code == 200
    after = get(cert, address, {"limit": 2, "next": first.json()["next"]})
    assert after.status_code == 200
    assert "objects" not in after.json() and after.json().get("more", False) is False
    assert bounds(after) == (first.headers[LAST], first.headers[LAST])


def test_next_with_other_filters_is_refused(node: Node) -> None:
    """A cursor sent back with different filters answers 400."""
    cert, collection = shared(node)
    node.post(cert, collection, [malware(i) for i in range(5)])
    address = url(node, collection, "objects")
    original = {"match[type]": "malware", "limit": 2}
    cursor = ok(cert, address, original)["next"]
    assert get(cert, address, {**original, "next": cursor}).status_code == 200
    for changed in ({"limit": 2}, {"match[type]": "indicator", "limit": 2},
                    {**original, "match[version]": "all"},
                    {**original, "added_after": ts(0)},
                    {**original, "match[spec_version]": "2.1"}):
        response = get(cert, address, {**changed, "next": cursor})
        assert response.status_code == 400, changed


def test_next_from_another_collection_is_refused(node: Node) -> None:
    """A cursor issued for one collection answers 400 in another."""
    cert, collection = shared(node)
    other = node.collection("Other", read=("CERT",), write=("CERT",))
    for target in (collection, other):
        node.post(cert, target, [malware(i) for i in range(3)])
    cursor = ok(cert, url(node, collection, "objects"), {"limit": 1})["next"]
    assert get(cert, url(node, other, "objects"), {"limit": 1, "next": cursor}).status_code == 400


def test_next_from_another_object_is_refused(node: Node) -> None:
    """A versions cursor of one object answers 400 for another object."""
    cert, collection = shared(node)
    one = versioned(node, cert, collection)
    two = versioned(node, cert, collection)
    cursor = ok(cert, url(node, collection, "objects", one, "versions"), {"limit": 1})["next"]
    response = get(cert, url(node, collection, "objects", two, "versions"), {"limit": 1, "next": cursor})
    assert response.status_code == 400


def test_altered_next_is_refused(node: Node) -> None:
    """A cursor with any character changed answers 400."""
    cert, collection = shared(node)
    node.post(cert, collection, [malware(i) for i in range(3)])
    address = url(node, collection, "objects")
    cursor = ok(cert, address, {"limit": 1})["next"]
    for position in (0, len(cursor) // 2, len(cursor) - 1):
        swapped = "A" if cursor[position] != "A" else "B"
        altered = cursor[:position] + swapped + cursor[position + 1:]
        assert get(cert, address, {"limit": 1, "next": altered}).status_code == 400


def test_next_works_on_a_second_server(database_url: str) -> None:
    """A cursor from one server works on another server over the same database."""
    objects = [malware(i) for i in range(6)]
    with running_node(database_url) as first, running_node(database_url) as second:
        cert, collection = shared(first)
        first.post(cert, collection, objects)
        page = ok(cert, url(first, collection, "objects"), {"limit": 2})
        rest = ok(cert, url(second, collection, "objects"), {"limit": 4, "next": page["next"]})
    assert ids_of(rest) == [o["id"] for o in objects[2:]]


def test_next_survives_a_restart(database_url: str) -> None:
    """A cursor still works after the server stops and a new one starts on the database."""
    objects = [malware(i) for i in range(6)]
    with running_node(database_url) as before:
        cert, collection = shared(before)
        before.post(cert, collection, objects)
        page = ok(cert, url(before, collection, "manifest"), {"limit": 2})
    with running_node(database_url) as after:
        rest = walk(cert, url(after, collection, "manifest"), {"limit": 2, "next": page["next"]})
    assert [i for r in rest for i in ids_of(r.json())] == [o["id"] for o in objects[2:]]


# -- Delete an Object (§5.7) -------------------------------------------------------------
def test_delete_follows_the_permission_table(node: Node) -> None:
    """Neither right: 404; read or write only: 403; a reader in a read-write org: 403."""
    collection = node.collection("Shared", read=("CERT", "Readers"), write=("CERT", "Writers"))
    owner = node.member("CERT")
    object_id = versioned(node, owner, collection)
    cases = [(node.member("Nobody"), 404), (node.member("Readers"), 403),
             (node.member("Writers"), 403), (node.member("CERT", "reader"), 403)]
    one = url(node, collection, "objects", object_id)
    for member, expected in cases:
        response = requests.delete(one, headers=member.headers, timeout=60)
        assert response.status_code == expected, (member.org, member.role)
        assert response.headers["Content-Type"] == TAXII
    assert len(ok(owner, one, {"match[version]": "all"})["objects"]) == 3
    assert requests.delete(one, headers=owner.headers, timeout=60).status_code == 200


def test_delete_removes_every_version_by_default(node: Node) -> None:
    """After a plain delete the object is 404 everywhere and gone from the manifest."""
    cert, collection = shared(node)
    object_id = versioned(node, cert, collection)
    kept = malware(1)
    node.post(cert, collection, [kept])
    one = url(node, collection, "objects", object_id)
    assert requests.delete(one, headers=cert.headers, timeout=60).status_code == 200
    assert get(cert, one).status_code == 404
    assert get(cert, one, {"match[version]": "all"}).status_code == 404
    assert get(cert, one + "versions/").status_code == 404
    manifest = ok(cert, url(node, collection, "manifest"), {"match[version]": "all"})
    assert ids_of(manifest) == [kept["id"]]
    assert ids_of(ok(cert, url(node, collection, "objects"), {"match[version]": "all"})) == [kept["id"]]


def test_delete_with_match_version_removes_only_those(node: Node) -> None:
    """match[version] narrows a delete to the versions it names."""
    cert, collection = shared(node)
    object_id = versioned(node, cert, collection, (0, 10, 20, 30))
    one = url(node, collection, "objects", object_id)

    def remaining() -> list[str]:
        """Return the modified of every version left."""
        return [o["modified"] for o in ok(cert, one, {"match[version]": "all"})["objects"]]

    assert requests.delete(one, headers=cert.headers, params={"match[version]": "first"},
                           timeout=60).status_code == 200
    assert remaining() == [ts(10), ts(20), ts(30)]
    assert requests.delete(one, headers=cert.headers, params={"match[version]": ts(20)},
                           timeout=60).status_code == 200
    assert remaining() == [ts(10), ts(30)]
    assert requests.delete(one, headers=cert.headers, params={"match[version]": "last"},
                           timeout=60).status_code == 200
    assert remaining() == [ts(10)]
    assert [o["modified"] for o in ok(cert, one)["objects"]] == [ts(10)]
    assert len(ok(cert, url(node, collection, "manifest"))["objects"]) == 1


def test_delete_of_a_version_that_does_not_exist_is_not_found(node: Node) -> None:
    """Deleting an unknown object, or a version it does not have, answers 404."""
    cert, collection = shared(node)
    object_id = versioned(node, cert, collection)
    unknown = url(node, collection, "objects", indicator(2)["id"])
    assert requests.delete(unknown, headers=cert.headers, timeout=60).status_code == 404
    response = requests.delete(url(node, collection, "objects", object_id), headers=cert.headers,
                               params={"match[version]": ts(5)}, timeout=60)
    assert response.status_code == 404
    assert len(ok(cert, url(node, collection, "objects", object_id, "versions"))["versions"]) == 3


# -- unknown objects and status resources (§4.3, §5.6, §5.8) -----------------------------
def test_unknown_object_is_not_found(node: Node) -> None:
    """Get an Object of an id not in the collection answers 404."""
    cert, collection = shared(node)
    elsewhere = node.collection("Elsewhere", read=("CERT",), write=("CERT",))
    obj = indicator(1)
    node.post(cert, elsewhere, [obj])
    assert get(cert, url(node, collection, "objects", obj["id"])).status_code == 404
    assert get(cert, url(node, elsewhere, "objects", obj["id"])).status_code == 200


def test_versions_of_unknown_object_is_not_found(node: Node) -> None:
    """Get Object Versions of an id not in the collection answers 404."""
    cert, collection = shared(node)
    node.post(cert, collection, [indicator(1)])
    response = get(cert, url(node, collection, "objects", indicator(2)["id"], "versions"))
    assert response.status_code == 404


def test_status_of_another_organisation_is_not_found(node: Node) -> None:
    """A status resource is 404 to every organisation but the one that posted."""
    cert, collection = shared(node)
    status = node.post(cert, collection, [indicator(1)])
    colleague = node.member("CERT", "reader")
    assert get(colleague, f"{node.root}/status/{status['id']}/").status_code == 200
    assert get(node.member("Ministry"), f"{node.root}/status/{status['id']}/").status_code == 404


def test_unknown_status_is_not_found(node: Node) -> None:
    """A status id never issued, or not an id at all, answers 404."""
    cert, _ = shared(node)
    for status_id in ("8c3fd45e-7b57-4a5c-9f1e-0d4b7e3c2a11", "x" * 100):
        assert get(cert, f"{node.root}/status/{status_id}/").status_code == 404


# -- access to collections ---------------------------------------------------------------
def test_collection_without_grant_is_not_found_everywhere(node: Node) -> None:
    """Every endpoint of a collection the organisation has no grant on answers 404."""
    cert, _ = shared(node)
    ministry = node.member("Ministry")
    hidden = node.collection("Hidden", read=("Ministry",), write=("Ministry",))
    object_id = versioned(node, ministry, hidden)
    for method, address in collection_endpoints(node, hidden, object_id):
        response = send(method, address, cert.headers)
        assert response.status_code == 404, (method, address)
    assert ids_of(ok(ministry, url(node, hidden, "objects"))) == [object_id]


def test_write_only_collection_forbids_reads(node: Node) -> None:
    """A write-only collection is visible but answers 403 to every read."""
    cert = node.member("CERT")
    drop_box = node.collection("Drop box", read=("Ministry",), write=("CERT",))
    status = node.post(cert, drop_box, [indicator(1)])
    object_id = status["successes"][0]["id"]
    described = ok(cert, url(node, drop_box))
    assert (described["can_read"], described["can_write"]) == (False, True)
    for parts in READ_ENDPOINTS:
        address = url(node, drop_box, *(p.format(id=object_id) for p in parts))
        assert get(cert, address).status_code == 403, address


def test_read_only_collection_forbids_posts(node: Node) -> None:
    """A read-only collection answers 403 to Add Objects, and nothing is added."""
    cert = node.member("CERT")
    feed = node.collection("Feed", read=("CERT",), write=("Ministry",))
    response = post(cert.headers, url(node, feed, "objects"), [indicator(1)])
    assert response.status_code == 403
    assert "objects" not in ok(cert, url(node, feed, "objects"))


def test_reader_role_may_not_post(node: Node) -> None:
    """A reader in an organisation that may write gets 403 on Add Objects."""
    _, collection = shared(node)
    reader = node.member("CERT", "reader")
    assert post(reader.headers, url(node, collection, "objects"), [indicator(1)]).status_code == 403


# -- authentication ----------------------------------------------------------------------
def test_unauthenticated_requests_are_challenged_everywhere(node: Node) -> None:
    """Every endpoint answers 401 with WWW-Authenticate when no credentials are sent."""
    cert, collection = shared(node)
    status = node.post(cert, collection, [indicator(1)])
    object_id = status["successes"][0]["id"]
    for method, address in every_endpoint(node, collection, object_id, status["id"]):
        response = send(method, address, {"Accept": TAXII})
        assert response.status_code == 401, (method, address)
        assert response.headers["WWW-Authenticate"], (method, address)
        assert response.headers["Content-Type"] == TAXII


def test_unknown_token_is_unauthorised(node: Node) -> None:
    """A token the node never issued, or a malformed header, answers 401 with a challenge."""
    _, collection = shared(node)
    address = url(node, collection, "objects")
    for authorization in ("Bearer cq_unknown", "Bearer ", "Token abc", "Basic !!!"):
        response = requests.get(address, headers={"Accept": TAXII, "Authorization": authorization},
                                timeout=60)
        assert response.status_code == 401, authorization
        assert "WWW-Authenticate" in response.headers


def test_revoked_token_is_unauthorised(node: Node) -> None:
    """A revoked token stops working at once."""
    cert, collection = shared(node)
    address = url(node, collection, "objects")
    assert get(cert, address).status_code == 200
    with node.store.read() as tx:
        found = tx.find_token(accounts.hash_token(cert.token))
    assert found is not None
    accounts.revoke_token(node.store, found[0].id)
    response = get(cert, address)
    assert response.status_code == 401 and "WWW-Authenticate" in response.headers


def test_expired_token_is_unauthorised(node: Node) -> None:
    """A token whose expiry has passed answers 401; one still valid works."""
    cert, collection = shared(node)
    address = url(node, collection, "objects")
    now = timestamps.now_us()
    expired = token_row(node, cert, expires=now - DAY_US)
    valid = token_row(node, cert, expires=now + DAY_US)
    assert requests.get(address, headers=bearer(valid), timeout=60).status_code == 200
    response = requests.get(address, headers=bearer(expired), timeout=60)
    assert response.status_code == 401 and "WWW-Authenticate" in response.headers


def test_basic_auth_with_the_owner_or_no_user_name(node: Node) -> None:
    """HTTP Basic with the token as password works with the owner's e-mail or an empty user."""
    cert, collection = shared(node)
    address = url(node, collection, "objects")
    for user in (cert.email, cert.email.upper(), ""):
        response = requests.get(address, headers={"Accept": TAXII}, auth=(user, cert.token),
                                timeout=60)
        assert response.status_code == 200, user


def test_basic_auth_with_another_user_name_is_unauthorised(node: Node) -> None:
    """HTTP Basic whose user name is not the token's owner answers 401."""
    cert, collection = shared(node)
    colleague = node.member("CERT")
    address = url(node, collection, "objects")
    for user in (colleague.email, "someone@elsewhere.example"):
        response = requests.get(address, headers={"Accept": TAXII}, auth=(user, cert.token),
                                timeout=60)
        assert response.status_code == 401, user
        assert "WWW-Authenticate" in response.headers


# -- aliases, duplicates, concurrent writers --------------------------------------------
def test_alias_works_in_place_of_the_id(node: Node) -> None:
    """Every collection endpoint answers by alias as by id, and cursors cross over."""
    cert = node.member("CERT")
    collection = node.collection("Shared", read=("CERT",), write=("CERT",), alias="shared")
    objects = [indicator(i) for i in range(3)]
    assert post(cert.headers, url(node, "shared", "objects"), objects).status_code == 202
    assert ok(cert, url(node, "shared"))["id"] == collection
    assert ids_of(ok(cert, url(node, "shared", "objects"))) == [o["id"] for o in objects]
    assert ids_of(ok(cert, url(node, "shared", "manifest"))) == [o["id"] for o in objects]
    one = objects[0]["id"]
    assert ids_of(ok(cert, url(node, "shared", "objects", one))) == [one]
    assert ok(cert, url(node, "shared", "objects", one, "versions"))["versions"]
    cursor = ok(cert, url(node, "shared", "objects"), {"limit": 1})["next"]
    rest = ok(cert, url(node, collection, "objects"), {"limit": 5, "next": cursor})
    assert ids_of(rest) == [o["id"] for o in objects[1:]]
    assert requests.delete(url(node, "shared", "objects", one), headers=cert.headers,
                           timeout=60).status_code == 200
    assert get(cert, url(node, collection, "objects", one)).status_code == 404


def test_duplicate_post_is_a_success_that_adds_nothing(node: Node) -> None:
    """Posting exact duplicates succeeds, and the manifest does not change."""
    cert, collection = shared(node)
    objects = [indicator(1), malware(1), ipv4("192.0.2.44"), marking_statement()]
    node.post(cert, collection, objects)
    before = ok(cert, url(node, collection, "manifest"), {"match[version]": "all"})
    status = node.post(cert, collection, objects)
    assert (status["success_count"], status["failure_count"]) == (4, 0)
    assert ok(cert, url(node, collection, "manifest"), {"match[version]": "all"}) == before


def test_changed_object_with_same_version_is_a_failure(node: Node) -> None:
    """A different object under an existing id and version is refused, the original kept."""
    cert, collection = shared(node)
    original = indicator(1)
    node.post(cert, collection, [original])
    status = node.post(cert, collection, [{**original, "name": "Changed"}])
    assert (status["success_count"], status["failure_count"]) == (0, 1)
    body = ok(cert, url(node, collection, "objects", original["id"]))
    assert [o["name"] for o in body["objects"]] == [original["name"]]


def test_concurrent_writers_store_each_object_once(node: Node) -> None:
    """Eight writers at once: every object is stored once and date_added strictly increases."""
    cert, collection = shared(node)
    address = url(node, collection, "objects")
    start = threading.Barrier(8)

    def writer(number: int) -> list[str]:
        """Post 25 envelopes of 40 new objects once all writers are ready; return their ids."""
        session = node.session(cert)
        session.headers["Content-Type"] = TAXII
        posted: list[str] = []
        start.wait()
        for envelope in range(25):
            objects = [malware(i) for i in range(40)]
            response = session.post(address, json={"objects": objects}, timeout=120)
            assert response.status_code == 202, response.text
            assert response.json()["success_count"] == 40
            posted += [o["id"] for o in objects]
        return posted

    with ThreadPoolExecutor(max_workers=8) as pool:
        posted = [i for ids in pool.map(writer, range(8)) for i in ids]
    records = [r for page in walk(cert, url(node, collection, "manifest"), {"limit": 1000})
               for r in page.json()["objects"]]
    assert len(posted) == len(set(posted)) == 8000
    assert sorted(r["id"] for r in records) == sorted(posted)
    added = [instant(r["date_added"]) for r in records]
    assert all(a < b for a, b in zip(added, added[1:]))
