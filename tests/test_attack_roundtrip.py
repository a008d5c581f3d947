"""MITRE ATT&CK Enterprise (STIX 2.0) through import and export: every object intact, valid 2.1."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from stix2validator import ValidationOptions, validate_instance

from communique import datasets
from communique.provenance.signatures import is_signed
from communique.stix import upgrade
from tests.cli_support import communique
from tests.support import unsigned

pytestmark = pytest.mark.slow


def round_trip(database: str) -> tuple[list[dict], list[dict]]:
    """Import the ATT&CK bundle with the CLI and export it; return (expected, exported)."""
    for args in (("init",), ("org", "add", "CERT"),
                 ("user", "add", "analyst@cert.example", "--org", "CERT", "--role", "analyst"),
                 ("collection", "add", "ATT&CK", "--alias", "attack", "--read", "CERT")):
        assert communique(*args, database=database).code == 0
    path = datasets.attack_enterprise()
    run = communique("import", str(path), "--collection", "attack", database=database)
    assert run.code == 0, run.err
    document = orjson.loads(Path(path).read_bytes())
    assert f"{len(document['objects'])} added, 0 duplicate, 0 refused" in run.out
    expected = list(upgrade.upgrade(document["objects"], document.get("spec_version")))
    exported = json.loads(communique("export", "--collection", "attack", "--as", "analyst@cert.example",
                                     database=database).out)
    assert exported["type"] == "bundle" and "spec_version" not in exported
    return expected, exported["objects"]


def test_every_object_survives_the_round_trip(database_url: str) -> None:
    """Each exported object equals its upgraded original, signed by the node that imported
    it, and nothing is lost or added."""
    expected, exported = round_trip(database_url)
    assert len(exported) == len(expected)
    by_id = {obj["id"]: obj for obj in exported}
    for original in expected:
        assert is_signed(by_id[original["id"]]), original["id"]
        assert unsigned(by_id[original["id"]]) == original


def test_export_is_valid_stix21(tmp_path: Path) -> None:
    """stix2-validator finds no error in the exported objects (its warnings are custom properties).

    Every object of every type is validated, except relationships, of which one
    in ten is: the validator takes several milliseconds per object, and the
    17,899 relationships of ATT&CK all have the same shape.
    """
    _, exported = round_trip(f"sqlite:///{tmp_path}/attack.db")
    options = ValidationOptions(version="2.1")
    relationships = [obj for obj in exported if obj["type"] == "relationship"]
    sample = [obj for obj in exported if obj["type"] != "relationship"] + relationships[::10]
    assert len(sample) > 3000
    invalid = {}
    for obj in sample:
        result = validate_instance(obj, options)
        if not result.is_valid:
            invalid[obj["id"]] = [str(e) for e in result.errors]
    assert invalid == {}
