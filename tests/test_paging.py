"""Paging through 10,000+ objects over real HTTP, on SQLite and PostgreSQL (§3.4, §3.5).

Each test loads a fresh node with 10,000 malware objects that all share one
``created``/``modified`` timestamp, posted in envelopes of 1,000, so ``date_added``
is the only thing that orders them. Pages are walked with ``next`` and with
``added_after`` = the previous ``X-TAXII-Date-Added-Last``.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from communique import timestamps
from tests.support import Member, Node, malware, ts

pytestmark = pytest.mark.slow

COUNT = 10_000
ENVELOPE = 1_000
LIMITS = (1000, 777)
SAME = ts(0)
FIRST, LAST = "X-TAXII-Date-Added-First", "X-TAXII-Date-Added-Last"


@dataclass(frozen=True)
class Loaded:
    """A node holding COUNT objects in one collection, and their ids in the order posted."""

    node: Node
    member: Member
    collection: str
    ids: list[str]

    def url(self, endpoint: str) -> str:
        """Return the URL of one of the collection's endpoints."""
        return f"{self.node.root}/collections/{self.collection}/{endpoint}/"


# -- helpers -----------------------------------------------------------------------------
def fresh_objects(count: int) -> list[dict]:
    """Return ``count`` new malware objects, all created and modified at the same instant."""
    return [malware(n, created=SAME, modified=SAME) for n in range(count)]


def post_all(node: Node, member: Member, collection: str, objects: list[dict],
             size: int = ENVELOPE) -> list[str]:
    """Post ``objects`` in envelopes of ``size``; return their ids in order."""
    for start in range(0, len(objects), size):
        status = node.post(member, collection, objects[start:start + size])
        assert status["success_count"] == len(objects[start:start + size]), status.get("failures")
    return [obj["id"] for obj in objects]


def load(node: Node, count: int = COUNT) -> Loaded:
    """Make a collection on ``node`` and fill it with ``count`` objects."""
    member = node.member("CERT")
    collection = node.collection("Bulk", read=("CERT",), write=("CERT",))
    return Loaded(node, member, collection, post_all(node, member, collection, fresh_objects(count)))


def page(member: Member, address: str, params: dict[str, Any]) -> requests.Response:
    """GET one page and assert 200."""
    response = requests.get(address, headers=member.headers, params=params, timeout=120)
    assert response.status_code == 200, response.text
    return response


def by_next(member: Member, address: str, params: dict[str, Any]) -> list[requests.Response]:
    """Walk every page by following ``next``."""
    pages = [page(member, address, params)]
    while pages[-1].json().get("more"):
        pages.append(page(member, address, {**params, "next": pages[-1].json()["next"]}))
    return pages


def by_added_after(member: Member, address: str, params: dict[str, Any],
                   start: str | None = None) -> list[requests.Response]:
    """Walk every page with added_after = the previous page's X-TAXII-Date-Added-Last."""
    first = params if start is None else {**params, "added_after": start}
    pages = [page(member, address, first)]
    while pages[-1].json().get("more"):
        pages.append(page(member, address, {**params, "added_after": pages[-1].headers[LAST]}))
    return pages


def ids_in(pages: list[requests.Response]) -> list[str]:
    """Return the ids on every page, in order."""
    return [obj["id"] for p in pages for obj in p.json().get("objects", [])]


def assert_walk(pages: list[requests.Response], expected: list[str], limit: int) -> None:
    """Assert full pages of at most ``limit``, each id once and in order, headers advancing."""
    sizes = [len(p.json().get("objects", [])) for p in pages]
    assert all(size <= limit for size in sizes)
    assert len(pages) == math.ceil(len(expected) / limit)
    assert ids_in(pages) == expected
    edges = [(timestamps.parse(p.headers[FIRST]), timestamps.parse(p.headers[LAST])) for p in pages]
    assert all(first <= last for first, last in edges)
    assert all(earlier[1] < later[0] for earlier, later in zip(edges, edges[1:]))


def assert_resumes_at_the_end(member: Member, address: str, last_page: requests.Response) -> None:
    """Assert that asking for more after the last page gives an empty page at the same place."""
    after = page(member, address, {"added_after": last_page.headers[LAST]})
    assert "objects" not in after.json()
    assert after.headers[FIRST] == after.headers[LAST] == last_page.headers[LAST]


