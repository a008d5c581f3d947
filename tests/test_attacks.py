"""Attacks on the TAXII API: each gets a clear refusal, and the audit log records the attempt.

(Attacks on the web sign-in — CSRF, code replay, brute force, tampered and idle
sessions — are in test_signin.py and test_browser.py.)
"""

from __future__ import annotations

import uuid

import pytest
import requests

from communique import timestamps
from communique.stix.markings import RECIPIENTS_EXTENSION, TLP2_IDS, Tlp
from tests.support import TAXII, Node, indicator
from tests.test_taxii_http import DAY_US, token_row

HOSTILE = ["' OR '1'='1", "1; DROP TABLE objects; --", '" OR ""="', "%' --", "\\'; --",
           "indicator--' UNION SELECT body FROM objects --", "\x00", "🙂' OR 1=1 --"]
FILTERS = ["added_after", "limit", "next", "match[id]", "match[type]", "match[version]",
           "match[spec_version]"]


def refusals(node: Node, *, status: int | None = None, action: str = "request.refused") -> list:
    with node.store.read() as tx:
        found = tx.audit_entries(action=action, limit=100_000)
    return [e for e in found if status is None or e.details.get("status") == status]


@pytest.fixture
def setting(node: Node) -> tuple[Node, object, object, str]:
    cert = node.member("CERT")
    other = node.member("Partner")
    collection = node.collection("Shared", read=("CERT", "Partner"), write=("CERT",))
    node.post(cert, collection, [indicator(1)])
    return node, cert, other, collection


def test_tampered_and_expired_tokens(setting) -> None:  # type: ignore[no-untyped-def]
    """A token changed by one character, and an expired one: 401, each recorded."""
    node, cert, _, collection = setting
    tampered = cert.token[:-1] + ("A" if cert.token[-1] != "A" else "B")
    expired = token_row(node, cert, expires=timestamps.now_us() - DAY_US)
    for token in (tampered, expired):
        answer = requests.get(node.objects_url(collection),
                              headers={"Accept": TAXII, "Authorization": f"Bearer {token}"})
        assert answer.status_code == 401 and answer.headers["WWW-Authenticate"]
    recorded = refusals(node, action="auth.failure")
    assert len(recorded) == 2
    assert all(cert.token[:12] not in str(e.as_json()) for e in recorded)


def test_forged_cursor(setting) -> None:  # type: ignore[no-untyped-def]
    """A `next` cursor altered or made up: 400 with a TAXII error, recorded."""
    node, cert, _, collection = setting
    for _ in range(3):
        node.post(cert, collection, [indicator(n) for n in range(5)])
    first = requests.get(node.objects_url(collection), params={"limit": 2}, headers=cert.headers)
    cursor = first.json()["next"]
    forged = cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB")
    for value in (forged, "eyJwb3NpdGlvbiI6IDB9", "x" * 5000):
        answer = requests.get(node.objects_url(collection), params={"next": value},
                              headers=cert.headers)
        assert answer.status_code == 400 and answer.json()["http_status"] == "400"
    assert len(refusals(node, status=400)) == 3


def test_sql_metacharacters_in_every_filter(setting) -> None:  # type: ignore[no-untyped-def]
    """Hostile values in each filter are refused or match nothing; the store is intact."""
    node, cert, _, collection = setting
    url = node.objects_url(collection)
    for name in FILTERS:
        for value in HOSTILE:
            answer = requests.get(url, params={name: value}, headers=cert.headers)
            assert answer.status_code in (200, 400), (name, value, answer.status_code)
            if answer.status_code == 200:  # a valid type or id that matches nothing
                assert answer.json().get("objects", []) == []
    assert len(requests.get(url, headers=cert.headers).json()["objects"]) == 1
    assert len(refusals(node, status=400)) >= len(FILTERS)


def test_red_object_by_id_is_absent_for_a_non_recipient(setting) -> None:  # type: ignore[no-untyped-def]
    """A RED object not naming the caller: 404, word for word as for an id never stored."""
    node, cert, other, collection = setting
    red = indicator(7, object_marking_refs=[TLP2_IDS[Tlp.RED]],
                    extensions={RECIPIENTS_EXTENSION: {"extension_type": "property-extension",
                                                       "recipient_organizations": ["CERT"]}})
    node.post(cert, collection, [red])
    url = node.objects_url(collection)
    hidden = requests.get(f"{url}{red['id']}/", headers=other.headers)
    never = requests.get(f"{url}indicator--{uuid.uuid4()}/", headers=other.headers)
    assert hidden.status_code == never.status_code == 404
    assert hidden.json() == never.json()
    assert requests.get(f"{url}{red['id']}/", headers=cert.headers).status_code == 200
    assert [e.actor for e in refusals(node, status=404)] == [other.email, other.email]


def test_enumerating_collection_ids(setting) -> None:  # type: ignore[no-untyped-def]
    """Guessed collection ids, and one that exists but is not theirs: the same 404, recorded."""
    node, _, other, _ = setting
    theirs = node.collection("CERT only", read=("CERT",))
    answers = [requests.get(f"{node.root}/collections/{guess}/", headers=other.headers)
               for guess in (str(uuid.uuid4()), theirs, "../../etc/passwd", "%00", "a" * 400)]
    assert {a.status_code for a in answers} == {404}
    bodies = {a.json()["description"] for a in answers[:2]}
    assert len(bodies) == 1  # existing-but-hidden reads exactly like absent
    assert len(refusals(node, status=404)) == len(answers)
    anonymous = requests.get(f"{node.root}/collections/{theirs}/", headers={"Accept": TAXII})
    assert anonymous.status_code == 401  # and anonymous callers cannot tell either
