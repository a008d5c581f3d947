"""Hostile and malformed input over real HTTP: every refusal is a clean TAXII error (both backends)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any, Iterator
from urllib.parse import urlsplit

import pytest
import requests

from communique.errors import BadRequest
from communique.provenance.signatures import is_signed
from tests.support import (
    TAXII,
    Member,
    Node,
    indicator,
    ipv4,
    malware,
    running_node,
    stix_id,
    ts,
    unsigned,
)

TIMEOUT = 120


@dataclass
class Target:
    """A collection that one member may read and write, on a running node."""

    node: Node
    member: Member
    collection: str

    @property
    def objects_url(self) -> str:
        """The collection's objects endpoint."""
        return self.node.objects_url(self.collection)

    @property
    def manifest_url(self) -> str:
        """The collection's manifest endpoint."""
        return f"{self.node.root}/collections/{self.collection}/manifest/"


def writable(node: Node) -> Target:
    """Return a collection on ``node`` that a fresh analyst may read and write."""
    member = node.member("CERT")
    return Target(node, member, node.collection(read=("CERT",), write=("CERT",)))


@pytest.fixture
def target(node: Node) -> Target:
    """A readable, writable collection on a node (both backends)."""
    return writable(node)


@pytest.fixture
def small_node(database_url: str) -> Iterator[Node]:
    """A node whose API root takes bodies of at most 2,048 bytes (both backends)."""
    with running_node(database_url, max_content_length=2048) as running:
        yield running


def send(method: str, url: str, **options: Any) -> requests.Response:
    """Make one HTTP request; after a 5xx, wait until the server has finished with it.

    Python 3.11 renders tracebacks with ``ast.parse``, whose recursion guard is shared
    between threads: the server logging a 500 while pytest renders the failure can
    corrupt it. A second request is served only once the first is fully handled.
    """
    response = requests.request(method, url, timeout=TIMEOUT, **options)
    if response.status_code >= 500:
        parts = urlsplit(url)
        requests.get(f"{parts.scheme}://{parts.netloc}/taxii2/", timeout=TIMEOUT)
    return response


def post_raw(target: Target, body: bytes | Iterator[bytes], *, content_type: str | None = TAXII,
             headers: dict[str, str] | None = None) -> requests.Response:
    """POST a body as it is to the collection's objects endpoint."""
    sent = dict(target.member.headers)
    if content_type is not None:
        sent["Content-Type"] = content_type
    sent.update(headers or {})
    return send("POST", target.objects_url, data=body, headers=sent)


def post_envelope(target: Target, objects: list[Any]) -> dict:
    """POST an envelope of ``objects``; return the status resource (asserting 202)."""
    response = post_raw(target, json.dumps({"objects": objects}).encode())
    assert response.status_code == 202, response.text
    assert_taxii_media_type(response)
    return response.json()


def get(target: Target, url: str, params: dict[str, str] | list[tuple[str, str]] | None = None,
        headers: dict[str, str] | None = None) -> requests.Response:
    """GET ``url`` as the target's member."""
    return send("GET", url, params=params, headers={**target.member.headers, **(headers or {})})


def stored_objects(target: Target, **params: str) -> list[dict]:
    """Return every object the collection lists (one page is enough here)."""
    response = get(target, target.objects_url, {"match[version]": "all", **params})
    assert response.status_code == 200, response.text
    return response.json().get("objects", [])


def as_posted(served: list[dict]) -> list[dict]:
    """Return served objects as they were posted: assert each is signed, and drop the signature."""
    for obj in served:
        assert is_signed(obj), obj.get("id")
    return [unsigned(obj) for obj in served]


def manifest_ids(target: Target) -> list[str]:
    """Return the ids in the collection's manifest, every version."""
    response = get(target, target.manifest_url, {"match[version]": "all"})
    assert response.status_code == 200, response.text
    return [entry["id"] for entry in response.json().get("objects", [])]


