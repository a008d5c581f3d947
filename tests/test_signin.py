"""Web sign-in over real HTTP: password, TOTP enrolment and codes, recovery codes, lockout,
throttling, sessions, CSRF, and tokens created from the home page."""

from __future__ import annotations

import html
import re
import time
from typing import Iterator

import pyotp
import pytest
import requests
from sqlalchemy import update

from communique import accounts
from communique.identity import signin
from communique.store import schema
from tests.support import TAXII, Node, indicator, running_node

PASSWORD = "violet-harbour-sextant-42"


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, page[:500]
    return html.unescape(match.group(1))


def user(node: Node, org: str = "CERT", role: str = "analyst") -> str:
    email = node.member(org, role).email
    accounts.set_password(node.store, email, PASSWORD)
    return email


def password_step(node: Node, email: str, password: str = PASSWORD,
                  browser: requests.Session | None = None) -> tuple[requests.Session, requests.Response]:
    browser = browser or requests.Session()
    form = browser.get(f"{node.url}/web/signin")
    assert form.status_code == 200
    answer = browser.post(f"{node.url}/web/signin", allow_redirects=False, data={
        "csrf": csrf_of(form.text), "email": email, "password": password})
    return browser, answer


def enrol(node: Node, email: str) -> tuple[requests.Session, str, list[str]]:
    """Sign in for the first time and enrol; return the browser, the TOTP secret, recovery codes."""
    browser, answer = password_step(node, email)
    assert answer.status_code == 303 and answer.headers["location"] == "/web/mfa/enrol"
    page = browser.get(f"{node.url}/web/mfa/enrol").text
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page).group(1)
    assert "<svg" in page
    done = browser.post(f"{node.url}/web/mfa/enrol", data={
        "csrf": csrf_of(page), "code": pyotp.TOTP(secret).now()})
    assert done.status_code == 200, done.text
    codes = re.findall(r"<li><code>([a-z0-9-]+)</code></li>", done.text)
    return browser, secret, codes


def code_step(node: Node, browser: requests.Session, code: str) -> requests.Response:
    page = browser.get(f"{node.url}/web/mfa")
    return browser.post(f"{node.url}/web/mfa", allow_redirects=False,
                        data={"csrf": csrf_of(page.text), "code": code})


def next_code(secret: str) -> str:
    """The code of the next 30-second step: accepted (clock drift), and never used yet."""
    return pyotp.TOTP(secret).at(time.time() + 30)


def audit_actions(node: Node, **filters: str) -> list[str]:
    with node.store.read() as tx:
        return [e.action for e in tx.audit_entries(limit=10_000, **filters)]


def test_first_sign_in_enrols_then_signs_in_with_codes(node: Node) -> None:
    """Enrolment shows a QR code and secret, needs a valid code, gives recovery codes."""
    email = user(node)
    collection = node.collection("Shared", read=("CERT",))
    browser, secret, codes = enrol(node, email)
    assert len(codes) == 10 and len(set(codes)) == 10
    home = browser.get(f"{node.url}/web/")
    assert home.status_code == 200 and email in home.text and "Shared" in home.text
    assert collection in home.text and "TLP:AMBER" in home.text
    assert {"signin.password", "mfa.enrol", "signin.success"} <= set(audit_actions(node, actor=email))

    fresh, answer = password_step(node, email)
    assert answer.headers["location"] == "/web/mfa"
    assert fresh.get(f"{node.url}/web/", allow_redirects=False).status_code == 303  # not yet in
    assert code_step(node, fresh, next_code(secret)).headers["location"] == "/web/"
    assert fresh.get(f"{node.url}/web/").status_code == 200


def test_wrong_and_replayed_codes_are_refused(node: Node) -> None:
    """A wrong code, and a code already used once, get the generic refusal."""
    email = user(node)
    _, secret, _ = enrol(node, email)
    browser, _ = password_step(node, email)
    wrong = code_step(node, browser, "000000" if next_code(secret) != "000000" else "111111")
    assert wrong.status_code == 401 and html.escape(signin.GENERIC) in wrong.text
    code = next_code(secret)
    assert code_step(node, browser, code).status_code == 303
    again, _ = password_step(node, email)
    replay = code_step(node, again, code)
    assert replay.status_code == 401
    with node.store.read() as tx:
        reasons = [e.details.get("reason") for e in tx.audit_entries(actor=email, action="signin.failure")]
    assert reasons == ["wrong code", "code already used"]


