"""A throwaway PostgreSQL cluster for the tests, from the server programs on this machine.

initdb refuses to run as root, so under root the cluster belongs to the
``postgres`` (or ``nobody``) account. The cluster listens on a free loopback port
and is deleted when the session ends.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator


def server_programs() -> Path | None:
    """Return the directory holding initdb and pg_ctl, or None."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(os.path.realpath(found)).parent
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(f"{candidate}/initdb"):
            return Path(candidate)
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _account() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root, and no postgres or nobody account to run PostgreSQL")


class Cluster:
    """A running cluster; ``url`` connects as its superuser ``postgres``."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.base = Path(tempfile.mkdtemp(prefix="communique-pg-"))
        self.data = self.base / "data"
        self.port = free_port()
        self.account = _account()
        if self.account:
            os.chown(self.base, self.account.pw_uid, self.account.pw_gid)
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}"

    def _run(self, *args: str) -> None:
        def demote() -> None:
            if self.account:
                os.setgid(self.account.pw_gid)
                os.setuid(self.account.pw_uid)
        env = dict(os.environ, LC_ALL="C", LANG="C")
        subprocess.run(args, check=True, preexec_fn=demote, env=env, cwd=self.base,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def start(self) -> None:
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres",
                  "--auth=trust", "-E", "UTF8", "--no-sync")
        options = (f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                   "-c max_connections=200")
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", options,
                  "-l", str(self.base / "log"), "-w", "-t", "60", "start")

    def stop(self) -> None:
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                      "-w", "stop")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


def cluster() -> Iterator[Cluster]:
    """Start a cluster, yield it, and remove it."""
    bindir = server_programs()
    if bindir is None:
        raise FileNotFoundError("no PostgreSQL server programs")
    running = Cluster(bindir)
    running.start()
    try:
        yield running
    finally:
        running.stop()