def assert_taxii_media_type(response: requests.Response) -> None:
    """Assert the response is application/taxii+json;version=2.1 (TAXII 2.1 §1.6.8)."""
    content_type = response.headers.get("content-type", "")
    assert content_type.replace(" ", "").lower() == TAXII, content_type


def assert_taxii_error(response: requests.Response, status: int, *mentions: str) -> dict:
    """Assert a TAXII error message (§3.6.1) with ``status``, whose description names ``mentions``."""
    assert response.status_code == status, response.text[:2000]
    assert_taxii_media_type(response)
    assert "Traceback" not in response.text and 'File "' not in response.text
    body = response.json()
    assert isinstance(body, dict)
    assert isinstance(body.get("title"), str) and body["title"]
    assert isinstance(body.get("description"), str) and body["description"]
    assert body.get("http_status") == str(status)
    for mention in mentions:
        assert mention in body["description"], body
    return body


def nested_lists(depth: int) -> bytes:
    """Return JSON for lists nested ``depth`` levels deep."""
    return b"[" * depth + b"]" * depth


def without(obj: dict, name: str) -> dict:
    """Return a copy of ``obj`` without the property ``name``."""
    return {key: value for key, value in obj.items() if key != name}


# -- bodies that are not envelopes --------------------------------------------------------
@pytest.mark.parametrize("body", [
    pytest.param(b"not json", id="text"),
    pytest.param(b"", id="empty"),
    pytest.param(b'{"objects": [{"type": "indicator", "id": "indic', id="truncated"),
    pytest.param(b'{"objects": []', id="unclosed"),
    pytest.param(b'{"objects": [],}', id="trailing-comma"),
    pytest.param(b"{'objects': []}", id="single-quotes"),
    pytest.param(b'{"objects": [NaN]}', id="nan"),
    pytest.param(b'\xef\xbb\xbf{"objects": []}', id="byte-order-mark"),
])
def test_body_not_json(target: Target, body: bytes) -> None:
    """Refuse a body that is not JSON with 400."""
    assert_taxii_error(post_raw(target, body), 400, "JSON")
    assert stored_objects(target) == []


@pytest.mark.parametrize("body", [b"[]", b'[{"objects": []}]', b'"objects"', b"42", b"-1.5",
                                  b"null", b"true"])
def test_json_that_is_not_an_object(target: Target, body: bytes) -> None:
    """Refuse a JSON document that is not an envelope object with 400."""
    assert_taxii_error(post_raw(target, body), 400, "envelope")


@pytest.mark.parametrize("objects", [{}, {"type": "indicator"}, "objects", 5, None, True])
def test_objects_not_a_list(target: Target, objects: object) -> None:
    """Refuse an envelope whose objects is not a list with 400."""
    body = json.dumps({"objects": objects}).encode()
    assert_taxii_error(post_raw(target, body), 400, "'objects'")


def test_empty_envelope_adds_nothing(target: Target) -> None:
    """Answer an envelope with no objects with a complete, empty status."""
    for body in (b'{"objects": []}', b"{}"):
        response = post_raw(target, body)
        assert response.status_code == 202, response.text
        status = response.json()
        assert (status["total_count"], status["success_count"], status["failure_count"]) == (0, 0, 0)


def test_objects_that_are_not_dicts(target: Target) -> None:
    """Refuse each object that is not a JSON object, by itself, with the reason."""
    values = [1, "indicator", None, [], True, 2.5]
    status = post_envelope(target, values)
    assert status["total_count"] == len(values) and status["failure_count"] == len(values)
    assert status["success_count"] == 0
    assert all("JSON object" in failure["message"] for failure in status["failures"])
    assert stored_objects(target) == []