def test_recovery_codes_work_once(node: Node) -> None:
    """A recovery code stands in for a TOTP code, once."""
    email = user(node)
    _, _, codes = enrol(node, email)
    browser, _ = password_step(node, email)
    assert code_step(node, browser, codes[0].upper()).status_code == 303
    browser, _ = password_step(node, email)
    assert code_step(node, browser, codes[0]).status_code == 401


def test_answers_do_not_reveal_whether_an_account_exists(node: Node) -> None:
    """Unknown account, wrong password and locked account: the same answer."""
    email = user(node)
    _, unknown = password_step(node, "nobody@nowhere.example", "whatever-it-is-123")
    _, wrong = password_step(node, email, "not-the-password-123")
    strip = lambda page: re.sub(r'value="[^"]*"', "", page)  # noqa: E731 - csrf and e-mail differ
    assert unknown.status_code == wrong.status_code == 401
    assert strip(unknown.text) == strip(wrong.text)


def test_repeated_failures_lock_the_account(node: Node) -> None:
    """Five wrong passwords lock the account: then even the right one is refused, alike."""
    email = user(node)
    for _ in range(5):
        assert password_step(node, email, "wrong-password-1234")[1].status_code == 401
    _, right = password_step(node, email)
    assert right.status_code == 401 and html.escape(signin.GENERIC) in right.text
    assert "account.locked" in audit_actions(node, actor=email)
    with node.store.write() as tx:  # the lock expires
        tx.conn.execute(update(schema.users).where(schema.users.c.email == email).values(
            locked_until=1))
    assert password_step(node, email)[1].status_code == 303


@pytest.fixture
def strict_node(database_url: str) -> Iterator[Node]:
    with running_node(database_url, address_failures=3) as node:
        yield node


def test_failures_from_one_address_are_throttled(strict_node: Node) -> None:
    """After `address_failures` failures from an address, it gets 429 for a while."""
    for n in range(3):
        assert password_step(strict_node, f"guess{n}@x.example", "guess-password-1")[1].status_code == 401
    email = user(strict_node)
    _, throttled = password_step(strict_node, email)
    assert throttled.status_code == 429


def test_sessions_rotate_expire_and_end(node: Node) -> None:
    """The cookie changes at each step; a tampered, idle or signed-out session is gone."""
    email = user(node)
    browser, answer = password_step(node, email)
    first = browser.cookies.get("cq_session")
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/web" in cookie
    browser, secret, _ = enrol(node, email)
    assert browser.cookies.get("cq_session") != first
    tampered = requests.Session()
    tampered.cookies.set("cq_session", browser.cookies.get("cq_session")[:-2] + "xx")
    assert tampered.get(f"{node.url}/web/", allow_redirects=False).status_code == 303

    with node.store.write() as tx:  # idle for longer than session_idle_minutes
        tx.conn.execute(update(schema.web_sessions).values(last_seen=0))
    assert browser.get(f"{node.url}/web/", allow_redirects=False).status_code == 303

    browser, _ = password_step(node, email)
    assert code_step(node, browser, next_code(secret)).status_code == 303
    assert browser.get(f"{node.url}/web/", allow_redirects=False).status_code == 200
    with node.store.write() as tx:  # active, but signed in longer ago than session_max_hours
        tx.conn.execute(update(schema.web_sessions).values(created=0))
    assert browser.get(f"{node.url}/web/", allow_redirects=False).status_code == 303
    with node.store.write() as tx:
        tx.conn.execute(update(schema.users).where(schema.users.c.email == email).values(
            mfa_last_step=None))  # let the next code step be used again below

    browser, _ = password_step(node, email)
    code_step(node, browser, next_code(secret))
    home = browser.get(f"{node.url}/web/")
    out = browser.post(f"{node.url}/web/signout", data={"csrf": csrf_of(home.text)},
                       allow_redirects=False)
    assert out.status_code == 303
    assert browser.get(f"{node.url}/web/", allow_redirects=False).status_code == 303


def test_forms_need_their_csrf_token(node: Node) -> None:
    """A form posted without this site's token is refused (403) and audited."""
    email = user(node)
    browser = requests.Session()
    forged = browser.post(f"{node.url}/web/signin", data={"email": email, "password": PASSWORD})
    assert forged.status_code == 403
    browser, _, _ = enrol(node, email)
    cross = browser.post(f"{node.url}/web/tokens", data={"csrf": "made-up", "scope": "read"})
    assert cross.status_code == 403
    accented = browser.post(f"{node.url}/web/tokens", data={"csrf": "é\u2028", "scope": "read"})
    assert accented.status_code == 403
    with node.store.read() as tx:
        refused = [e for e in tx.audit_entries(action="request.refused") if e.details["status"] == 403]
    assert len(refused) == 3 and refused[1].actor == email


