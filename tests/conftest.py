"""Shared fixtures: databases on both backends, and real nodes on loopback ports."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Iterator

import psycopg
import pytest

from communique import node as node_setup
from communique.settings import Settings
from communique.store import open_store
from communique.store.engines import SqlStore
from tests import pg
from tests.support import Node, running_node

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[pg.Cluster]:
    """One throwaway PostgreSQL cluster per test process."""
    if pg.server_programs() is None:
        pytest.skip("PostgreSQL server programs (initdb, pg_ctl) are not installed on this machine")
    yield from pg.cluster()


@pytest.fixture(scope="session")
def pg_template(pg_cluster: pg.Cluster) -> str:
    """A migrated database that each test's database is copied from."""
    with psycopg.connect(pg_cluster.url + "/postgres", autocommit=True) as conn:
        conn.execute("CREATE DATABASE communique_template")
    store = open_store(pg_cluster.url + "/communique_template")
    node_setup.prepare_database(store)
    store.close()
    return "communique_template"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that each test's database is copied from."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    store = open_store(f"sqlite:///{path}")
    node_setup.prepare_database(store)
    store.close()
    return path


def fresh_database(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> str:
    """Return the URL of a new, migrated, empty database on ``backend``, with its own node
    identity and signing key (at the default place; a PostgreSQL one is removed afterwards)."""
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / f"{uuid.uuid4().hex}.db"
        shutil.copyfile(template, path)
        url = f"sqlite:///{path}"
    else:
        cluster: pg.Cluster = request.getfixturevalue("pg_cluster")
        template_name = request.getfixturevalue("pg_template")
        name = f"t_{uuid.uuid4().hex}"
        with psycopg.connect(cluster.url + "/postgres", autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name} TEMPLATE {template_name}")
        url = f"{cluster.url}/{name}"
    settings = Settings(database=url)
    request.addfinalizer(lambda: node_setup.signing_key_path(settings).unlink(missing_ok=True))
    store = open_store(url)
    try:
        node_setup.provision(store, settings)
    finally:
        store.close()
    return url


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh migrated database, once on SQLite and once on PostgreSQL."""
    return fresh_database(request, request.param, tmp_path)


@pytest.fixture
def store(database_url: str) -> Iterator[SqlStore]:
    """An open store on a fresh database (both backends)."""
    opened = open_store(database_url)
    yield opened
    opened.close()


@pytest.fixture
def node(database_url: str) -> Iterator[Node]:
    """A real TAXII server on a loopback port over a fresh database (both backends)."""
    with running_node(database_url) as running:
        yield running


@pytest.fixture
def sqlite_node(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Node]:
    """A real TAXII server over a fresh SQLite database only."""
    with running_node(fresh_database(request, "sqlite", tmp_path)) as running:
        yield running


from tests.federation_support import pair  # noqa: E402,F401  (two nodes, for the federation tests)