@pytest.mark.parametrize("body", [
    pytest.param(nested_lists(5_000), id="top-level"),
    pytest.param(b'{"objects": [' + nested_lists(5_000) + b"]}", id="inside-objects"),
    pytest.param(b'{"objects": [{"type": "indicator", "x_deep": ' + nested_lists(5_000) + b"}]}",
                 id="inside-an-object"),
    pytest.param(b'{"a":' * 5_000 + b"1" + b"}" * 5_000, id="nested-objects"),
])
def test_deep_nesting_beyond_the_parser_is_a_clean_400(target: Target, body: bytes) -> None:
    """Refuse 5,000 levels of nesting with 400, not a crash."""
    assert_taxii_error(post_raw(target, body), 400)
    assert stored_objects(target) == []


def envelope_with(objects: list[dict], name: str, raw_value: bytes) -> bytes:
    """Return an envelope whose last object also carries ``name`` set to the raw JSON value."""
    body = json.dumps({"objects": objects}).encode()
    assert body.endswith(b"}]}")
    return body[:-3] + b', "' + name.encode() + b'": ' + raw_value + b"}]}"


@pytest.mark.parametrize("depth", [300, 1_000])
def test_deeply_nested_custom_property_is_handled(target: Target, depth: int) -> None:
    """Store or refuse a deeply nested custom property per object, and keep the rest of the envelope."""
    good, deep = indicator(1), indicator(2)
    response = post_raw(target, envelope_with([good, deep], "x_deep", nested_lists(depth)))
    assert response.status_code == 202, response.text[:2000]
    status = response.json()
    assert status["total_count"] == 2
    assert good["id"] in [s["id"] for s in status.get("successes", [])]
    listing = get(target, target.objects_url, {"match[id]": good["id"]})
    assert listing.status_code == 200 and as_posted(listing.json()["objects"]) == [good]
    if deep["id"] in [s["id"] for s in status.get("successes", [])]:
        one = get(target, f"{target.objects_url}{deep['id']}/")
        assert one.status_code == 200 and one.content.count(b"[") >= depth
    else:
        assert deep["id"] in [f["id"] for f in status["failures"]]
        assert_taxii_error(get(target, f"{target.objects_url}{deep['id']}/"), 404)


@pytest.mark.parametrize("name", ["spec_version", "created_by_ref", "x_nested_ref"])
def test_deeply_nested_value_where_a_string_belongs_is_refused(target: Target, name: str) -> None:
    """Refuse an object with 1,000 levels of nesting in a checked property, and store the rest."""
    good, bad = indicator(1), without(indicator(2), name)
    response = post_raw(target, envelope_with([good, bad], name, nested_lists(1_000)))
    assert response.status_code == 202, response.text[:2000]
    status = response.json()
    assert status["success_count"] == 1 and status["failure_count"] == 1
    assert status["failures"][0]["id"] == bad["id"]
    assert [obj["id"] for obj in stored_objects(target)] == [good["id"]]


def test_huge_strings_within_the_limit(target: Target) -> None:
    """Store a multi-megabyte string within max_content_length and read it back intact."""
    description = "A" * 2_000_000 + "é" + "\u2603" * 100_000
    obj = indicator(1, description=description, x_blob="b" * 1_000_000)
    status = post_envelope(target, [obj])
    assert status["success_count"] == 1
    assert as_posted(stored_objects(target)) == [obj]


# -- size limits ---------------------------------------------------------------------------
def padded_envelope(size: int) -> bytes:
    """Return a valid empty envelope padded with whitespace to exactly ``size`` bytes."""
    body = b'{"objects": []}'
    return body + b" " * (size - len(body))


def test_api_root_advertises_max_content_length(small_node: Node) -> None:
    """Advertise the node's max_content_length on the API root."""
    target = writable(small_node)
    response = send("GET", f"{small_node.root}/", headers=target.member.headers)
    assert response.status_code == 200 and response.json()["max_content_length"] == 2048


def test_body_at_the_limit_is_accepted(small_node: Node) -> None:
    """Take a body of exactly max_content_length bytes."""
    response = post_raw(writable(small_node), padded_envelope(2048))
    assert response.status_code == 202, response.text


