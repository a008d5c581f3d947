"""Federation from the operator's side: the command line, the home page, keys, offline checks."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from sqlalchemy import update

from communique import accounts, node
from communique.provenance.signatures import PROVENANCE_EXTENSION, Status
from communique.settings import Settings
from communique.stix.markings import Tlp
from communique.store import schema
from tests.cli_support import communique
from tests.federation_support import A, B, Pair, marked
from tests.support import running_node
from tests.test_signin import PASSWORD, enrol


def cli(database: str, *args: str, code: int = 0) -> str:
    run = communique(*args, database=database)
    assert run.code == code, (run.out, run.err)
    return run.out + run.err


def key_command(database: str, verb: str, kid: str) -> str:
    """Run `key approve|revoke -- KID`: a key id may start with '-' (base64url), so `--`."""
    run = communique("key", verb, "--database", database, "--", kid)
    assert run.code == 0, (run.out, run.err)
    return run.out


def test_a_key_id_starting_with_a_dash_is_taken_after_double_dash(pair: Pair) -> None:
    from communique import timestamps
    from communique.store.base import PublicKey

    with pair.a.store.write() as tx:
        tx.put_key(PublicKey("-Dash-kid", "identity--0b6a4d3e-5d4e-4d7b-9a51-2f6f3c9f7a10",
                             "x" * 43, "pending", "peer b", timestamps.now_us()))
    assert "is now trusted" in key_command(pair.a.database_url, "approve", "-Dash-kid")
    assert "is revoked" in key_command(pair.a.database_url, "revoke", "-Dash-kid")


def test_peer_commands_add_sync_report_and_remove(pair: Pair) -> None:
    db = pair.a.database_url
    pair.b.post(pair.writer, pair.intel, [marked(i, Tlp.GREEN) for i in range(5)])
    out = cli(db, "peer", "add", "b", "--url", f"{pair.b.root}/", "--token-file",
              str(pair.token_file), "--pull", "intel=from-b", "--every", "2m",
              "--max-tlp", "amber", "--org", B, "--as", A)
    kid = node.signer(pair.b.store, pair.b.settings).key.kid
    assert f"fingerprint {kid}" in out
    assert "pull\tintel -> from-b" in cli(db, "peer", "list")
    assert "5 pulled, 0 already there, 0 refused" in cli(db, "peer", "sync", "b")
    [state] = [json.loads(line) for line in cli(db, "peer", "status", "--json").splitlines()]
    assert state["moved"] == 5 and state["last_error"] is None and state["lag_seconds"] >= 0
    assert "trusted" in cli(db, "key", "list") and kid in cli(db, "key", "list")
    cli(db, "peer", "remove", "b")
    assert cli(db, "peer", "list") == ""
    with pair.a.store.read() as tx:
        actions = {e.action for e in tx.audit_entries(limit=1000)}
    assert {"peer.add", "key.pin", "sync.pull", "peer.remove"} <= actions


def test_peer_add_refuses_bad_input(pair: Pair) -> None:
    db = pair.a.database_url
    base = ["peer", "add", "b", "--token-file", str(pair.token_file), "--org", B, "--as", A]
    assert "TAXII API root URL" in cli(db, *base, "--url", "ftp://x/", "--pull", "intel=from-b",
                                       code=1)
    assert "expected REMOTE=LOCAL" in cli(db, *base, "--url", f"{pair.b.root}/", "--pull",
                                          "intel", code=1)
    assert "no local collection" in cli(db, *base, "--url", f"{pair.b.root}/", "--pull",
                                        "intel=nowhere", code=1)
    assert "RED never" in cli(db, *base, "--url", f"{pair.b.root}/", "--pull", "intel=from-b",
                              "--max-tlp", "red", code=2)
    assert "is not a duration" in cli(db, *base, "--url", f"{pair.b.root}/", "--pull",
                                      "intel=from-b", "--every", "soon", code=2)
    assert "could not be reached" in cli(db, *base, "--url", "http://127.0.0.1:9/default/",
                                         "--pull", "intel=from-b", code=1)


def test_failures_are_visible_in_status_and_on_the_home_page(pair: Pair) -> None:
    pair.add_peer()
    pair.token_file.write_text("")  # the token is gone: every run fails, visibly
    [run] = pair.sync()
    assert run.error and "does not hold a token" in run.error
    out = cli(pair.a.database_url, "peer", "status", "b")
    assert "last error (1 in a row)" in out and "never synchronised" in out
    admin = pair.a.member(A, role="admin").email
    accounts.set_password(pair.a.store, admin, PASSWORD)
    browser, _, _ = enrol(pair.a, admin)
    page = browser.get(f"{pair.a.url}/web/").text
    assert 'id="peers"' in page and "does not hold a token" in page


def test_verify_checks_a_bundle_offline(pair: Pair, tmp_path: Path) -> None:
    """Objects signed by B verify with B's identity; a changed one is invalid (exit 1)."""
    pair.b.post(pair.writer, pair.intel, [marked(i, Tlp.GREEN) for i in range(3)])
    reader = pair.b.member(B)
    bundle = cli(pair.b.database_url, "export", "--collection", "intel", "--as", reader.email)
    identity = tmp_path / "b.json"
    identity.write_text(cli(pair.b.database_url, "identity").split("\nfingerprint")[0])
    path = tmp_path / "bundle.json"
    path.write_text(bundle)
    none = tmp_path / "none.db"
    assert "3 verified" in cli(f"sqlite:///{none}", "verify", str(path), "--identity",
                               str(identity))
    assert "3 unknown signer" in cli(f"sqlite:///{none}", "verify", str(path))
    data = json.loads(bundle)
    data["objects"][0]["name"] = "changed"
    path.write_text(json.dumps(data))
    out = cli(f"sqlite:///{none}", "verify", str(path), "--identity", str(identity), code=1)
    assert "invalid" in out and data["objects"][0]["id"] in out


