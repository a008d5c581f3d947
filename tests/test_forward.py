"""Onward sharing: `communique forward` follows what TLP 2.0 lets a recipient do."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from communique.stix.markings import RECIPIENTS_EXTENSION, TLP1_IDS, TLP2_IDS, Tlp
from tests.cli_support import communique
from tests.support import indicator

ANALYST = "analyst@a.example"


def marked(n: int, level: Tlp | None, *, tlp1: bool = False) -> dict:
    refs = [] if level is None else [(TLP1_IDS if tlp1 else TLP2_IDS)[level]]
    return indicator(n, **({"object_marking_refs": refs} if refs else {}))


def cli(database: str, *args: str) -> str:
    run = communique(*args, database=database)
    assert run.code == 0, run.err
    return run.out


@pytest.fixture
def nodes(database_url: str, tmp_path: Path) -> str:
    """Orgs A, B, C; 'source' read by A and B, written by A; one object per level in it."""
    db = database_url
    for org in ("A", "B", "C"):
        cli(db, "org", "add", org)
    cli(db, "user", "add", ANALYST, "--org", "A", "--role", "analyst")
    cli(db, "collection", "add", "Source", "--alias", "source", "--read", "A", "--read", "B",
        "--write", "A")
    objects = [marked(i, level) for i, level in enumerate(Tlp)] + [marked(9, None)]
    objects[Tlp.RED]["extensions"] = {RECIPIENTS_EXTENSION: {
        "extension_type": "property-extension", "recipient_organizations": ["B"]}}
    path = tmp_path / "objects.json"
    path.write_bytes(orjson.dumps(objects))
    cli(db, "import", str(path), "--collection", "source", "--as", ANALYST)
    return db


def destination(db: str, alias: str, *, read: tuple[str, ...], public: bool = False,
                tlp_default: str | None = None) -> None:
    args = ["collection", "add", alias.title(), "--alias", alias, "--write", "A"]
    for org in read:
        args += ["--read", org]
    if public:
        args.append("--public")
    if tlp_default:
        args += ["--tlp-default", tlp_default]
    cli(db, *args)


def forward(db: str, to: str, *extra: str) -> tuple[int, set[str], str]:
    """Forward everything from 'source'; return exit code, forwarded names, refusals."""
    run = communique("forward", "--from", "source", "--to", to, "--as", ANALYST, *extra,
                     database=db)
    assert run.code in (0, 2), run.err
    exported = json.loads(cli(db, "export", "--collection", to, "--as", ANALYST))
    return run.code, {o["name"] for o in exported["objects"]}, run.err


def names(*levels: int) -> set[str]:
    return {f"Indicator {n}" for n in levels}


def test_own_private_collection_takes_all_but_red(nodes: str) -> None:
    """Into a collection only A reads: CLEAR to AMBER+STRICT and the unmarked (AMBER) object."""
    destination(nodes, "mine", read=("A",))
    code, got, err = forward(nodes, "mine")
    assert code == 2 and got == names(0, 1, 2, 3, 9)
    assert "TLP:RED is never forwarded" in err


def test_a_third_party_gets_clear_and_green_only(nodes: str) -> None:
    """C was never entitled: AMBER and AMBER+STRICT stop, GREEN goes (same community)."""
    destination(nodes, "with-c", read=("A", "C"))
    code, got, err = forward(nodes, "with-c")
    assert code == 2 and got == names(0, 1)
    assert "TLP:AMBER may go only where no one but organisations already entitled" in err
    assert "TLP:AMBER+STRICT may go only where no organisation but your own" in err


def test_entitled_organisations_may_share_amber_not_amber_strict(nodes: str) -> None:
    """A and B both read the source: AMBER may go where A and B read, AMBER+STRICT may not."""
    destination(nodes, "a-and-b", read=("A", "B"))
    code, got, _ = forward(nodes, "a-and-b")
    assert code == 2 and got == names(0, 1, 2, 9)


def test_public_collection_takes_clear_only(nodes: str) -> None:
    """Nothing but CLEAR reaches a public collection."""
    destination(nodes, "open", read=(), public=True)
    code, got, err = forward(nodes, "open")
    assert code == 2 and got == names(0)
    assert "TLP:GREEN may not go to a public collection" in err


def test_unmarked_object_is_not_downgraded(nodes: str) -> None:
    """An unmarked AMBER object would become GREEN under a GREEN default: refused."""
    destination(nodes, "greenish", read=("A",), tlp_default="green")
    code, got, err = forward(nodes, "greenish", "--type", "indicator")
    assert names(9).isdisjoint(got) and "mark it before forwarding" in err


def test_forward_needs_read_and_write(nodes: str) -> None:
    """The forwarder must read the source and write the destination; refusals are audited."""
    cli(nodes, "collection", "add", "Theirs", "--alias", "theirs", "--read", "C", "--write", "C")
    run = communique("forward", "--from", "source", "--to", "theirs", "--as", ANALYST,
                     database=nodes)
    assert run.code == 1
    shown = communique("audit", "show", "--action", "objects.forward", database=nodes).out
    assert json.loads(shown.splitlines()[-1])["outcome"] == "refused"


def test_forward_twice_reports_duplicates_and_is_audited(nodes: str) -> None:
    """Forwarding again adds nothing; every batch is in the audit log."""
    destination(nodes, "mine", read=("A",))
    forward(nodes, "mine")
    run = communique("forward", "--from", "source", "--to", "mine", "--as", ANALYST,
                     database=nodes)
    assert "0 forwarded, 5 already there, 1 refused" in run.out
    shown = communique("audit", "show", "--action", "objects.forward", database=nodes).out
    details = [json.loads(line) for line in shown.splitlines()]
    assert [d["forwarded"] for d in (e["details"] for e in details)] == [5, 0]
    assert all(e["actor"] == ANALYST and e["address"] == "cli" for e in details)