def test_body_over_the_limit_with_content_length(small_node: Node) -> None:
    """Refuse a declared body over max_content_length with 413."""
    target = writable(small_node)
    assert_taxii_error(post_raw(target, padded_envelope(2049)), 413)
    body = json.dumps({"objects": [indicator(i) for i in range(20)]}).encode()
    assert_taxii_error(post_raw(target, body), 413)
    assert stored_objects(target) == []


def chunks(body: bytes, size: int = 512) -> Iterator[bytes]:
    """Yield ``body`` in pieces, so requests sends it chunked, without Content-Length."""
    for start in range(0, len(body), size):
        yield body[start:start + size]


def test_chunked_body_over_the_limit(small_node: Node) -> None:
    """Refuse a chunked body that grows past max_content_length with 413."""
    target = writable(small_node)
    body = json.dumps({"objects": [indicator(i) for i in range(20)]}).encode()
    assert len(body) > 2048
    assert_taxii_error(post_raw(target, chunks(body)), 413)
    assert stored_objects(target) == []


def test_chunked_body_within_the_limit(small_node: Node) -> None:
    """Take a chunked body within max_content_length."""
    target = writable(small_node)
    obj = indicator(1)
    response = post_raw(target, chunks(json.dumps({"objects": [obj]}).encode(), 100))
    assert response.status_code == 202, response.text
    assert as_posted(stored_objects(target)) == [obj]


# -- media types ---------------------------------------------------------------------------
@pytest.mark.parametrize("content_type", [
    "application/json", "application/stix+json;version=2.1", "application/taxii+json;version=2.0",
    "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
])
def test_wrong_content_type(target: Target, content_type: str) -> None:
    """Refuse a body that is not TAXII 2.1 JSON with 415."""
    body = json.dumps({"objects": [indicator()]}).encode()
    assert_taxii_error(post_raw(target, body, content_type=content_type), 415, TAXII)
    assert stored_objects(target) == []


def test_missing_content_type(target: Target) -> None:
    """Refuse a body without Content-Type with 415."""
    response = post_raw(target, json.dumps({"objects": [indicator()]}).encode(), content_type=None)
    assert_taxii_error(response, 415)
    assert stored_objects(target) == []


@pytest.mark.parametrize("accept", ["text/html", "application/json",
                                    "application/taxii+json;version=2.0",
                                    "application/stix+json;version=2.1",
                                    "application/taxii+json;version=2.1;q=0"])
def test_accept_not_admitting_taxii(target: Target, accept: str) -> None:
    """Answer 406 to reads and writes whose Accept header does not admit TAXII 2.1."""
    headers = {"Accept": accept}
    assert_taxii_error(get(target, target.objects_url, headers=headers), 406)
    assert_taxii_error(get(target, f"{target.node.url}/taxii2/", headers=headers), 406)
    body = json.dumps({"objects": [indicator()]}).encode()
    assert_taxii_error(post_raw(target, body, headers=headers), 406)
    assert stored_objects(target) == []


# -- text encodings ------------------------------------------------------------------------
@pytest.mark.parametrize("body", [
    pytest.param(b'{"objects": [{"type": "indicator", "name": "\xff\xfe"}]}', id="invalid-bytes"),
    pytest.param(b'{"objects": [{"type": "indicator", "name": "\xc3"}]}', id="truncated-sequence"),
    pytest.param(b'{"objects": [{"type": "indicator", "name": "\xed\xa0\x80"}]}', id="encoded-surrogate"),
    pytest.param(b'{"objects": [{"type": "indicator", "name": "\xc0\xaf"}]}', id="overlong"),
    pytest.param('{"objects": []}'.encode("utf-16"), id="utf-16"),
])
def test_invalid_utf8(target: Target, body: bytes) -> None:
    """Refuse a body that is not UTF-8 with 400."""
    assert_taxii_error(post_raw(target, body), 400)
    assert stored_objects(target) == []


