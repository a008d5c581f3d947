"""The audit log: what is recorded, the hash chain, and `communique audit verify|show`."""

from __future__ import annotations

import json
import threading

import pytest
import requests
from sqlalchemy import delete, select, update

from communique import audit, timestamps
from communique.audit import Event
from communique.store import open_store, schema
from communique.store.engines import SqlStore
from communique.store.sql_audit import walk
from tests.cli_support import communique
from tests.support import TAXII, Node, indicator


def append(store: SqlStore, *events: Event) -> list[audit.Entry]:
    with store.write() as tx:
        return [tx.append_audit(event, now=timestamps.now_us()) for event in events]


def verdict(store: SqlStore) -> audit.Verdict:
    with store.read() as tx:
        return audit.verify(walk(tx), head=tx.audit_head())


def events(n: int) -> list[Event]:
    return [audit.Actor(f"user{i}@a.example", "Org A", "192.0.2.1").event(
        "objects.add", target=f"default/c{i}", added=i) for i in range(n)]


# -- the chain, pure ---------------------------------------------------------------------------
def test_seal_links_each_entry_to_the_one_before() -> None:
    """Each entry's hash covers its fields and the previous hash; the first follows GENESIS."""
    first = audit.seal(events(1)[0], seq=1, at=10, prev_hash=audit.GENESIS)
    second = audit.seal(events(2)[1], seq=2, at=11, prev_hash=first.hash)
    assert second.prev_hash == first.hash and len(first.hash) == 64
    assert audit.verify([first, second], head=(2, second.hash)).intact
    changed = audit.seal(Event("objects.add", "user0@a.example", "Org A", "default/c0",
                               "192.0.2.1", details={"added": 1}), seq=1, at=10,
                         prev_hash=audit.GENESIS)
    assert changed.hash != first.hash


# -- the chain in the store, both backends -----------------------------------------------------
def test_appends_chain_and_verify_passes(store: SqlStore) -> None:
    """Entries get consecutive numbers, each following the last; verify finds the chain intact."""
    written = append(store, *events(5))
    assert [e.seq for e in written][-5:] == list(range(written[0].seq, written[0].seq + 5))
    result = verdict(store)
    assert result.intact, result.problem
    with store.read() as tx:
        assert tx.audit_head() == (written[-1].seq, written[-1].hash)
        got = tx.audit_entries(actor="user3@a.example")
    assert [e.details for e in got] == [{"added": 3}]


@pytest.mark.parametrize("tamper, expected", [
    ("alter", "entry {n} was altered"),
    ("remove", "entry {n} is missing"),
    ("reorder", "entry {n} "),
    ("truncate", "the log ends at entry"),
])
def test_verify_names_the_first_broken_entry(store: SqlStore, tamper: str, expected: str) -> None:
    """Altering, removing, reordering or cutting off entries is caught, and where."""
    written = append(store, *events(6))
    a, target = schema.audit_log, written[2]
    with store.write() as tx:
        if tamper == "alter":
            tx.conn.execute(update(a).where(a.c.seq == target.seq).values(actor="someone@else"))
        elif tamper == "remove":
            tx.conn.execute(delete(a).where(a.c.seq == target.seq))
        elif tamper == "reorder":  # swap the contents of two neighbouring entries
            rows = {r.seq: r._asdict() for r in tx.conn.execute(select(a).where(
                a.c.seq.in_([target.seq, target.seq + 1])))}
            for seq, other in ((target.seq, target.seq + 1), (target.seq + 1, target.seq)):
                values = {k: v for k, v in rows[other].items() if k != "seq"}
                tx.conn.execute(update(a).where(a.c.seq == seq).values(**values))
        else:
            tx.conn.execute(delete(a).where(a.c.seq == written[-1].seq))
    result = verdict(store)
    assert not result.intact
    assert expected.format(n=target.seq) in result.problem


def test_concurrent_appends_keep_one_chain(store: SqlStore) -> None:
    """Writers appending at the same time still form one unbroken chain."""
    def worker(i: int) -> None:
        for event in events(10):
            append(store, Event(event.action, f"w{i}", "Org", event.target, "", "ok", {}))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result = verdict(store)
    assert result.intact, result.problem
    with store.read() as tx:
        assert sum(len(tx.audit_entries(actor=f"w{i}")) for i in range(4)) == 40


# -- what is recorded, over HTTP ---------------------------------------------------------------
def entries(node: Node, **filters: str) -> list[audit.Entry]:
    with node.store.read() as tx:
        return tx.audit_entries(limit=100_000, **filters)


