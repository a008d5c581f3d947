"""The two servers under test, each started as its own process on a free loopback port.

Communiqué is set up with its own command line (init, org, user, token, collection)
and served with ``communique serve --workers 1``. medallion 3.0.0 is installed into
a throwaway virtual environment and served with its ``medallion`` command and the
memory backend, from a JSON configuration file as its documentation describes.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import requests

TAXII = "application/taxii+json;version=2.1"
MEDALLION_VERSION = "3.0.0"
ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
# A copy of src/ taken when the benchmark starts (see run.py), so that every run
# measures the same code even while the working tree changes. None: use src/ itself.
SOURCE: Path | None = None


def communique_env() -> dict[str, str]:
    """Return the environment for `communique` commands: the snapshot comes first on the path."""
    env = dict(os.environ)
    if SOURCE is not None:
        env["PYTHONPATH"] = str(SOURCE)
    return env


def free_port() -> int:
    """Return a loopback port nobody is listening on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_kib(pid: int) -> dict[str, int]:
    """Return VmRSS and VmHWM (peak) of a process, in KiB, from /proc/<pid>/status."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0])
    return found


@dataclass
class Server:
    """A running TAXII server: where its collection is and how to authenticate."""

    name: str
    base_url: str
    api_root: str
    collection_id: str
    headers: dict[str, str]
    process: subprocess.Popen
    log_path: Path
    info: dict = field(default_factory=dict)

    @property
    def objects_url(self) -> str:
        return f"{self.base_url}/{self.api_root}/collections/{self.collection_id}/objects/"

    def object_url(self, object_id: str) -> str:
        return f"{self.objects_url}{object_id}/"

    def rss(self) -> dict[str, int]:
        return rss_kib(self.process.pid)

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Poll the discovery endpoint until the server answers 200."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited early; see {self.log_path}:\n"
                                   + self.log_path.read_text()[-3000:])
            try:
                if requests.get(f"{self.base_url}/taxii2/", headers=self.headers,
                                timeout=5).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not become ready in {timeout:.0f} s")

    def stop(self) -> None:
        """Stop the server process (SIGTERM, then SIGKILL after 20 s)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# -- Communiqué -----------------------------------------------------------------------
def communique_cli(*args: str, database: str) -> str:
    """Run one `communique` command against ``database``; return its standard output."""
    done = subprocess.run([str(VENV_BIN / "communique"), *args, "--database", database],
                          capture_output=True, text=True, env=communique_env())
    if done.returncode not in (0, 2):
        raise RuntimeError(f"communique {' '.join(args)} failed ({done.returncode}):\n"
                           f"{done.stdout}\n{done.stderr}")
    return done.stdout


def prepare_communique(workdir: Path) -> tuple[str, str, str]:
    """Create a database with an org, a user, a token and a collection via the CLI.

    Return (database URL, token, collection id).
    """
    database = f"sqlite:///{workdir}/bench.db"
    communique_cli("init", database=database)
    communique_cli("org", "add", "Bench CERT", database=database)
    communique_cli("user", "add", "bench@cert.example", "--org", "Bench CERT", "--role", "analyst",
                   database=database)
    token = communique_cli("token", "create", "bench@cert.example",
                           database=database).strip().splitlines()[-1]
    collection = communique_cli("collection", "add", "Bench", "--read", "Bench CERT", "--write",
                                "Bench CERT", database=database).strip().splitlines()[-1]
    return database, token, collection


def start_communique(workdir: Path, *,
                     prepare: Callable[[Path], tuple[str, str, str]] = prepare_communique) -> Server:
    """Set up a fresh database in ``workdir`` with ``prepare`` and serve it with one worker.

    ``prepare`` returns (database URL, token, collection id), like ``prepare_communique``.
    """
    database, token, collection = prepare(workdir)
    port = free_port()
    log_path = workdir / "communique.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(VENV_BIN / "communique"), "serve", "--database", database, "--port", str(port),
             "--workers", "1"], stdout=log, stderr=subprocess.STDOUT, cwd=workdir,
            env=communique_env())
    server = Server("communique", f"http://127.0.0.1:{port}", "default", collection,
                    {"Accept": TAXII, "Authorization": f"Bearer {token}"}, process, log_path,
                    {"database": database})
    server.wait_ready()
    return server


# -- medallion ------------------------------------------------------------------------
def install_medallion(venv_dir: Path) -> Path:
    """Create a virtual environment and pip install medallion into it; return its bin/."""
    subprocess.run([sys.executable, "-m", "venv", str(venv_dir)], check=True)
    bin_dir = venv_dir / "bin"
    done = subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "--quiet",
                           "--disable-pip-version-check", f"medallion=={MEDALLION_VERSION}"],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"pip install medallion failed:\n{done.stdout}\n{done.stderr}")
    return bin_dir


def medallion_versions(bin_dir: Path) -> dict[str, str]:
    """Return the versions of medallion, Flask and Werkzeug in its environment."""
    code = ("import json, importlib.metadata as m, sys; print(json.dumps({p: m.version(p) for p "
            "in ('medallion', 'flask', 'werkzeug')} | {'python': sys.version.split()[0]}))")
    done = subprocess.run([str(bin_dir / "python"), "-c", code], capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout)


def medallion_config(workdir: Path, *, collection_id: str, user: str, password: str,
                     port: int, max_page_size: int) -> Path:
    """Write medallion's data file and configuration (memory backend); return the config."""
    data = {
        "/discovery": {"title": "medallion (benchmark)", "description": "memory backend",
                       "default": f"http://127.0.0.1:{port}/api1/",
                       "api_roots": [f"http://127.0.0.1:{port}/api1/"]},
        "api1": {
            "information": {"title": "Benchmark root", "description": "benchmark",
                            "versions": [TAXII], "max_content_length": 100 * 1024 * 1024},
            "status": [],
            "collections": [{"id": collection_id, "title": "Bench", "description": "benchmark",
                             "can_read": True, "can_write": True,
                             "media_types": ["application/stix+json;version=2.1"],
                             "objects": [], "manifest": []}],
        },
    }
    data_path = workdir / "medallion_data.json"
    data_path.write_text(json.dumps(data, indent=1))
    config = {
        # session_timeout: how long a `next` paging session lives (default 30 s). Paging a
        # large collection on medallion takes longer than that, so it is raised here.
        "backend": {"module": "medallion.backends.memory_backend", "module_class": "MemoryBackend",
                    "filename": str(data_path), "session_timeout": 86400},
        "users": {user: password},
        "taxii": {"max_page_size": max_page_size},
    }
    config_path = workdir / "medallion_config.json"
    config_path.write_text(json.dumps(config, indent=1))
    return config_path


def start_medallion(workdir: Path, bin_dir: Path, *, max_page_size: int = 1000) -> Server:
    """Serve a fresh, empty medallion (memory backend) from ``bin_dir``."""
    port = free_port()
    collection_id = str(uuid.uuid4())
    user, password = "bench", "bench-password"
    config = medallion_config(workdir, collection_id=collection_id, user=user, password=password,
                              port=port, max_page_size=max_page_size)
    log_path = workdir / "medallion.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(bin_dir / "medallion"), "--host", "127.0.0.1", "--port", str(port),
             "--log-level", "WARN", str(config)],
            stdout=log, stderr=subprocess.STDOUT, cwd=workdir,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    server = Server("medallion", f"http://127.0.0.1:{port}", "api1", collection_id,
                    {"Accept": TAXII, "Authorization": f"Basic {basic}"}, process, log_path)
    server.wait_ready()
    return server