@pytest.mark.parametrize("escape", ["\\ud800", "\\udfff", "\\ud800\\u0041", "\\udc00\\ud800"])
def test_lone_surrogate_escapes(target: Target, escape: str) -> None:
    """Refuse a lone surrogate escape cleanly: the request with 400, or the object by itself."""
    obj = json.dumps(indicator(1, name="PLACEHOLDER"))
    body = ('{"objects": [' + obj.replace("PLACEHOLDER", escape) + "]}").encode()
    response = post_raw(target, body)
    if response.status_code == 400:
        assert_taxii_error(response, 400)
    else:
        assert response.status_code == 202, response.text
        assert response.json()["failure_count"] == 1
    assert stored_objects(target) == []


def test_nul_characters_round_trip(target: Target) -> None:
    """Store NUL characters in strings and read them back intact (both backends)."""
    obj = indicator(1, name="before\x00after", description="\x00" * 10,
                    labels=["a\x00b"], x_nul={"k": "\x00", "list": ["\x00x"]})
    sco = {**ipv4("198.51.100.77"), "x_note": "nul\x00here"}
    status = post_envelope(target, [obj, sco])
    assert status["success_count"] == 2, status
    stored = {item["id"]: item for item in as_posted(stored_objects(target))}
    assert stored[obj["id"]] == obj
    assert stored[sco["id"]] == sco
    one = get(target, f"{target.objects_url}{obj['id']}/")
    assert one.status_code == 200 and as_posted(one.json()["objects"]) == [obj]


def test_non_ascii_text_round_trips(target: Target) -> None:
    """Store text in every script, and emoji, and read it back intact."""
    obj = indicator(1, name="Эстония 🇪🇪 エストニア إستونيا \u202e", description="\U0010ffff\ufeff")
    post_envelope(target, [obj])
    assert as_posted(stored_objects(target)) == [obj]


# -- envelopes mixing good and bad objects --------------------------------------------------
def test_mixed_envelope_stores_exactly_the_good_objects(target: Target) -> None:
    """Store the good objects, list each bad one with its reason, and store nothing half-way."""
    good = [indicator(1), malware(1), ipv4("198.51.100.1"), indicator(2, x_custom=True)]
    bad = {
        "bad-pattern": indicator(3, pattern="[ipv4-addr:value = '1.2.3.4'"),
        "bad-type": {**indicator(4), "type": "Indicator"},
        "id-mismatch": {**indicator(5), "id": stix_id("malware")},
        "bad-timestamp": indicator(6, created="2024-02-30T00:00:00Z"),
        "spec-2.0": {**malware(2), "spec_version": "2.0"},
        "bad-confidence": indicator(7, confidence=101),
    }
    objects = [good[0], bad["bad-pattern"], good[1], bad["bad-type"], bad["id-mismatch"], good[2],
               bad["bad-timestamp"], bad["spec-2.0"], good[3], bad["bad-confidence"], 42]
    status = post_envelope(target, objects)
    assert status["status"] == "complete" and status["pending_count"] == 0
    assert (status["total_count"], status["success_count"], status["failure_count"]) == (11, 4, 7)
    assert sorted(s["id"] for s in status["successes"]) == sorted(obj["id"] for obj in good)
    reasons = {f["id"]: f["message"] for f in status["failures"]}
    assert "pattern" in reasons[bad["bad-pattern"]["id"]]
    assert "'type'" in reasons[bad["bad-type"]["id"]]
    assert "does not match" in reasons[bad["id-mismatch"]["id"]]
    assert "not a real date" in reasons[bad["bad-timestamp"]["id"]]
    assert "2.0" in reasons[bad["spec-2.0"]["id"]]
    assert "confidence" in reasons[bad["bad-confidence"]["id"]]
    assert all(failure["message"] for failure in status["failures"])
    stored = stored_objects(target)
    assert sorted(obj["id"] for obj in stored) == sorted(obj["id"] for obj in good)
    assert {obj["id"]: obj for obj in as_posted(stored)} == {obj["id"]: obj for obj in good}
    assert sorted(manifest_ids(target)) == sorted(obj["id"] for obj in good)


