"""Test support: real nodes on loopback ports, accounts, and STIX object factories."""

from __future__ import annotations

import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

import requests
import uvicorn

from communique import accounts
from communique.cli import add_collection
from communique.provenance.signatures import PROVENANCE_EXTENSION
from communique.settings import Settings
from communique.store import open_store
from communique.store.engines import SqlStore
from communique.web.app import create_app
from tests.pg import free_port

TAXII = "application/taxii+json;version=2.1"


@dataclass
class Member:
    """A user of a node, with an API token."""

    email: str
    org: str
    role: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Accept": TAXII, "Authorization": f"Bearer {self.token}"}


@dataclass
class Node:
    """A running node: its URL, its store, and helpers to set it up."""

    url: str
    store: SqlStore
    database_url: str
    settings: Settings
    _orgs: set[str] = field(default_factory=set)

    @property
    def root(self) -> str:
        return f"{self.url}/default"

    def org(self, name: str) -> str:
        if name not in self._orgs:
            accounts.add_organisation(self.store, name)
            self._orgs.add(name)
        return name

    def member(self, org: str, role: str = "analyst", email: str | None = None) -> Member:
        self.org(org)
        email = email or f"{role}-{uuid.uuid4().hex[:8]}@{org.lower().replace(' ', '-')}.example"
        accounts.add_user(self.store, email, org=org, role=role)
        token, _ = accounts.create_token(self.store, email)
        return Member(email, org, role, token)

    def collection(self, title: str = "Collection", *, read: tuple[str, ...] = (),
                   write: tuple[str, ...] = (), alias: str | None = None,
                   root: str = "default") -> str:
        for name in set(read) | set(write):
            self.org(name)
        return add_collection(self.store, title, root=root, alias=alias, read=read,
                              write=write).id

    def objects_url(self, collection_id: str, root: str = "default") -> str:
        return f"{self.url}/{root}/collections/{collection_id}/objects/"

    def session(self, member: Member) -> requests.Session:
        session = requests.Session()
        session.headers.update(member.headers)
        return session

    def post(self, member: Member, collection_id: str, objects: list[dict]) -> dict:
        """Add objects over TAXII; return the status resource (asserting 202)."""
        response = requests.post(self.objects_url(collection_id), json={"objects": objects},
                                 headers={**member.headers, "Content-Type": TAXII}, timeout=120)
        assert response.status_code == 202, response.text
        return response.json()


@contextmanager
def running_node(database_url: str, **overrides: Any) -> Iterator[Node]:
    """Serve a node over real HTTP on a free loopback port, in a background thread."""
    settings = Settings(database=database_url, **overrides)
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    store = open_store(database_url)
    try:
        yield Node(f"http://127.0.0.1:{port}", store, database_url, settings)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        store.close()


# -- signed objects ----------------------------------------------------------------------
def unsigned(obj: dict) -> dict:
    """Return a copy of ``obj`` without the node's provenance extension entry.

    A node signs what its own users submit, adding that one entry to ``extensions``;
    ``extensions`` goes too when nothing else is left in it. Compare ``unsigned(served)``
    with what was posted, and check ``is_signed(served)`` besides.
    """
    copy = dict(obj)
    extensions = copy.get("extensions")
    if isinstance(extensions, dict) and PROVENANCE_EXTENSION in extensions:
        rest = {name: value for name, value in extensions.items() if name != PROVENANCE_EXTENSION}
        if rest:
            copy["extensions"] = rest
        else:
            del copy["extensions"]
    return copy


# -- STIX object factories ---------------------------------------------------------------
def stix_id(stix_type: str) -> str:
    return f"{stix_type}--{uuid.uuid4()}"


def ts(second: int = 0, *, year: int = 2024) -> str:
    """A STIX timestamp ``second`` seconds into the given year (millisecond precision)."""
    minutes, seconds = divmod(second, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    return f"{year}-01-{1 + days:02d}T{hours:02d}:{minutes:02d}:{seconds:02d}.000Z"


def indicator(n: int = 0, *, id: str | None = None, created: str | None = None,
              modified: str | None = None, **extra: Any) -> dict:
    created = created or ts(0)
    obj = {"type": "indicator", "spec_version": "2.1", "id": id or stix_id("indicator"),
           "created": created, "modified": modified or created,
           "name": f"Indicator {n}", "indicator_types": ["malicious-activity"],
           "pattern": f"[ipv4-addr:value = '198.51.{n // 256 % 256}.{n % 256}']",
           "pattern_type": "stix", "valid_from": created}
    obj.update(extra)
    return obj


def malware(n: int = 0, *, id: str | None = None, created: str | None = None,
            modified: str | None = None) -> dict:
    created = created or ts(0)
    return {"type": "malware", "spec_version": "2.1", "id": id or stix_id("malware"),
            "created": created, "modified": modified or created, "name": f"Malware {n}",
            "is_family": True, "malware_types": ["backdoor"]}


def relationship(source: str, target: str, *, created: str | None = None) -> dict:
    created = created or ts(0)
    return {"type": "relationship", "spec_version": "2.1", "id": stix_id("relationship"),
            "created": created, "modified": created, "relationship_type": "indicates",
            "source_ref": source, "target_ref": target}


def ipv4(value: str) -> dict:
    return {"type": "ipv4-addr", "spec_version": "2.1",
            "id": f"ipv4-addr--{uuid.uuid5(uuid.NAMESPACE_URL, value)}", "value": value}


def marking_statement(text: str = "Copyright the authors") -> dict:
    return {"type": "marking-definition", "spec_version": "2.1",
            "id": stix_id("marking-definition"), "created": ts(0),
            "definition_type": "statement", "definition": {"statement": text}}
