"""`communique serve` over HTTPS (TLS 1.2 or later), and the security headers on every response."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from uvicorn.config import Config

from communique.web.app import create_app
from communique.web.security import SecurityHeaders, tls_context
from tests.cli_support import communique
from tests.pg import free_port
from tests.support import TAXII, Node
from tests.test_serve import prepare

EXPECTED = {
    "content-security-policy": "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
                               "form-action 'self'; object-src 'none'",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}
HSTS = "max-age=31536000; includeSubDomains"


@dataclass
class Certificate:
    cert: Path
    key: Path


@dataclass
class HttpsNode:
    url: str
    port: int
    token: str
    certificate: Certificate


def self_signed(directory: Path) -> Certificate:
    """Write a throwaway self-signed certificate for localhost and 127.0.0.1, with its key."""
    # An ECDSA key, unlike Ed25519, can sign a TLS 1.1 handshake: the TLS 1.1 control below needs it.
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    found = Certificate(directory / "cert.pem", directory / "key.pem")
    found.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    found.key.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                            serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
    return found


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A self-signed certificate made for this test module."""
    return self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def https_node(tmp_path_factory: pytest.TempPathFactory,
               certificate: Certificate) -> Iterator[HttpsNode]:
    """Run `communique serve --tls-cert … --tls-key …` (2 workers) in a subprocess."""
    database = f"sqlite:///{tmp_path_factory.mktemp('https')}/node.db"
    _, token, _ = prepare(database)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMMUNIQUE_")}
    command = Path(sys.executable).parent / "communique"
    process = subprocess.Popen(
        [str(command), "serve", "--database", database, "--port", str(port), "--workers", "2",
         "--tls-cert", str(certificate.cert), "--tls-key", str(certificate.key)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"https://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{url}/taxii2/", verify=certificate.cert,
                                timeout=2).status_code == 401:
                    break
            except requests.ConnectionError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("server did not start: " + process.stdout.read().decode()[-2000:])
            time.sleep(0.1)
        yield HttpsNode(url, port, token, certificate)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def client_context(cafile: Path, *, lowest: ssl.TLSVersion,
                   highest: ssl.TLSVersion) -> ssl.SSLContext:
    """Return a client context trusting ``cafile`` that speaks only ``lowest`` to ``highest``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # naming TLS 1.0/1.1 is deprecated
        context.minimum_version = lowest
        context.maximum_version = highest
    if lowest < ssl.TLSVersion.TLSv1_2:
        context.set_ciphers("DEFAULT:@SECLEVEL=0")  # else OpenSSL itself will not offer TLS 1.1
    return context


def handshake(context: ssl.SSLContext, port: int) -> str:
    """Complete a TLS handshake with 127.0.0.1:``port``; return the version agreed."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            return str(tls.version())


def accepts_tls_1_1_here(certificate: Certificate) -> bool:
    """Tell whether this machine's OpenSSL lets a TLS 1.1 client and server agree at all."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        server.minimum_version = ssl.TLSVersion.TLSv1
    server.set_ciphers("DEFAULT:@SECLEVEL=0")
    server.load_cert_chain(certificate.cert, certificate.key)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        def accept() -> None:
            conn, _ = listener.accept()
            try:
                server.wrap_socket(conn, server_side=True).close()
            except (ssl.SSLError, OSError):
                conn.close()
        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        try:
            context = client_context(certificate.cert, lowest=ssl.TLSVersion.TLSv1,
                                     highest=ssl.TLSVersion.TLSv1_1)
            return handshake(context, listener.getsockname()[1]) == "TLSv1.1"
        except (ssl.SSLError, OSError, ValueError):
            return False
        finally:
            thread.join(timeout=10)


# -- HTTPS -----------------------------------------------------------------------------
def test_https_works_with_the_certificate_as_ca(https_node: HttpsNode) -> None:
    """A client that trusts the certificate gets TAXII discovery over HTTPS."""
    response = requests.get(f"{https_node.url}/taxii2/", verify=https_node.certificate.cert,
                            headers={"Accept": TAXII, "Authorization": f"Bearer {https_node.token}"},
                            timeout=30)
    assert response.status_code == 200
    assert response.json()["api_roots"]


def test_plain_http_to_the_tls_port_fails(https_node: HttpsNode) -> None:
    """The TLS port does not answer plain HTTP."""
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{https_node.port}/taxii2/", timeout=10)


def test_tls_1_1_is_refused_while_1_2_and_1_3_connect(https_node: HttpsNode) -> None:
    """A client limited to TLS 1.1 cannot connect; TLS 1.2 and TLS 1.3 clients can."""
    cafile = https_node.certificate.cert
    for version, name in ((ssl.TLSVersion.TLSv1_2, "TLSv1.2"), (ssl.TLSVersion.TLSv1_3, "TLSv1.3")):
        assert handshake(client_context(cafile, lowest=version, highest=version),
                         https_node.port) == name
    if not accepts_tls_1_1_here(https_node.certificate):
        pytest.skip("this machine's OpenSSL cannot complete a TLS 1.1 handshake even with a "
                    "server that allows it, so a refusal would prove nothing")
    old = client_context(cafile, lowest=ssl.TLSVersion.TLSv1, highest=ssl.TLSVersion.TLSv1_1)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        handshake(old, https_node.port)


def test_tls_context_sets_tls_1_2_as_the_minimum(certificate: Certificate) -> None:
    """uvicorn's context, as each worker loads it, refuses anything below TLS 1.2."""
    config = Config(app=PlainTextResponse("ok"), ssl_certfile=str(certificate.cert),
                    ssl_keyfile=str(certificate.key), ssl_context_factory=tls_context)
    config.load()
    assert config.ssl is not None and config.ssl.minimum_version == ssl.TLSVersion.TLSv1_2

    def permissive() -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion.TLSv1
        return context

    assert tls_context(config, permissive).minimum_version == ssl.TLSVersion.TLSv1_2


def test_serve_wants_both_certificate_and_key(certificate: Certificate) -> None:
    """--tls-cert without --tls-key (or the reverse) is a usage error, before anything starts."""
    for args in (("--tls-cert", str(certificate.cert)), ("--tls-key", str(certificate.key))):
        run = communique("serve", *args, database="sqlite:///nowhere/never.db")
        assert run.code == 2
        assert "--tls-cert and --tls-key go together" in run.err


# -- security headers ------------------------------------------------------------------
def responses(url: str, token: str, **kwargs: Any) -> list[requests.Response]:
    """Return a 200, a 401 and a 404 from the node at ``url``."""
    auth = {"Accept": TAXII, "Authorization": f"Bearer {token}"}
    found = [requests.get(f"{url}/taxii2/", headers=auth, timeout=30, **kwargs),
             requests.get(f"{url}/taxii2/", headers={"Accept": TAXII}, timeout=30, **kwargs),
             requests.get(f"{url}/no-such-root/", headers=auth, timeout=30, **kwargs)]
    assert [r.status_code for r in found] == [200, 401, 404]
    return found


def test_security_headers_and_hsts_over_https(https_node: HttpsNode) -> None:
    """A 200, a 401 and a 404 over HTTPS all carry every security header, HSTS included."""
    for response in responses(https_node.url, https_node.token,
                              verify=https_node.certificate.cert):
        for name, value in {**EXPECTED, "strict-transport-security": HSTS}.items():
            assert response.headers.get(name) == value, (response.status_code, name)


def test_security_headers_without_hsts_over_http(sqlite_node: Node) -> None:
    """Over plain HTTP the same headers are sent, but never HSTS."""
    member = sqlite_node.member("CERT")
    for response in responses(sqlite_node.url, member.token):
        for name, value in EXPECTED.items():
            assert response.headers.get(name) == value, (response.status_code, name)
        assert "strict-transport-security" not in response.headers


def call(app: Any, path: str, *, scheme: str = "http") -> tuple[int, list[tuple[bytes, bytes]]]:
    """Send one GET to an ASGI app in-process; return the status and the raw headers."""
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "scheme": scheme, "path": path, "raw_path": path.encode(), "root_path": "",
             "query_string": b"", "headers": [], "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 443 if scheme == "https" else 80)}
    try:
        asyncio.run(app(scope, receive, send))
    except RuntimeError:
        pass  # Starlette re-raises an unhandled error after sending its 500
    start = next(m for m in sent if m["type"] == "http.response.start")
    return start["status"], start["headers"]


def test_headers_a_route_set_are_kept_and_not_repeated() -> None:
    """A route's own Cache-Control or X-Frame-Options wins; each header appears once."""
    route = PlainTextResponse("ok", headers={"Cache-Control": "max-age=60",
                                             "X-Frame-Options": "SAMEORIGIN"})
    status, headers = call(SecurityHeaders(route), "/", scheme="https")
    names = [name for name, _ in headers]
    assert status == 200 and len(names) == len(set(names))
    found = dict(headers)
    assert found[b"cache-control"] == b"max-age=60"
    assert found[b"x-frame-options"] == b"SAMEORIGIN"
    assert found[b"strict-transport-security"] == HSTS.encode()


def test_an_internal_error_carries_the_headers_too(sqlite_node: Node) -> None:
    """The 500 rendered for an unforeseen failure leaves with the security headers."""
    app = create_app(sqlite_node.settings)

    async def boom(request: Any) -> None:
        raise RuntimeError("boom")

    app.router.routes.insert(0, Route("/boom/", boom))
    try:
        status, headers = call(app, "/boom/")
    finally:
        app.state.exchange.store.close()
    found = {name.decode(): value.decode() for name, value in headers}
    assert status == 500
    assert {name: found.get(name) for name in EXPECTED} == EXPECTED


def test_a_peer_over_https_is_checked_against_the_given_authorities(https_node: HttpsNode) -> None:
    """The sync client checks the peer's certificate: unknown CA refused, given CA accepted."""
    from communique.sync.client import PeerError, TaxiiClient

    root = f"{https_node.url}/default/"
    with TaxiiClient(root, https_node.token, attempts=1) as client, \
            pytest.raises(PeerError, match="could not be reached"):
        client.api_root()
    with TaxiiClient(root, https_node.token, attempts=1,
                     ca_file=str(https_node.certificate.cert)) as client:
        answer = client.api_root()
    assert "x_communique_identity" in answer and answer["max_content_length"] > 0