def test_a_changed_peer_key_waits_for_approval(pair: Pair) -> None:
    """B's new key is held as pending: its objects count as unknown signer until approved."""
    pair.add_peer()
    pair.b.post(pair.writer, pair.intel, [marked(1, Tlp.GREEN)])
    pair.sync()
    settings = Settings(database=pair.b.database_url)
    node.signing_key_path(settings).unlink()
    node.provision(pair.b.store, settings, rotate_key=True)  # a new key pair for B
    with running_node(pair.b.database_url) as moved_b:
        with pair.a.store.write() as tx:
            tx.conn.execute(update(schema.peers).values(url=f"{moved_b.root}/"))
        moved_b.post(pair.writer, pair.intel, [marked(2, Tlp.GREEN)])
        [run] = pair.sync()
        assert run.error is None
        statuses = sorted(s[2] for s in pair.stored_on_a())
        assert statuses == [Status.VERIFIED, Status.UNKNOWN_SIGNER]
        listing = cli(pair.a.database_url, "key", "list")
        pending = [line.split("\t")[1] for line in listing.splitlines() if line.startswith("pending")]
        assert len(pending) == 1
        key_command(pair.a.database_url, "approve", pending[0])
        moved_b.post(pair.writer, pair.intel, [marked(3, Tlp.GREEN)])
        pair.sync()
        assert sorted(s[2] for s in pair.stored_on_a()).count(Status.VERIFIED) == 2
    with pair.a.store.read() as tx:
        actions = {e.action for e in tx.audit_entries(limit=1000)}
    assert {"key.pending", "key.approve"} <= actions


def test_signed_objects_keep_their_signature_and_local_ones_are_signed(pair: Pair) -> None:
    """A user's object is signed by its node; posting B's signed object to A keeps B's signature."""
    pair.b.post(pair.writer, pair.intel, [marked(1, Tlp.GREEN)])
    served = orjson.loads(__import__("requests").get(
        pair.b.objects_url(pair.intel), headers=pair.writer.headers).content)["objects"][0]
    entry = served["extensions"][PROVENANCE_EXTENSION]
    assert entry["signed_by"] == node.signer(pair.b.store, pair.b.settings).identity_id
    pair.add_peer()  # pins B's key on A
    author = pair.a.member(A)
    own = pair.a.collection("Own", read=(A,), write=(A,), alias="own")
    pair.a.post(author, own, [served])
    again = orjson.loads(__import__("requests").get(
        pair.a.objects_url(own), headers=author.headers).content)["objects"][0]
    assert again == served


def test_objects_added_on_the_home_page_are_signed(pair: Pair) -> None:
    """The web is a third way in: pasted objects are validated, checked and signed alike."""
    from tests.test_signin import csrf_of

    analyst = pair.a.member(A)
    accounts.set_password(pair.a.store, analyst.email, PASSWORD)
    own = pair.a.collection("Own", read=(A,), write=(A,), alias="own")
    browser, _, _ = enrol(pair.a, analyst.email)
    page = browser.get(f"{pair.a.url}/web/").text
    assert 'id="add-objects"' in page
    good, bad = marked(1, Tlp.GREEN), {"type": "indicator", "id": "nonsense"}
    answer = browser.post(f"{pair.a.url}/web/objects", data={
        "csrf": csrf_of(page), "collection": f"default/{own}",
        "objects": json.dumps([good, bad])})
    assert answer.status_code == 200
    assert "1 stored" in answer.text and "1 refused" in answer.text
    served = __import__("requests").get(pair.a.objects_url(own), headers=analyst.headers).json()
    [stored] = served["objects"]
    assert stored["extensions"][PROVENANCE_EXTENSION]["signed_by"] == \
        node.signer(pair.a.store, pair.a.settings).identity_id
    refused = browser.post(f"{pair.a.url}/web/objects", data={
        "csrf": "wrong", "collection": f"default/{own}", "objects": json.dumps([good])})
    assert refused.status_code == 403


