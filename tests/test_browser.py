"""The web pages in a real headless browser (Debian's chromium, driven by playwright):
sign-in, MFA enrolment, a wrong code, lockout, creating a token, and correlating a value."""

from __future__ import annotations

import shutil
import time
from typing import Iterator

import pyotp
import pytest
import requests

from communique import accounts, timestamps
from communique.identity import signin
from communique.stix.markings import TLP2_IDS, Tlp
from tests.support import TAXII, Node, indicator

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed "
                                "(`make test` installs it where it may use apt-get)")
PASSWORD = "granite-lantern-ferry-77"
# No background traffic: this machine's network is closed, and a test must not depend on it.
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def page(sqlite_node: Node) -> Iterator:  # type: ignore[type-arg]
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(base_url=sqlite_node.url)
        yield context.new_page()
        context.close()
        browser.close()


def account(node: Node) -> str:
    email = node.member("National CERT", "analyst").email
    accounts.set_password(node.store, email, PASSWORD)
    node.collection("Shared indicators", read=("National CERT",), write=("National CERT",))
    return email


def sign_in(page, email: str, password: str = PASSWORD) -> None:  # type: ignore[no-untyped-def]
    page.goto("/web/")
    assert page.url.endswith("/web/signin")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def enrol(page) -> str:  # type: ignore[no-untyped-def]
    """Enrol from the enrolment page; return the TOTP secret."""
    assert page.url.endswith("/web/mfa/enrol")
    assert page.locator("figure.qr svg").count() == 1
    secret = page.inner_text("#totp-secret")
    page.fill("input[name=code]", pyotp.TOTP(secret).now())
    page.click("button[type=submit]")
    assert page.locator("#recovery-codes li").count() == 10
    page.click("text=Continue")
    return secret


def test_sign_in_enrol_and_create_a_token(page, sqlite_node: Node) -> None:  # type: ignore[no-untyped-def]
    """First sign-in: password, enrolment with the QR page, home, then a working token."""
    email = account(sqlite_node)
    sign_in(page, email)
    enrol(page)
    assert page.url.endswith("/web/")
    assert page.inner_text("#organisation") == "National CERT"
    assert "Shared indicators" in page.inner_text("#collections")
    page.select_option("select[name=scope]", "read")
    page.click("#create-token button[type=submit]")
    token = page.inner_text("#new-token")
    assert token.startswith("cq_")
    assert "read" in page.inner_text("#tokens")
    answer = requests.get(f"{sqlite_node.url}/taxii2/",
                          headers={"Accept": TAXII, "Authorization": f"Bearer {token}"})
    assert answer.status_code == 200
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["cq_session"]["httpOnly"] and cookies["cq_session"]["sameSite"] == "Strict"


def test_a_wrong_code_is_refused_then_the_right_one_signs_in(page, sqlite_node: Node) -> None:  # type: ignore[no-untyped-def]
    """After enrolment, a wrong code shows the generic refusal; the right one gets in."""
    email = account(sqlite_node)
    sign_in(page, email)
    secret = enrol(page)
    page.click("header button[type=submit]")  # sign out
    sign_in(page, email)
    assert page.url.endswith("/web/mfa")
    right = pyotp.TOTP(secret).at(time.time() + 30)
    page.fill("input[name=code]", "000000" if right != "000000" else "111111")
    page.click("button[type=submit]")
    assert page.inner_text("[role=alert]") == signin.GENERIC
    page.fill("input[name=code]", right)
    page.click("button[type=submit]")
    assert page.url.endswith("/web/") and page.inner_text("#organisation") == "National CERT"


def test_repeated_wrong_passwords_lock_the_account(page, sqlite_node: Node) -> None:  # type: ignore[no-untyped-def]
    """Five wrong passwords, then the right one: still refused, with the same message."""
    email = account(sqlite_node)
    for _ in range(5):
        sign_in(page, email, "not-the-password-000")
        assert page.inner_text("[role=alert]") == signin.GENERIC
    sign_in(page, email)
    assert page.url.endswith("/web/signin")
    assert page.inner_text("[role=alert]") == signin.GENERIC
    with sqlite_node.store.read() as tx:
        assert [e.action for e in tx.audit_entries(actor=email, action="account.locked")]


def test_correlating_a_value_shows_who_reported_it(page, sqlite_node: Node) -> None:  # type: ignore[no-untyped-def]
    """Two organisations report one value: the analyst sees both, an outsider sees nothing."""
    node = sqlite_node
    email = account(node)
    when = timestamps.format_ms(timestamps.now_us() - 3_600_000_000)
    for org in ("CERT-A", "CERT-B"):
        member = node.member(org)
        feed = node.collection(f"{org} feed", read=(org, "National CERT"), write=(org,))
        node.post(member, feed, [indicator(
            pattern="[ipv4-addr:value = '45.155.205.233']", created=when, modified=when,
            object_marking_refs=[TLP2_IDS[Tlp.GREEN]])])
    sign_in(page, email)
    enrol(page)
    page.click("#correlate-link")
    assert page.url.endswith("/web/correlate")
    page.fill("#correlate input[name=value]", "45.155.205.233")
    page.click("#correlate button[type=submit]")
    assert page.inner_text("#reporters").startswith("2 reporters")
    assert page.locator("#reports tbody tr").count() == 2
    assert {"org:CERT-A", "org:CERT-B"} <= set(page.locator("#reports tbody td").all_inner_texts())
    assert page.locator("#shared tbody tr").count() == 1
    assert "45.155.205.233" in page.inner_text("#shared")

    page.click("header button[type=submit]")  # sign out
    outsider = node.member("Bystanders").email
    accounts.set_password(node.store, outsider, PASSWORD)
    sign_in(page, outsider)
    enrol(page)
    page.click("#correlate-link")
    page.fill("#correlate input[name=value]", "45.155.205.233")
    page.click("#correlate button[type=submit]")
    assert page.locator("#no-reports").count() == 1 and page.locator("#reports").count() == 0
    assert page.locator("#no-shared").count() == 1