# -- tests -------------------------------------------------------------------------------
def test_next_pages_every_object_once(node: Node) -> None:
    """Following next through 10,000 objects returns each exactly once, in order."""
    loaded = load(node)
    for limit in LIMITS:
        assert_walk(by_next(loaded.member, loaded.url("objects"), {"limit": limit}),
                    loaded.ids, limit)


def test_added_after_pages_every_object_once(node: Node) -> None:
    """Paging by added_after = X-TAXII-Date-Added-Last returns each object exactly once."""
    loaded = load(node)
    address = loaded.url("objects")
    for limit in LIMITS:
        pages = by_added_after(loaded.member, address, {"limit": limit})
        assert_walk(pages, loaded.ids, limit)
        assert_resumes_at_the_end(loaded.member, address, pages[-1])


def test_next_pages_every_manifest_record_once(node: Node) -> None:
    """Following next through the manifest of 10,000 objects returns each record once."""
    loaded = load(node)
    for limit in LIMITS:
        pages = by_next(loaded.member, loaded.url("manifest"), {"limit": limit})
        assert_walk(pages, loaded.ids, limit)
        added = [timestamps.parse(r["date_added"]) for p in pages for r in p.json()["objects"]]
        assert all(a < b for a, b in zip(added, added[1:]))


def test_added_after_pages_every_manifest_record_once(node: Node) -> None:
    """Paging the manifest by added_after returns each record once, headers matching records."""
    loaded = load(node)
    address = loaded.url("manifest")
    for limit in LIMITS:
        pages = by_added_after(loaded.member, address, {"limit": limit})
        assert_walk(pages, loaded.ids, limit)
        for p in pages:
            records = p.json()["objects"]
            assert (p.headers[FIRST], p.headers[LAST]) == (records[0]["date_added"],
                                                           records[-1]["date_added"])
        assert_resumes_at_the_end(loaded.member, address, pages[-1])


def test_identical_timestamps_page_with_version_filters(node: Node) -> None:
    """10,000 objects with one identical modified page correctly under exact and keyword versions."""
    loaded = load(node)
    address = loaded.url("objects")
    for version in (SAME, "2024-01-01T00:00:00Z", "first", "all"):
        params = {"limit": 777, "match[version]": version, "match[type]": "malware"}
        pages = by_next(loaded.member, address, params)
        assert_walk(pages, loaded.ids, 777)
        assert {obj["modified"] for p in pages for obj in p.json()["objects"]} == {SAME}
    pages = by_added_after(loaded.member, loaded.url("manifest"),
                           {"limit": 777, "match[version]": SAME})
    assert_walk(pages, loaded.ids, 777)


def test_objects_added_while_paging_come_later(node: Node) -> None:
    """Objects posted by another writer during a walk appear after the rest, nothing repeats."""
    loaded = load(node)
    address = loaded.url("objects")
    extra = fresh_objects(1_000)
    with ThreadPoolExecutor(max_workers=1) as pool:
        writing = pool.submit(post_all, loaded.node, loaded.member, loaded.collection, extra, 100)
        pages = by_next(loaded.member, address, {"limit": 1000})
        added = writing.result()
    rest = by_added_after(loaded.member, address, {"limit": 1000}, start=pages[-1].headers[LAST])
    seen = ids_in(pages) + ids_in(rest)
    assert len(seen) == len(set(seen))
    assert seen == loaded.ids + added


def test_records_added_between_pages_come_later(node: Node) -> None:
    """Records added between manifest pages appear after the rest, nothing repeats."""
    loaded = load(node)
    address = loaded.url("manifest")
    added: list[str] = []
    pages = [page(loaded.member, address, {"limit": 777})]
    while pages[-1].json().get("more"):
        if len(pages) <= 5:
            added += post_all(loaded.node, loaded.member, loaded.collection, fresh_objects(150))
        pages.append(page(loaded.member, address,
                          {"limit": 777, "added_after": pages[-1].headers[LAST]}))
    seen = ids_in(pages)
    assert len(seen) == len(set(seen))
    assert seen == loaded.ids + added
