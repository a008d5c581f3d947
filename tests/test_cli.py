"""The command line, run in a subprocess against both backends."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from communique import accounts
from communique.store import open_store
from tests.cli_support import communique
from tests.support import indicator, ipv4, malware, ts


def setup_collection(database: str) -> str:
    """Create an organisation, a user and a collection; return the collection id."""
    assert communique("org", "add", "National CERT", database=database).code == 0
    assert communique("user", "add", "analyst@cert.example", "--org", "National CERT",
                      "--role", "analyst", database=database).code == 0
    run = communique("collection", "add", "Shared", "--alias", "shared", "--read", "National CERT",
                     "--write", "National CERT", database=database)
    assert run.code == 0, run.err
    return run.last_line


def write_json(path: Path, document: object) -> str:
    path.write_bytes(orjson.dumps(document))
    return str(path)


def test_init_is_idempotent(database_url: str) -> None:
    """`init` can run on an initialised database again and again."""
    for _ in range(2):
        run = communique("init", database=database_url, separate_process=True)
        assert run.code == 0, run.err
        assert "database ready" in run.out


def test_database_from_environment(tmp_path: Path) -> None:
    """COMMUNIQUE_DATABASE stands in for --database."""
    url = f"sqlite:///{tmp_path}/env.db"
    env = {"COMMUNIQUE_DATABASE": url}
    assert communique("init", env=env).code == 0
    assert communique("org", "add", "Ministry", env=env).code == 0
    assert communique("org", "list", database=url).out.split("\n")[0] == "Ministry"


def test_errors_are_one_line_without_traceback(database_url: str) -> None:
    """A refused command exits non-zero with a one-line message and no traceback."""
    assert communique("org", "add", "CERT", database=database_url).code == 0
    run = communique("org", "add", "CERT", database=database_url, separate_process=True)
    assert run.code == 1
    assert run.err.startswith("error: ") and "already exists" in run.err
    assert "Traceback" not in run.err
    run = communique("user", "add", "a@b.example", "--org", "Nobody", "--role", "reader",
                     database=database_url)
    assert run.code == 1 and "no organisation" in run.err
    run = communique("user", "add", "a@b.example", "--org", "CERT", "--role", "king",
                     database=database_url)
    assert run.code == 2 and "Traceback" not in run.err


def test_uninitialised_database_is_reported(tmp_path: Path) -> None:
    """A command on a database without schema says to run init, and serving refuses to start."""
    url = f"sqlite:///{tmp_path}/empty.db"
    run = communique("serve", "--port", "1", database=url)
    assert run.code == 1 and "communique init" in run.err
    run = communique("org", "add", "CERT", database=url)
    assert run.code == 1 and "communique init" in run.err and "Traceback" not in run.err


def test_token_create_prints_token_last_and_it_works(database_url: str) -> None:
    """The token is alone on the last line, authenticates, and is listed only by prefix."""
    setup_collection(database_url)
    run = communique("token", "create", "analyst@cert.example", "--expires-days", "5",
                     database=database_url)
    assert run.code == 0, run.err
    token = run.last_line
    assert token.startswith("cq_") and " " not in token
    store = open_store(database_url)
    try:
        principal = accounts.authenticate(store, token)
        assert principal.email == "analyst@cert.example" and principal.org_name == "National CERT"
    finally:
        store.close()
    listing = communique("token", "list", database=database_url)
    assert token not in listing.out and token[:10] in listing.out and "active" in listing.out


def test_token_revoke(database_url: str) -> None:
    """A revoked token no longer authenticates; revoking twice is an error."""
    setup_collection(database_url)
    token = communique("token", "create", "analyst@cert.example", database=database_url).last_line
    token_id = communique("token", "list", database=database_url).out.split("\t")[0]
    assert communique("token", "revoke", token_id, database=database_url).code == 0
    assert communique("token", "revoke", token_id, database=database_url).code == 1
    store = open_store(database_url)
    try:
        with pytest.raises(Exception, match="not valid"):
            accounts.authenticate(store, token)
    finally:
        store.close()
    assert "revoked" in communique("token", "list", database=database_url).out


def test_collection_add_prints_id_and_grants(database_url: str) -> None:
    """`collection add` prints the id last; `collection list` shows the grants."""
    collection_id = setup_collection(database_url)
    assert len(collection_id) == 36
    assert communique("org", "add", "Partner", database=database_url).code == 0
    second = communique("collection", "add", "Partner feed", "--root", "partners",
                        "--read", "Partner", "--read", "National CERT", "--write", "Partner",
                        database=database_url)
    assert second.code == 0
    listing = communique("collection", "list", database=database_url).out
    assert collection_id in listing and "/partners/" in listing
    line = next(l for l in listing.splitlines() if "Partner feed" in l)
    assert "read: National CERT,Partner" in line and "write: Partner" in line
    bad = communique("collection", "add", "X", "--root", "Bad Root", database=database_url)
    assert bad.code == 1 and "--root" in bad.err


def test_import_bundle_then_reimport_counts_duplicates(database_url: str, tmp_path: Path) -> None:
    """Import reports added, then duplicates on a second run."""
    collection_id = setup_collection(database_url)
    objects = [indicator(i) for i in range(30)] + [malware(1), ipv4("203.0.113.9")]
    path = write_json(tmp_path / "bundle.json", {"type": "bundle", "id": "bundle--0b2b3c6e-47d5-4e1c-9a56-9b1b2f3c4d5e", "objects": objects})
    run = communique("import", path, "--collection", collection_id, database=database_url)
    assert run.code == 0, run.err
    assert "32 objects read: 32 added, 0 duplicate, 0 refused" in run.out
    run = communique("import", path, "--collection", "shared", database=database_url)
    assert "0 added, 32 duplicate, 0 refused" in run.out


def test_import_stix20_bundle_is_upgraded(database_url: str, tmp_path: Path) -> None:
    """A STIX 2.0 bundle is upgraded to 2.1 and stored."""
    setup_collection(database_url)
    old = {"type": "bundle", "id": "bundle--5d0092c5-5f74-4287-9642-33f4c354e56d",
           "spec_version": "2.0", "objects": [
               {"type": "malware", "id": "malware--31b940d4-6f7f-459a-80ea-9c1f17b58abc",
                "created": ts(0), "modified": ts(0), "name": "Cryptolocker",
                "labels": ["ransomware"]},
               {"type": "indicator", "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
                "created": ts(0), "modified": ts(0), "labels": ["malicious-activity"],
                "pattern": "[file:hashes.'MD5' = 'd41d8cd98f00b204e9800998ecf8427e']",
                "valid_from": ts(0)}]}
    run = communique("import", write_json(tmp_path / "old.json", old), database=database_url)
    assert run.code == 0, run.err + run.out
    assert "2 added" in run.out
    exported = json.loads(communique("export", "--collection", "shared", "--as", "analyst@cert.example", database=database_url).out)
    by_type = {o["type"]: o for o in exported["objects"]}
    assert by_type["malware"]["spec_version"] == "2.1"
    assert by_type["malware"]["malware_types"] == ["ransomware"] and by_type["malware"]["is_family"]
    assert by_type["indicator"]["indicator_types"] == ["malicious-activity"]
    assert by_type["indicator"]["pattern_type"] == "stix"


def test_import_list_from_stdin_reports_refusals(database_url: str) -> None:
    """A JSON list on standard input imports; bad objects are refused with reasons (exit 2)."""
    setup_collection(database_url)
    bad = indicator(1, pattern="[ipv4-addr:value = ")
    objects = [indicator(2), bad, {"type": "malware"}, malware(3)]
    run = communique("import", "-", database=database_url, stdin=orjson.dumps(objects),
                     separate_process=True)
    assert run.code == 2
    assert "4 objects read: 2 added, 0 duplicate, 2 refused" in run.out
    assert bad["id"] in run.err and "pattern" in run.err


def test_import_rejects_a_file_that_is_not_stix(database_url: str, tmp_path: Path) -> None:
    """Not JSON, or JSON of another shape, is an error, and nothing is stored."""
    setup_collection(database_url)
    path = tmp_path / "broken.json"
    path.write_text('{"type": "bundle", "objects": [')
    run = communique("import", str(path), database=database_url)
    assert run.code == 1 and "not valid JSON" in run.err
    path.write_text('{"hello": "world"}')
    assert communique("import", str(path), database=database_url).code == 1
    exported = json.loads(communique("export", "--collection", "shared", "--as", "analyst@cert.example", database=database_url).out)
    assert exported["objects"] == []


def test_import_needs_a_collection_when_several_exist(database_url: str, tmp_path: Path) -> None:
    """Without --collection the only collection is used; with several, one must be named."""
    setup_collection(database_url)
    communique("collection", "add", "Second", database=database_url)
    path = write_json(tmp_path / "one.json", [indicator(0)])
    run = communique("import", path, database=database_url)
    assert run.code == 1 and "--collection" in run.err


def test_export_filters_types_and_versions(database_url: str, tmp_path: Path) -> None:
    """Export writes a 2.1 bundle; --type filters; --all-versions includes older versions."""
    setup_collection(database_url)
    first = indicator(1, created=ts(0), modified=ts(0))
    second = dict(first, modified=ts(60), name="Renamed")
    path = write_json(tmp_path / "objects.json", [first, second, malware(1)])
    assert communique("import", path, database=database_url).code == 0
    latest = json.loads(communique("export", "--collection", "shared", "--as", "analyst@cert.example", "--type", "indicator",
                                   database=database_url).out)
    assert latest["type"] == "bundle" and latest["id"].startswith("bundle--")
    assert [o["name"] for o in latest["objects"]] == ["Renamed"]
    every = json.loads(communique("export", "--collection", "shared", "--as", "analyst@cert.example", "--all-versions",
                                  database=database_url).out)
    assert len(every["objects"]) == 3
