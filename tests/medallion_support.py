"""The OASIS reference TAXII 2.1 server, medallion, as a foreign peer on a loopback port.

``running_medallion`` starts the ``medallion`` command installed next to the test
interpreter with its memory backend, from a data file written into a temporary
directory: one API root, ``api1``, holding a collection to pull from (``intel``,
pre-filled) and one to push into (``inbox``, empty). Access is HTTP Basic, which
Communiqué sends when a peer's token is ``USER:PASSWORD``. The server is stopped
(and its process reaped) when the context ends.

A pre-filled object is given a distinct ``date_added`` a few milliseconds after
the previous one, as if it had been added on its own some time ago; objects added
over HTTP get medallion's own ``date_added`` (the time of the request, the same
for every object of one request).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

TAXII = "application/taxii+json;version=2.1"
STIX = "application/stix+json;version=2.1"
ROOT = "api1"
USER, PASSWORD = "communique", "medallion-test-password"


def medallion_program() -> Path:
    """Return the ``medallion`` command of the test interpreter's environment (or skip)."""
    program = Path(sys.executable).parent / "medallion"
    if not program.exists():
        pytest.skip("medallion is not installed next to the test interpreter")
    return program


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _version(obj: dict) -> str:
    """medallion's version of an object: modified, else created (SCOs are not pre-filled)."""
    return obj.get("modified") or obj["created"]


@dataclass
class Medallion:
    """A running medallion: where it is, its two collections, and plain-HTTP helpers."""

    url: str
    intel: str            # pre-filled; the collection Communiqué pulls from
    inbox: str            # empty; the collection Communiqué pushes into
    process: subprocess.Popen
    log_path: Path

    @property
    def api_root(self) -> str:
        return f"{self.url}/{ROOT}/"

    @property
    def auth(self) -> tuple[str, str]:
        return (USER, PASSWORD)

    def objects_url(self, collection: str) -> str:
        return f"{self.api_root}collections/{collection}/objects/"

    def write_token(self, path: Path) -> Path:
        """Write the ``USER:PASSWORD`` token file a peer definition points at; return it."""
        path.write_text(f"{USER}:{PASSWORD}\n")
        path.chmod(0o600)
        return path

    def objects(self, collection: str) -> list[dict]:
        """Every version of every object in ``collection``, following medallion's ``next``."""
        return self._every(self.objects_url(collection))

    def manifest(self, collection: str) -> list[dict]:
        """Every manifest entry of ``collection`` (id, version, date_added, media_type)."""
        return self._every(f"{self.api_root}collections/{collection}/manifest/")

    def _every(self, url: str) -> list[dict]:
        # ``limit`` goes with every request: medallion 3.0.0 answers a ``next`` request
        # without one with a 500 (KeyError: 'limit' in MemoryBackend.get_next)
        found: list[dict] = []
        params = {"match[version]": "all", "limit": "100"}
        while True:
            response = requests.get(url, params=params, auth=self.auth,
                                    headers={"Accept": TAXII}, timeout=30)
            assert response.status_code == 200, (response.status_code, response.text)
            envelope = response.json()
            found.extend(envelope.get("objects", []))
            if not envelope.get("more"):
                return found
            params = {"match[version]": "all", "limit": "100", "next": envelope["next"]}

    def add(self, collection: str, objects: list[dict]) -> dict:
        """Add objects in one request; return medallion's status resource."""
        response = requests.post(self.objects_url(collection), data=json.dumps(
            {"objects": objects}), auth=self.auth, timeout=30,
            headers={"Accept": TAXII, "Content-Type": TAXII})
        assert response.status_code == 202, (response.status_code, response.text)
        return response.json()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


def write_config(workdir: Path, *, port: int, intel: str, inbox: str, objects: list[dict],
                 max_page_size: int) -> Path:
    """Write the memory backend's data file and medallion's configuration; return the latter."""
    start = datetime.now(UTC) - timedelta(hours=1)
    manifest = [{"id": obj["id"], "date_added": _stamp(start + timedelta(milliseconds=5 * i)),
                 "version": _version(obj), "media_type": STIX} for i, obj in enumerate(objects)]
    collection = {"can_read": True, "can_write": True, "media_types": [STIX]}
    data = {
        "/discovery": {"title": "medallion (Communiqué tests)", "description": "a foreign peer",
                       "default": f"http://127.0.0.1:{port}/{ROOT}/",
                       "api_roots": [f"http://127.0.0.1:{port}/{ROOT}/"]},
        ROOT: {
            "information": {"title": "Foreign root", "description": "medallion memory backend",
                            "versions": [TAXII], "max_content_length": 10 * 1024 * 1024},
            "status": [],
            "collections": [
                {**collection, "id": intel, "title": "Intel", "description": "to pull from",
                 "objects": objects, "manifest": manifest},
                {**collection, "id": inbox, "title": "Inbox", "description": "to push into",
                 "objects": [], "manifest": []},
            ],
        },
    }
    data_path = workdir / "data.json"
    data_path.write_text(json.dumps(data))
    config = {
        "backend": {"module": "medallion.backends.memory_backend", "module_class": "MemoryBackend",
                    "filename": str(data_path)},
        "users": {USER: PASSWORD},
        "taxii": {"max_page_size": max_page_size},
    }
    config_path = workdir / "config.json"
    config_path.write_text(json.dumps(config))
    return config_path


@contextmanager
def running_medallion(workdir: Path, *, objects: Sequence[dict] = (),
                      max_page_size: int = 100, timeout: float = 30.0) -> Iterator[Medallion]:
    """Serve medallion on a free loopback port with ``objects`` in 'intel'; stop it afterwards."""
    program = medallion_program()
    workdir.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    intel, inbox = str(uuid.uuid4()), str(uuid.uuid4())
    config = write_config(workdir, port=port, intel=intel, inbox=inbox, objects=list(objects),
                          max_page_size=max_page_size)
    log_path = workdir / "medallion.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(program), "--host", "127.0.0.1", "--port", str(port), "--log-level", "WARN",
             str(config)], stdout=log, stderr=subprocess.STDOUT, cwd=workdir,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    server = Medallion(f"http://127.0.0.1:{port}", intel, inbox, process, log_path)
    try:
        _wait_ready(server, timeout)
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_ready(server: Medallion, timeout: float) -> None:
    """Poll the discovery resource until medallion answers 200 (or fail with its log)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"medallion exited early ({server.process.returncode}):\n"
                               + server.log())
        try:
            answer = requests.get(f"{server.url}/taxii2/", auth=server.auth,
                                  headers={"Accept": TAXII}, timeout=2)
            if answer.status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"medallion did not answer within {timeout:.0f} s:\n" + server.log())