def test_taxii_writes_deletes_and_refusals_are_recorded(node: Node) -> None:
    """POST, DELETE, a bad token, a forged cursor and an unknown object each leave an entry."""
    cert = node.member("CERT")
    collection = node.collection("Shared", read=("CERT",), write=("CERT",))
    obj = indicator(1)
    status = node.post(cert, collection, [obj, {"type": "nonsense"}])
    [added] = entries(node, action="objects.add")
    assert (added.actor, added.org, added.address) == (cert.email, "CERT", "127.0.0.1")
    assert added.details == {"status": status["id"], "added": 1, "duplicate": 0, "refused": 1}

    url = node.objects_url(collection)
    assert requests.delete(f"{url}{obj['id']}/", headers=cert.headers).status_code == 200
    [deleted] = entries(node, action="object.delete")
    assert deleted.target.endswith(obj["id"]) and deleted.details == {"versions": 1}

    bad = requests.get(url, headers={"Accept": TAXII, "Authorization": "Bearer cq_forged"})
    forged = requests.get(url, params={"next": "x" * 40}, headers=cert.headers)
    missing = requests.get(f"{url}indicator--6c5b2a7e-1d9f-4b1e-9a70-0e0c2b7a3f11/",
                           headers=cert.headers)
    assert (bad.status_code, forged.status_code, missing.status_code) == (401, 400, 404)
    [failure] = entries(node, action="auth.failure")
    assert failure.outcome == "refused" and failure.details["credentials"] == "presented"
    assert "cq_forged" not in json.dumps(failure.as_json())  # never a secret, not even a wrong one
    refused = entries(node, action="request.refused")
    assert [e.details["status"] for e in refused] == [400, 404]
    assert all(e.actor == cert.email for e in refused)
    assert verdict(node.store).intact


# -- the command line --------------------------------------------------------------------------
def test_cli_verify_and_show(database_url: str) -> None:
    """Operator actions are recorded; show filters them as JSON lines; verify exits 0, then 1."""
    for args in (("org", "add", "CERT"),
                 ("user", "add", "a@cert.example", "--org", "CERT", "--role", "analyst"),
                 ("token", "create", "a@cert.example"),
                 ("collection", "add", "Shared", "--alias", "shared", "--read", "CERT"),
                 ("export", "--collection", "shared", "--as", "a@cert.example")):
        run = communique(*args, database=database_url)
        assert run.code == 0, run.err
    run = communique("audit", "verify", database=database_url)
    assert run.code == 0 and "audit log intact: 5 entries" in run.out

    shown = communique("audit", "show", database=database_url).out.splitlines()
    actions = [json.loads(line)["action"] for line in shown]
    assert actions == ["org.add", "user.add", "token.create", "collection.add", "objects.export"]
    only = communique("audit", "show", "--user", "a@cert.example", database=database_url).out
    assert [json.loads(line)["action"] for line in only.splitlines()] == ["objects.export"]
    assert communique("audit", "show", "--action", "token.create", "--org", "nobody",
                      database=database_url).out == ""
    later = communique("audit", "show", "--since", "2999-01-01T00:00:00Z", database=database_url)
    assert later.code == 0 and later.out == ""
    assert communique("audit", "show", "--since", "yesterday", database=database_url).code == 1

    tampered = open_store(database_url)
    try:
        with tampered.write() as tx:
            tx.conn.execute(update(schema.audit_log).where(schema.audit_log.c.seq == 3).values(
                target="someone-else@cert.example"))
    finally:
        tampered.close()
    run = communique("audit", "verify", database=database_url)
    assert run.code == 1 and "entry 3 was altered" in run.err


def test_grant_changes_are_recorded(database_url: str) -> None:
    """`collection grant` changes an organisation's access, and the audit log says from what."""
    for args in (("org", "add", "CERT"), ("org", "add", "MFA"),
                 ("collection", "add", "Shared", "--alias", "shared", "--read", "CERT"),
                 ("collection", "grant", "shared", "--org", "MFA", "--read", "--write"),
                 ("collection", "grant", "shared", "--org", "CERT")):
        run = communique(*args, database=database_url)
        assert run.code == 0, run.err
    listed = communique("collection", "list", database=database_url).out
    assert "read: MFA" in listed and "write: MFA" in listed and "CERT" not in listed
    shown = communique("audit", "show", "--action", "grant.change", database=database_url).out
    changes = [json.loads(line)["details"] for line in shown.splitlines()]
    assert changes == [
        {"org_granted": "MFA", "read": True, "write": True, "before": None},
        {"org_granted": "CERT", "read": False, "write": False,
         "before": {"read": True, "write": False}},
    ]
    assert communique("collection", "grant", "shared", "--org", "Nobody",
                      database=database_url).code == 1