def test_refused_object_never_appears_in_the_manifest(target: Target) -> None:
    """Keep refused objects, and refused versions, out of the manifest and the object endpoint."""
    original = indicator(1)
    post_envelope(target, [original])
    conflicting = {**original, "name": "Same id and modified, different content"}
    invalid = indicator(2, valid_until=ts(0, year=2020))
    status = post_envelope(target, [conflicting, invalid])
    assert status["failure_count"] == 2 and status["success_count"] == 0
    assert manifest_ids(target) == [original["id"]]
    one = get(target, f"{target.objects_url}{original['id']}/", {"match[version]": "all"})
    assert as_posted(one.json()["objects"]) == [original]
    missing = get(target, f"{target.objects_url}{invalid['id']}/")
    assert_taxii_error(missing, 404)


def test_failure_of_an_object_without_id_is_still_reported(target: Target) -> None:
    """Report an object without an id or version as a failure, not a crash."""
    status = post_envelope(target, [{"type": "indicator"}, {"id": 5, "modified": ["x"]}])
    assert status["failure_count"] == 2
    for failure in status["failures"]:
        assert isinstance(failure["id"], str) and isinstance(failure["version"], str)


# -- malformed filters and cursors ---------------------------------------------------------
@pytest.mark.parametrize("name, value", [
    ("added_after", "garbage"),
    ("added_after", "2024-02-30T00:00:00Z"),
    ("limit", "0"),
    ("limit", "-5"),
    ("limit", "abc"),
    pytest.param("limit", "²", id="limit-superscript-two"),
    pytest.param("limit", "9" * 5_000, id="limit-5000-digits"),
    ("match[version]", "yesterday"),
    ("match[id]", "not-an-id"),
    ("match[type]", "Not_A_Type"),
    ("match[spec_version]", "x"),
])
@pytest.mark.parametrize("endpoint", ["objects", "manifest"])
def test_malformed_filters(target: Target, endpoint: str, name: str, value: str) -> None:
    """Refuse a malformed filter with a 400 TAXII error that names it."""
    url = target.objects_url if endpoint == "objects" else target.manifest_url
    post_envelope(target, [indicator(1)])
    body = assert_taxii_error(get(target, url, {name: value}), 400, name)
    assert body["title"] == BadRequest.title


def test_malformed_filters_on_object_and_versions_endpoints(target: Target) -> None:
    """Refuse malformed filters on the object and versions endpoints too."""
    obj = indicator(1)
    post_envelope(target, [obj])
    object_url = f"{target.objects_url}{obj['id']}/"
    assert_taxii_error(get(target, object_url, {"match[version]": "yesterday"}), 400, "match[version]")
    assert_taxii_error(get(target, f"{object_url}versions/", {"limit": "0"}), 400, "limit")
    assert_taxii_error(get(target, object_url, {"added_after": "now"}), 400, "added_after")


def test_repeated_single_parameter(target: Target) -> None:
    """Refuse added_after given twice."""
    params = [("added_after", ts(0)), ("added_after", ts(1))]
    assert_taxii_error(get(target, target.objects_url, params), 400, "added_after")


def first_page_cursor(target: Target, params: dict[str, str]) -> str:
    """Post three objects and return the next cursor of a one-object page."""
    post_envelope(target, [indicator(i) for i in range(3)])
    page = get(target, target.objects_url, {"limit": "1", **params}).json()
    assert page["more"] is True
    return page["next"]


@pytest.mark.parametrize("value", ["garbage", "!!!!", "A" * 500, "é", "%00", "AAAA" * 10])
def test_invalid_next_cursor(target: Target, value: str) -> None:
    """Refuse a next value the server never issued with 400."""
    assert_taxii_error(get(target, target.objects_url, {"next": value}), 400, "next")
    assert_taxii_error(get(target, target.manifest_url, {"next": value}), 400, "next")


