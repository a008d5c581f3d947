"""A peer that is down, slow, answers garbage or pages forever: clear errors, other peers go on."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Iterator

import httpx
import orjson
import pytest

from communique import timestamps
from communique.stix.markings import Tlp
from communique.store.base import Peer
from communique.sync import client as client_module
from communique.sync import engine, scheduler
from communique.sync.client import PeerError, TaxiiClient
from tests.federation_support import Pair, marked

TAXII = "application/taxii+json;version=2.1"


def answering(handler) -> httpx.MockTransport:  # type: ignore[no-untyped-def]
    return httpx.MockTransport(handler)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    yield listener.getsockname()[1]
    listener.close()


def test_a_silent_peer_times_out(silent_port: int) -> None:
    client = TaxiiClient(f"http://127.0.0.1:{silent_port}/root/", "t", timeout=0.3, attempts=2)
    started = time.monotonic()
    with pytest.raises(PeerError, match="did not answer in time"):
        client.api_root()
    assert time.monotonic() - started < 5


def test_a_closed_port_is_unreachable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(PeerError, match="could not be reached"):
        TaxiiClient(f"http://127.0.0.1:{port}/root/", "t", attempts=1).api_root()


@pytest.mark.parametrize("response, message", [
    (httpx.Response(200, content=b"<html>", headers={"Content-Type": "text/html"}), "text/html"),
    (httpx.Response(200, content=b"{not json", headers={"Content-Type": TAXII}), "not valid JSON"),
    (httpx.Response(200, content=b"[1, 2]", headers={"Content-Type": TAXII}), "not a JSON object"),
    (httpx.Response(401, json={"title": "Authentication required"},
                    headers={"Content-Type": TAXII}), r"answered 401 \(Authentication required\)"),
    (httpx.Response(404, content=b"", headers={"Content-Type": TAXII}), "answered 404"),
])
def test_garbage_answers_are_clear_errors(response: httpx.Response, message: str) -> None:
    client = TaxiiClient("http://peer.test/root/", "t", attempts=1,
                         transport=answering(lambda request: response))
    with pytest.raises(PeerError, match=message):
        client.api_root()


@pytest.mark.parametrize("envelope, headers, message", [
    ({"objects": {}}, {}, "envelope is malformed"),
    ({"objects": [], "more": "yes"}, {}, "envelope is malformed"),
    ({"objects": [], "next": 5}, {}, "malformed 'next'"),
    ({"objects": []}, {"X-TAXII-Date-Added-First": "yesterday"}, "not a timestamp"),
])
def test_malformed_envelopes_are_refused(envelope: dict, headers: dict, message: str) -> None:
    transport = answering(lambda r: httpx.Response(200, json=envelope,
                                                   headers={"Content-Type": TAXII, **headers}))
    client = TaxiiClient("http://peer.test/root/", "t", attempts=1, transport=transport)
    with pytest.raises(PeerError, match=message):
        client.get_objects("c", added_after=None, next=None, limit=10)


def test_an_oversized_answer_is_cut_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_module, "_MAX_RESPONSE", 1000)
    transport = answering(lambda r: httpx.Response(200, content=b" " * 5000,
                                                   headers={"Content-Type": TAXII}))
    with pytest.raises(PeerError, match="larger than"):
        TaxiiClient("http://peer.test/root/", "t", attempts=1, transport=transport).api_root()


def test_basic_credentials_when_the_token_holds_a_colon() -> None:
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["auth"] = request.headers.get("authorization")
        return httpx.Response(200, json={}, headers={"Content-Type": TAXII})

    TaxiiClient("http://peer.test/root/", "user:pass:word", transport=answering(handler)).api_root()
    assert seen["auth"] == "Basic dXNlcjpwYXNzOndvcmQ="
    TaxiiClient("http://peer.test/root/", "tok", transport=answering(handler)).api_root()
    assert seen["auth"] == "Bearer tok"


def test_a_peer_that_pages_forever_is_cut_off_and_resumed(pair: Pair) -> None:
    """Each page moves on but 'more' never ends: the run stops at the page limit, not an error."""
    pair.add_peer()
    counter = iter(range(1, 10**6))
    real_root = httpx.get(f"{pair.b.root}/", headers=pair.writer.headers).json()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/objects/"):
            n = next(counter)
            added = timestamps.format_us(1_700_000_000_000_000 + n)
            return httpx.Response(200, json={"more": True, "objects": [marked(n, Tlp.GREEN)]},
                                  headers={"Content-Type": TAXII,
                                           "X-TAXII-Date-Added-First": added,
                                           "X-TAXII-Date-Added-Last": added})
        return httpx.Response(200, json=real_root, headers={"Content-Type": TAXII})

    [run] = pair.sync(engine.Options(transport=answering(handler), max_pages=5))
    assert run.error is None and run.moved and run.moved.pages == 5 and not run.moved.complete
    with pair.a.store.read() as tx:
        [link] = tx.links_of()
    # more follows: the point stays just before the last page's end (a group may go on)
    assert link.position == 1_700_000_000_000_004 and link.last_success is None


def test_a_broken_peer_does_not_stop_the_others(pair: Pair, tmp_path: Path) -> None:
    pair.b.post(pair.writer, pair.intel, [marked(i, Tlp.GREEN) for i in range(3)])
    pair.add_peer()
    broken_token = tmp_path / "broken.token"
    broken_token.write_text(pair.token_file.read_text())
    broken_token.chmod(0o600)
    pair.add_peer(name="a-broken", token_file=str(broken_token))
    with pair.a.store.write() as tx:  # the broken one now points at nothing
        from sqlalchemy import update

        from communique.store import schema
        tx.conn.execute(update(schema.peers).where(schema.peers.c.name == "a-broken")
                        .values(url="http://127.0.0.1:9/default/"))
    runs = engine.run_due(pair.a.store, engine.Options(attempts=1))
    errors = [run.error for run in runs]
    assert len(runs) == 2 and errors.count(None) == 1
    assert any(e and "could not be reached" in e for e in errors)
    assert len(pair.stored_on_a()) == 3
    assert engine.run_due(pair.a.store) == []  # nothing is due again yet: backoff and schedule


def test_a_new_peer_is_due_and_runs_once(pair: Pair) -> None:
    pair.b.post(pair.writer, pair.intel, [marked(1, Tlp.GREEN)])
    pair.add_peer()
    [run] = engine.run_due(pair.a.store)
    assert run.moved and run.moved.added == 1
    with pair.a.store.read() as tx:
        [link] = tx.links_of()
    assert link.next_due > timestamps.now_us() + 50 * 1_000_000  # every 60 s


def test_one_scheduler_at_a_time(pair: Pair) -> None:
    now = timestamps.now_us()
    assert scheduler.claim(pair.a.store, "one", now=now)
    assert not scheduler.claim(pair.a.store, "two", now=now + 1)
    assert scheduler.claim(pair.a.store, "one", now=now + 2)  # renewal
    assert scheduler.claim(pair.a.store, "two", now=now + 301 * 1_000_000)  # lapsed
    scheduler.release(pair.a.store, "two")
    assert scheduler.claim(pair.a.store, "three", now=now + 302 * 1_000_000)


def test_the_scheduler_thread_synchronises_due_peers(pair: Pair) -> None:
    pair.b.post(pair.writer, pair.intel, [marked(i, Tlp.GREEN) for i in range(4)])
    pair.add_peer()
    stop = threading.Event()
    thread = threading.Thread(target=scheduler.forever,
                              args=(pair.a.store, stop, engine.Options(), 0.1))
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while len(pair.stored_on_a()) < 4 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        thread.join(timeout=20)
    assert len(pair.stored_on_a()) == 4
    with pair.a.store.read() as tx:
        assert tx.get_setting(scheduler.LEASE) == ""  # released at the end


def test_status_and_envelope_are_validated(pair: Pair) -> None:
    """A peer's status resource that never completes is an error, not a hang."""
    del pair
    transport = answering(lambda r: httpx.Response(
        200, content=orjson.dumps({"id": "s", "status": "pending"}),
        headers={"Content-Type": TAXII}))
    from communique.sync import push

    client = TaxiiClient("http://peer.test/root/", "t", transport=transport)
    original = push._STATUS_WAIT_S
    push._STATUS_WAIT_S = 0.6
    try:
        with pytest.raises(PeerError, match="did not finish"):
            push._finished(client, {"id": "s", "status": "pending"})
    finally:
        push._STATUS_WAIT_S = original


def test_peer_type_is_what_the_store_returns(pair: Pair) -> None:
    pair.add_peer()
    with pair.a.store.read() as tx:
        assert isinstance(tx.find_peer("b"), Peer)
