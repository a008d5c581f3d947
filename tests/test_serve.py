"""`communique serve` as a user runs it: separate processes, several workers, restarts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import requests
from taxii2client.v21 import Server, as_pages

from communique import node
from communique.identity import signin
from communique.provenance import publish, signatures
from communique.settings import Settings
from communique.stix import markings
from communique.store import open_store
from tests.cli_support import communique
from tests.pg import free_port
from tests.support import TAXII, indicator, unsigned


@contextmanager
def serving(database: str, *, workers: int) -> Iterator[str]:
    """Run `communique serve` in a subprocess until the block ends; yield its base URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMMUNIQUE_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "communique", "serve", "--database", database, "--port", str(port),
         "--workers", str(workers)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{url}/taxii2/", timeout=2).status_code in (200, 401):
                    break  # 200 when the node has a public collection
            except requests.ConnectionError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("server did not start: " + process.stdout.read().decode()[-2000:])
            time.sleep(0.1)
        yield url
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:  # it has already exited: let its own error show
            pass
        process.wait(timeout=30)


def prepare(database: str) -> tuple[str, str, str]:
    """Initialise a node with one collection; return (email, token, collection id)."""
    email = "analyst@cert.example"
    for args in (("init",), ("org", "add", "CERT"),
                 ("user", "add", email, "--org", "CERT", "--role", "analyst")):
        assert communique(*args, database=database).code == 0
    token = communique("token", "create", email, database=database).last_line
    collection = communique("collection", "add", "Shared", "--read", "CERT", "--write", "CERT",
                            database=database).last_line
    return email, token, collection


def test_workers_share_the_database_and_cursors(database_url: str) -> None:
    """With 2 workers, concurrent posts all land, and paging across workers sees each once."""
    email, token, collection = prepare(database_url)
    batches = [[indicator(n) for n in range(start, start + 500)] for start in range(0, 3000, 500)]
    headers = {"Accept": TAXII, "Content-Type": TAXII, "Authorization": f"Bearer {token}"}
    with serving(database_url, workers=2) as url:
        objects_url = f"{url}/default/collections/{collection}/objects/"

        def post(batch: list[dict]) -> int:
            return requests.post(objects_url, json={"objects": batch}, headers=headers,
                                 timeout=120).json()["success_count"]

        with ThreadPoolExecutor(4) as pool:
            assert sum(pool.map(post, batches)) == 3000
        server = Server(f"{url}/taxii2/", user=email, password=token)
        target = next(c for c in server.default.collections if c.id == collection)
        seen = [o["id"] for page in as_pages(target.get_objects, per_request=250)
                for o in page.get("objects", [])]
    assert len(seen) == len(set(seen)) == 3000


def test_cursor_survives_a_restart(tmp_path: Path) -> None:
    """A `next` cursor from one server process still works after the server restarts."""
    database = f"sqlite:///{tmp_path}/restart.db"
    _, token, collection = prepare(database)
    headers = {"Accept": TAXII, "Authorization": f"Bearer {token}"}
    with serving(database, workers=1) as url:
        objects_url = f"{url}/default/collections/{collection}/objects/"
        requests.post(objects_url, json={"objects": [indicator(n) for n in range(30)]},
                      headers={**headers, "Content-Type": TAXII}, timeout=60)
        first = requests.get(objects_url, params={"limit": 10}, headers=headers, timeout=30).json()
    with serving(database, workers=1) as url:
        second = requests.get(f"{url}/default/collections/{collection}/objects/",
                              params={"limit": 10, "next": first["next"]}, headers=headers,
                              timeout=30)
    assert second.status_code == 200
    ids = [o["id"] for o in first["objects"]] + [o["id"] for o in second.json()["objects"]]
    assert len(set(ids)) == 20


def test_demo_prepares_a_node_and_prints_a_working_token(tmp_path: Path) -> None:
    """`demo --no-serve` with a small bundle sets up the node and prints a usable token."""
    bundle = tmp_path / "small.json"
    bundle.write_text('{"type": "bundle", "id": "bundle--6b1c2f4e-0f3e-4a52-9a3c-2b8d8f5a7c10", "objects": []}')
    database = f"sqlite:///{tmp_path}/demo.db"
    run = communique("demo", "--no-serve", "--bundle", str(bundle), database=database)
    assert run.code == 0, run.err
    token = next(line.split()[-1] for line in run.out.splitlines() if "API token" in line)
    again = communique("demo", "--no-serve", "--bundle", str(bundle), database=database)
    assert again.code == 0 and token not in again.out
    with serving(database, workers=1) as url:
        response = requests.get(f"{url}/default/collections/", timeout=30,
                                headers={"Accept": TAXII, "Authorization": f"Bearer {token}"})
        anonymous = requests.get(f"{url}/default/collections/definitions/objects/", timeout=30,
                                 headers={"Accept": TAXII})
    titles = {c["title"] for c in response.json()["collections"]}
    assert titles == {"MITRE ATT&CK Enterprise", "Shared indicators", "Communiqué definitions"}
    published = {o["id"]: o for o in anonymous.json()["objects"]}
    # The TLP markings and the Communiqué extensions (recipients, provenance), and the
    # node's own identity, which carries its public key.
    assert markings.RECIPIENTS_EXTENSION in published and len(published) == 9
    password = next(line.split()[-1] for line in again.out.splitlines() if "Web sign-in" in line)
    store = open_store(database)
    try:
        settings = Settings(database=database)
        signer = node.signer(store, settings)
        keyring = node.keyring(store)
        signed = signin.check_password(store, settings, email="analyst@cert.example",
                                       password=password, address="127.0.0.1")
    finally:
        store.close()
    assert signed.session.stage == "enrol"
    definitions = {d["id"]: d for d in publish.definitions()}
    assert signatures.PROVENANCE_EXTENSION in definitions
    assert set(published) == set(definitions) | {signer.identity_id}
    assert published[signer.identity_id] == signer.identity  # signed by itself, kept as it is
    for stix_id, obj in published.items():  # each verifies against the node's own key
        verdict = signatures.verify(obj, keyring)
        assert (verdict.status, verdict.signed_by) == (signatures.Status.VERIFIED,
                                                       signer.identity_id), (stix_id, verdict)
        if stix_id in definitions:
            assert unsigned(obj) == definitions[stix_id]