def test_tokens_from_the_home_page_are_scoped(node: Node) -> None:
    """A token made on the home page works over TAXII within its scope, and can be revoked."""
    email = user(node)
    collection = node.collection("Shared", read=("CERT",), write=("CERT",))
    browser, _, _ = enrol(node, email)
    home = browser.get(f"{node.url}/web/")
    made = browser.post(f"{node.url}/web/tokens", data={
        "csrf": csrf_of(home.text), "scope": "read", "expires_days": "7"})
    token = re.search(r'id="new-token">(cq_[^<]+)<', made.text).group(1)
    headers = {"Accept": TAXII, "Authorization": f"Bearer {token}"}
    url = node.objects_url(collection)
    assert requests.get(url, headers=headers).status_code == 200
    post = requests.post(url, json={"objects": [indicator(1)]},
                         headers={**headers, "Content-Type": TAXII})
    assert post.status_code == 403  # a read token never writes
    refused = browser.post(f"{node.url}/web/tokens", data={
        "csrf": csrf_of(home.text), "scope": "admin"})
    assert refused.status_code == 400  # an analyst cannot mint admin tokens
    token_id = re.findall(r'action="/web/tokens/(\d+)/revoke"', made.text)[-1]
    browser.post(f"{node.url}/web/tokens/{token_id}/revoke", data={"csrf": csrf_of(home.text)})
    assert requests.get(url, headers=headers).status_code == 401
    assert {"token.create", "token.revoke"} <= set(audit_actions(node, actor=email))


def test_taxii_never_takes_a_password(node: Node) -> None:
    """HTTP Basic with the account's password is refused: only tokens open the API."""
    email = user(node)
    answer = requests.get(f"{node.url}/taxii2/", auth=(email, PASSWORD), headers={"Accept": TAXII})
    assert answer.status_code == 401


def test_cli_passwd_reads_stdin_and_mfa_reset(database_url: str) -> None:
    """`user passwd` takes the password on standard input and checks its strength;
    `user mfa-reset` removes the second factor; both are audited."""
    from tests.cli_support import communique

    for args in (("org", "add", "CERT"),
                 ("user", "add", "a@cert.example", "--org", "CERT", "--role", "analyst")):
        assert communique(*args, database=database_url).code == 0
    weak = communique("user", "passwd", "a@cert.example", database=database_url, stdin=b"short\n")
    assert weak.code == 1 and "at least 12" in weak.err
    ok = communique("user", "passwd", "a@cert.example", database=database_url,
                    stdin=(PASSWORD + "\n").encode())
    assert ok.code == 0 and PASSWORD not in ok.out + ok.err
    assert communique("user", "mfa-reset", "a@cert.example", database=database_url).code == 0
    shown = communique("audit", "show", database=database_url).out
    assert '"password.set"' in shown and '"mfa.reset"' in shown and PASSWORD not in shown


def test_hostile_sign_in_input_gets_the_generic_answer(node: Node) -> None:
    """Control characters, huge values and odd forms: refused cleanly, and recorded."""
    email = user(node)
    for hostile_email, password in ((email + "\x00", PASSWORD), ("\x00' OR 1=1 --", "x" * 12),
                                    (email, "x" * 5000), ("a" * 5000 + "@x.example", PASSWORD)):
        assert password_step(node, hostile_email, password)[1].status_code == 401
    browser = requests.Session()
    form = browser.get(f"{node.url}/web/signin")
    huge = browser.post(f"{node.url}/web/signin", data={"csrf": csrf_of(form.text),
                                                        "email": "a" * 100_000, "password": "x"})
    assert huge.status_code == 413
    chunked = browser.post(f"{node.url}/web/signin", data=(b"email=" + b"a" * 4096 for _ in range(10)),
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert chunked.status_code == 413  # no Content-Length: still cut off at the limit
    multipart = browser.post(f"{node.url}/web/signin", files={"email": ("e", b"x")})
    many = browser.post(f"{node.url}/web/signin", data="&".join(f"f{i}=1" for i in range(50)),
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert multipart.status_code == many.status_code == 400
    assert audit_actions(node).count("signin.failure") == 4
