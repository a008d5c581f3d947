"""Two real nodes on loopback for the federation tests: B holds 'intel', A pulls it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from communique import access
from communique.stix.markings import TLP2_IDS, Tlp
from communique.sync import engine, peers
from communique.sync.peers import Mapping
from communique.taxii import filters
from communique.taxii.filters import Query
from tests.conftest import BACKENDS, fresh_database
from tests.support import Member, Node, indicator, running_node

A, B = "CERT-A", "CERT-B"


def marked(n: int, level: Tlp | None) -> dict:
    return indicator(n, **({"object_marking_refs": [TLP2_IDS[level]]} if level is not None else {}))


@dataclass
class Pair:
    """Node B holds 'intel'; node A pulls it into 'from-b', which only CERT-A reads."""

    a: Node
    b: Node
    writer: Member        # CERT-B analyst on B
    token_file: Path      # CERT-A's token on B
    intel: str
    from_b: str

    def add_peer(self, **extra: object) -> peers.Added:
        options = dict(name="b", url=f"{self.b.root}/", token_file=str(self.token_file),
                       pulls=[Mapping(self.intel, self.from_b)], pushes=[], every_seconds=60,
                       max_tlp=Tlp.AMBER_STRICT, org=B, as_org=A)
        options.update(extra)
        return peers.add_peer(self.a.store, **options)  # type: ignore[arg-type]

    def sync(self, options: engine.Options = engine.Options()) -> list[engine.LinkRun]:
        with self.a.store.read() as tx:
            peer = tx.find_peer("b")
        assert peer is not None
        return engine.sync_peer(self.a.store, peer, options)

    def stored_on_a(self) -> list[tuple[str, int, int]]:
        """Every stored version in 'from-b': (id, version, signature status)."""
        with self.a.store.read() as tx:
            target = tx.get_collection("default", self.from_b)
            assert target is not None
            page = tx.list_objects(target.id, Query(limit=1_000_000, versions=filters.ALL_VERSIONS),
                                   visibility=access.operator_view(target), after=None)
        return [(r.stix_id, r.version, r.signature) for r in page.records]


@pytest.fixture(params=BACKENDS)
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Pair]:
    with running_node(fresh_database(request, request.param, tmp_path)) as a, \
            running_node(fresh_database(request, request.param, tmp_path)) as b:
        for org in (A, B):
            a.org(org)
            b.org(org)
        intel = b.collection("Intel", read=(A, B), write=(B,), alias="intel")
        from_b = a.collection("From B", read=(A,), alias="from-b")
        writer = b.member(B)
        puller = b.member(A, role="reader")
        token_file = tmp_path / "b.token"
        token_file.write_text(puller.token + "\n")
        token_file.chmod(0o600)
        yield Pair(a, b, writer, token_file, intel, from_b)