def test_tampered_next_cursor(target: Target) -> None:
    """Refuse a next cursor altered by one character with 400."""
    token = first_page_cursor(target, {})
    middle = len(token) // 2
    tampered = token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1:]
    assert_taxii_error(get(target, target.objects_url, {"next": tampered}), 400, "next")


def test_next_cursor_from_another_query(target: Target) -> None:
    """Refuse a next cursor used with other filters or another collection."""
    token = first_page_cursor(target, {"match[type]": "indicator"})
    assert get(target, target.objects_url, {"next": token, "match[type]": "indicator"}).status_code == 200
    assert_taxii_error(get(target, target.objects_url, {"next": token}), 400, "next")
    other = target.node.collection("Other", read=("CERT",), write=("CERT",))
    other_url = target.node.objects_url(other)
    assert_taxii_error(get(target, other_url, {"next": token, "match[type]": "indicator"}), 400, "next")


# -- credentials ---------------------------------------------------------------------------
def basic(raw: bytes) -> str:
    """Return a Basic Authorization header for raw user:password bytes."""
    return "Basic " + base64.b64encode(raw).decode()


@pytest.mark.parametrize("authorization", [
    pytest.param(None, id="absent"),
    pytest.param("", id="empty"),
    pytest.param("Basic", id="basic-alone"),
    pytest.param("Basic !!!not-base64!!!", id="basic-bad-base64"),
    pytest.param("Basic dXNlcjp0b2tlbg", id="basic-unpadded"),
    pytest.param(basic(b"no-colon-at-all"), id="basic-without-colon"),
    pytest.param(basic(b"user@example.com:"), id="basic-empty-password"),
    pytest.param(basic(b"\xff\xfe:\xff"), id="basic-not-utf8"),
    pytest.param(basic(b":wrong-token"), id="basic-unknown-token"),
    pytest.param("Basic \u00e9\u00e9\u00e9\u00e9", id="basic-non-ascii"),
    pytest.param("Bearer", id="bearer-alone"),
    pytest.param("Bearer    ", id="bearer-blank"),
    pytest.param("Bearer " + "x" * 10_240, id="bearer-10kb"),
    pytest.param("Bearer \u00e9t\u00e9", id="bearer-non-ascii"),
    pytest.param("Bearer not-a-token", id="bearer-unknown"),
    pytest.param("Digest username=\"a\", response=\"b\"", id="digest"),
    pytest.param("Token abc", id="unknown-scheme"),
    pytest.param("abc", id="no-scheme"),
])
def test_garbage_authorization(target: Target, authorization: str | None) -> None:
    """Answer 401 with WWW-Authenticate to any credentials that are not a valid token."""
    headers = {"Accept": TAXII}
    if authorization is not None:
        headers["Authorization"] = authorization
    for url in (f"{target.node.url}/taxii2/", target.objects_url):
        response = send("GET", url, headers=headers)
        assert_taxii_error(response, 401)
        assert response.headers.get("WWW-Authenticate")
    response = send("POST", target.objects_url, data=json.dumps({"objects": [indicator()]}),
                    headers={**headers, "Content-Type": TAXII})
    assert_taxii_error(response, 401)
    assert stored_objects(target) == []


def test_basic_with_another_users_name(target: Target) -> None:
    """Answer 401 when the Basic user name is not the token's owner."""
    header = basic(f"someone-else@example.com:{target.member.token}".encode())
    response = send("GET", target.objects_url, headers={"Accept": TAXII, "Authorization": header})
    assert_taxii_error(response, 401)


