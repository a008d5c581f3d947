"""The correlation page over real HTTP: sign-in required, hostile values escaped, long ones refused."""

from __future__ import annotations

import html

import requests

from communique import timestamps
from communique.stix.markings import TLP2_IDS, Tlp
from tests.support import Node, indicator
from tests.test_signin import enrol, user

HOSTILE = "<script>alert(1)</script>"


def reported(pattern: str) -> dict:
    """An indicator added an hour ago, TLP:GREEN."""
    when = timestamps.format_ms(timestamps.now_us() - 3_600_000_000)
    return indicator(pattern=pattern, created=when, modified=when,
                     object_marking_refs=[TLP2_IDS[Tlp.GREEN]])


def two_reporters(node: Node, pattern: str, reader: str) -> None:
    """Two organisations each add an indicator for the same value, both readable by ``reader``."""
    for org in ("CERT-A", "CERT-B"):
        member = node.member(org)
        collection = node.collection(f"{org} feed", read=(org, reader), write=(org,))
        node.post(member, collection, [reported(pattern)])


def test_the_page_needs_a_signed_in_user(node: Node) -> None:
    answer = requests.get(f"{node.url}/web/correlate", params={"value": "45.155.205.233"},
                          allow_redirects=False, timeout=30)
    assert answer.status_code == 303 and answer.headers["location"] == "/web/signin"


def test_hostile_values_are_escaped_and_long_ones_refused(node: Node) -> None:
    two_reporters(node, f"[mutex:name = '{HOSTILE}']", "Analysts")
    browser, _, _ = enrol(node, user(node, "Analysts"))
    address = f"{node.url}/web/correlate"
    home = browser.get(f"{node.url}/web/")
    assert 'href="/web/correlate"' in home.text

    found = browser.get(address, params={"value": HOSTILE}, timeout=60)
    assert found.status_code == 200, found.text
    assert HOSTILE not in found.text and "<script" not in found.text
    assert html.escape(HOSTILE, quote=False) in found.text
    assert "2 reporters, 2 indicators" in found.text
    assert "org:CERT-A" in found.text and "org:CERT-B" in found.text
    assert 'id="shared"' in found.text and "value=%3Cscript%3Ealert%281%29" in found.text

    breaking_out = '"><script>alert(2)</script>'
    nothing = browser.get(address, params={"value": breaking_out}, timeout=60)
    assert nothing.status_code == 200 and "<script" not in nothing.text
    assert 'value="&#34;&gt;&lt;script&gt;' in nothing.text and 'id="no-reports"' in nothing.text

    too_long = browser.get(address, params={"value": "a" * 4097}, timeout=60)
    assert too_long.status_code == 400 and "look up at most 4,096" in too_long.text
    assert "a" * 4097 not in too_long.text and 'id="correlate"' in too_long.text
    assert browser.get(address, params={"value": "a" * 4096}, timeout=60).status_code == 200