def test_token_files_and_plain_http_are_checked(pair: Pair) -> None:
    """A token file others may read is refused, and so is http:// beyond this machine."""
    db = pair.a.database_url
    base = ["peer", "add", "b", "--pull", "intel=from-b", "--org", B, "--as", A]
    pair.token_file.chmod(0o644)
    assert "may be read by others" in cli(db, *base, "--url", f"{pair.b.root}/",
                                          "--token-file", str(pair.token_file), code=1)
    pair.token_file.chmod(0o600)
    assert "travel in clear" in cli(db, *base, "--url", "http://peer.example/default/",
                                    "--token-file", str(pair.token_file), code=1)
    assert "pinned key" in cli(db, *base, "--url", f"{pair.b.root}/", "--token-file",
                               str(pair.token_file))


@pytest.mark.parametrize("pages", [0, 1, 3])
def test_killing_peer_sync_at_any_moment_loses_and_duplicates_nothing(pair: Pair,
                                                                      pages: int) -> None:
    """`communique peer sync` is killed (SIGKILL) once ``pages`` pages are stored (0: as it
    starts); the next run completes the set, each version once."""
    import os
    import signal
    import subprocess
    import sys
    import time

    objects = [marked(i, Tlp.GREEN) for i in range(6000)]
    for start in range(0, len(objects), 1000):
        pair.b.post(pair.writer, pair.intel, objects[start:start + 1000])
    pair.add_peer()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMMUNIQUE_")}
    command = [str(Path(sys.executable).parent / "communique"), "peer", "sync", "b",
               "--database", pair.a.database_url]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while pages and len(pair.stored_on_a()) < pages * 1000 and time.monotonic() < deadline \
            and process.poll() is None:
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    partial = len(pair.stored_on_a())
    assert partial < 6000, "the run ended before it could be killed"
    assert f"{6000 - partial} pulled" in cli(pair.a.database_url, "peer", "sync", "b")
    stored = pair.stored_on_a()
    assert len(stored) == 6000 == len({s[0] for s in stored}), partial
    assert {s[2] for s in stored} == {Status.VERIFIED}


def test_a_retired_key_still_verifies_and_a_revoked_one_never(pair: Pair) -> None:
    """After B's key is replaced (and approved), what B signed before still verifies here;
    once an administrator revokes that old key, nothing it signed verifies any more."""
    from communique.provenance import signatures

    pair.b.post(pair.writer, pair.intel, [marked(1, Tlp.GREEN)])
    pair.add_peer()
    pair.sync()
    old = node.signer(pair.b.store, pair.b.settings)
    [stored] = [orjson.loads(r) for r in _bodies(pair)]
    settings = Settings(database=pair.b.database_url)
    node.signing_key_path(settings).unlink()
    node.provision(pair.b.store, settings, rotate_key=True)
    with running_node(pair.b.database_url) as moved_b:
        with pair.a.store.write() as tx:
            tx.conn.execute(update(schema.peers).values(url=f"{moved_b.root}/"))
        pair.sync()
    new = node.signer(pair.b.store, pair.b.settings).key.kid
    key_command(pair.a.database_url, "approve", new)
    assert f"retired\t{old.key.kid}" in cli(pair.a.database_url, "key", "list")
    ring = node.keyring(pair.a.store)
    assert signatures.verify(stored, ring).status is Status.VERIFIED
    key_command(pair.a.database_url, "revoke", old.key.kid)
    assert signatures.verify(stored, node.keyring(pair.a.store)).status is Status.UNKNOWN_SIGNER
    with pair.a.store.read() as tx:
        assert "key.revoke" in {e.action for e in tx.audit_entries(limit=1000)}


def _bodies(pair: Pair) -> list[bytes]:
    from communique import access
    from communique.taxii import filters
    from communique.taxii.filters import Query

    with pair.a.store.read() as tx:
        target = tx.get_collection("default", pair.from_b)
        assert target is not None
        page = tx.list_objects(target.id, Query(limit=100, versions=filters.ALL_VERSIONS),
                               visibility=access.operator_view(target), after=None)
    return [r.body or b"" for r in page.records]