# -- routing -------------------------------------------------------------------------------
@pytest.mark.parametrize("path", [
    "/nope/", "/nope/collections/", "/taxii2/extra/", "/default/collections/nope/",
    "/default/collections/nope/objects/", "/default/status/not-a-status/",
    "/a/b/c/d/e/f/g/", "/default/collections/COLLECTION/unknown/",
    "/default/collections/COLLECTION/objects/OBJECT/versions/extra/",
    "/default/collections/COLLECTION/objects/indicator--00000000-0000-4000-8000-000000000000/",
    "/default/collections/" + "x" * 5_000 + "/",
])
def test_unknown_paths(target: Target, path: str) -> None:
    """Answer 404 with a TAXII error for paths that name nothing."""
    obj = indicator(1)
    post_envelope(target, [obj])
    path = path.replace("COLLECTION", target.collection).replace("OBJECT", obj["id"])
    assert_taxii_error(get(target, target.node.url + path), 404)


@pytest.mark.parametrize("path", [
    "/a%00b/", "/a%00b/collections/", "/default/collections/a%00b/",
    "/default/collections/COLLECTION/objects/indicator--a%00b/",
    "/default/collections/COLLECTION/objects/indicator--a%00b/versions/",
    "/default/status/a%00b/",
])
def test_nul_in_path_segments(target: Target, path: str) -> None:
    """Answer 404 for a NUL character in an API root, collection, object or status id."""
    post_envelope(target, [indicator(1)])
    url = target.node.url + path.replace("COLLECTION", target.collection)
    assert_taxii_error(get(target, url), 404)


def test_nul_in_path_of_a_write(target: Target) -> None:
    """Answer 404 to an Add Objects or Delete aimed at a collection or object id holding NUL."""
    body = json.dumps({"objects": [indicator(1)]}).encode()
    response = send("POST", f"{target.node.root}/collections/a%00b/objects/", data=body,
                    headers={**target.member.headers, "Content-Type": TAXII})
    assert_taxii_error(response, 404)
    response = send("DELETE", f"{target.objects_url}indicator--a%00b/", headers=target.member.headers)
    assert_taxii_error(response, 404)


@pytest.mark.parametrize("path", [
    "/taxii2", "/default", "/default/collections", "/default/collections/COLLECTION",
    "/default/collections/COLLECTION/objects", "/default/collections/COLLECTION/manifest",
    "/default/collections/COLLECTION/objects/OBJECT",
    "/default/collections/COLLECTION/objects/OBJECT/versions",
])
def test_paths_without_trailing_slash(target: Target, path: str) -> None:
    """Answer 404 that says TAXII URLs end with '/', never a redirect."""
    obj = indicator(1)
    post_envelope(target, [obj])
    path = path.replace("COLLECTION", target.collection).replace("OBJECT", obj["id"])
    response = send("GET", target.node.url + path, headers=target.member.headers,
                    allow_redirects=False)
    assert_taxii_error(response, 404, "'/'")


@pytest.mark.parametrize("method, path", [
    ("PUT", "/default/collections/COLLECTION/objects/"),
    ("PATCH", "/default/collections/COLLECTION/objects/"),
    ("DELETE", "/default/collections/COLLECTION/objects/"),
    ("POST", "/default/collections/COLLECTION/manifest/"),
    ("PUT", "/default/collections/COLLECTION/objects/OBJECT/"),
    ("POST", "/default/collections/COLLECTION/objects/OBJECT/versions/"),
    ("DELETE", "/default/collections/"),
    ("POST", "/taxii2/"),
    ("DELETE", "/default/"),
])
def test_wrong_method(target: Target, method: str, path: str) -> None:
    """Answer 405 with a TAXII error to a method the resource does not take."""
    obj = indicator(1)
    post_envelope(target, [obj])
    path = path.replace("COLLECTION", target.collection).replace("OBJECT", obj["id"])
    headers = {**target.member.headers, "Content-Type": TAXII}
    response = send(method, target.node.url + path, headers=headers,
                    data=json.dumps({"objects": [indicator(2)]}))
    assert_taxii_error(response, 405, method)
    assert response.headers.get("Allow")
    assert [item["id"] for item in stored_objects(target)] == [obj["id"]]
