"""STIX 2.0 → 2.1 upgrade (stix/upgrade.py), so public 2.0 bundles load as 2.1."""

from __future__ import annotations

import copy

import pytest

from communique.errors import BadRequest
from communique.stix.upgrade import is_stix20, objects_of, upgrade, upgrade_object
from communique.stix.validate import validate
from tests.support import indicator, ipv4, malware

IDENTITY = "identity--c78cb6e5-0c4b-4611-8297-d1b8b55e40b5"
TLP_AMBER = "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82"
CREATED = "2017-05-31T21:30:19.735Z"
MODIFIED = "2018-10-17T00:14:20.652Z"


def stix20(stix_type: str, uuid: str, **properties: object) -> dict:
    """Return a STIX 2.0 SDO as ATT&CK-era bundles write it (no spec_version)."""
    return {"type": stix_type, "id": f"{stix_type}--{uuid}", "created": CREATED,
            "modified": MODIFIED, "created_by_ref": IDENTITY,
            "object_marking_refs": [TLP_AMBER], **properties}


INDICATOR_20 = stix20("indicator", "8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
                      labels=["malicious-activity"], valid_from=CREATED,
                      pattern="[file:hashes.'SHA-256' = '" + "e" * 64 + "']")
MALWARE_20 = stix20("malware", "b42378e0-f147-496f-992a-26a49705395b", name="PoisonIvy",
                    labels=["remote-access-trojan"],
                    external_references=[{"source_name": "mitre-attack", "external_id": "S0012"}],
                    x_mitre_platforms=["Windows"])
TOOL_20 = stix20("tool", "ff6840c9-4c87-4d07-bbb6-9f50aa33d498", name="at", labels=["tool"])
THREAT_ACTOR_20 = stix20("threat-actor", "56f3f0db-b5d5-431c-ae56-c18f02caf500",
                         name="Fancy Cat", labels=["nation-state"])
REPORT_20 = stix20("report", "84e4d88f-44ea-4bcd-bbf3-b2c1c320bcb3", name="Report",
                   labels=["threat-report"], published=MODIFIED,
                   object_refs=["malware--b42378e0-f147-496f-992a-26a49705395b"])
ATTACK_PATTERN_20 = stix20("attack-pattern", "7e150503-88e7-4861-866b-ff1ac82c4475",
                           name="Port Knocking",
                           kill_chain_phases=[{"kill_chain_name": "mitre-attack",
                                               "phase_name": "defense-evasion"}],
                           x_mitre_version="1.0")
RELATIONSHIP_20 = stix20("relationship", "0be6b6f4-1a24-4d46-9e2a-3e8bc3e3f9d0",
                         relationship_type="uses",
                         source_ref="malware--b42378e0-f147-496f-992a-26a49705395b",
                         target_ref="attack-pattern--7e150503-88e7-4861-866b-ff1ac82c4475")
IDENTITY_20 = {"type": "identity", "id": IDENTITY, "created": CREATED, "modified": CREATED,
               "name": "The MITRE Corporation", "identity_class": "organization"}
MARKING_20 = {"type": "marking-definition", "id": TLP_AMBER, "created": "2017-01-20T00:00:00.000Z",
              "definition_type": "tlp", "definition": {"tlp": "amber"}}
CUSTOM_20 = stix20("x-mitre-tactic", "4ca45d45-df4d-4613-8980-bac22d278fa5",
                   name="Defense Evasion", x_mitre_shortname="defense-evasion")

EXAMPLES_20 = [INDICATOR_20, MALWARE_20, TOOL_20, THREAT_ACTOR_20, REPORT_20, ATTACK_PATTERN_20,
               RELATIONSHIP_20, IDENTITY_20, MARKING_20, CUSTOM_20]


def bundle20(*objects: dict) -> dict:
    """Return a STIX 2.0 bundle of ``objects``."""
    return {"type": "bundle", "id": "bundle--1f1e9e0a-3c49-4b15-8d0d-0cbf3b5b1b0b",
            "spec_version": "2.0", "objects": list(objects)}


@pytest.mark.parametrize("obj", EXAMPLES_20, ids=lambda o: o["type"])
def test_spec_version_is_set(obj: dict) -> None:
    """Give every upgraded object spec_version 2.1."""
    assert upgrade_object(obj)["spec_version"] == "2.1"


@pytest.mark.parametrize("obj, target", [
    (INDICATOR_20, "indicator_types"), (MALWARE_20, "malware_types"), (TOOL_20, "tool_types"),
    (THREAT_ACTOR_20, "threat_actor_types"), (REPORT_20, "report_types"),
], ids=lambda value: value if isinstance(value, str) else value["type"])
def test_labels_become_typed_vocabularies(obj: dict, target: str) -> None:
    """Move the 2.0 labels to the 2.1 open vocabulary property of each type."""
    new = upgrade_object(obj)
    assert new[target] == obj["labels"]
    assert "labels" not in new


@pytest.mark.parametrize("obj", [ATTACK_PATTERN_20, IDENTITY_20, CUSTOM_20], ids=lambda o: o["type"])
def test_labels_of_other_types_stay(obj: dict) -> None:
    """Keep labels where 2.1 kept them."""
    new = upgrade_object({**obj, "labels": ["keep"]})
    assert new["labels"] == ["keep"]


def test_existing_typed_vocabulary_is_not_overwritten() -> None:
    """Leave labels alone when the 2.1 property is already there."""
    new = upgrade_object({**MALWARE_20, "malware_types": ["worm"]})
    assert new["malware_types"] == ["worm"] and new["labels"] == ["remote-access-trojan"]


def test_malware_becomes_a_family() -> None:
    """Give 2.0 malware (which described families) is_family true."""
    assert upgrade_object(MALWARE_20)["is_family"] is True
    assert upgrade_object({**MALWARE_20, "is_family": False})["is_family"] is False


def test_indicator_gets_pattern_type() -> None:
    """Give 2.0 indicators pattern_type stix, the only language 2.0 had."""
    assert upgrade_object(INDICATOR_20)["pattern_type"] == "stix"


def test_upgrade_keeps_everything_else() -> None:
    """Keep custom and unrelated properties, and leave the input untouched."""
    original = copy.deepcopy(MALWARE_20)
    new = upgrade_object(MALWARE_20)
    assert MALWARE_20 == original
    for name in ("id", "created", "modified", "name", "created_by_ref", "object_marking_refs",
                 "external_references", "x_mitre_platforms"):
        assert new[name] == MALWARE_20[name]


@pytest.mark.parametrize("obj", EXAMPLES_20, ids=lambda o: o["type"])
def test_upgraded_examples_pass_validation(obj: dict) -> None:
    """Make each upgraded 2.0 example a valid 2.1 object."""
    checked = validate(upgrade_object(obj))
    assert checked.spec_version == "2.1" and checked.id == obj["id"]


def test_upgraded_bundle_passes_validation() -> None:
    """Upgrade a whole 2.0 bundle into objects that all validate."""
    objects, version = objects_of(bundle20(*EXAMPLES_20))
    upgraded = list(upgrade(objects, version))
    assert len(upgraded) == len(EXAMPLES_20)
    for obj in upgraded:
        validate(obj)


@pytest.mark.parametrize("obj", [indicator(), malware(), ipv4("198.51.100.9"),
                                 {"type": "ipv4-addr", "id": ipv4("198.51.100.10")["id"],
                                  "value": "198.51.100.10"}],
                         ids=["indicator-2.1", "malware-2.1", "sco-2.1", "sco-without-spec-version"])
def test_stix21_passes_unchanged(obj: dict) -> None:
    """Pass STIX 2.1 objects and SCOs through as the very same objects."""
    assert not is_stix20(obj, None)
    assert list(upgrade([obj], None))[0] is obj


def test_objects_marked_2_0_are_upgraded_whatever_the_bundle_says() -> None:
    """Upgrade an object that says spec_version 2.0 itself."""
    obj = {**INDICATOR_20, "spec_version": "2.0"}
    assert is_stix20(obj, None)
    assert list(upgrade([obj], None))[0]["spec_version"] == "2.1"


def test_sdo_without_spec_version_is_2_0() -> None:
    """Read an SDO without spec_version as 2.0 (2.1 requires the property)."""
    assert is_stix20(INDICATOR_20, None)
    assert is_stix20(INDICATOR_20, "2.0")


def test_non_objects_pass_through_upgrade() -> None:
    """Leave non-objects for validation to refuse, rather than failing the upgrade."""
    assert list(upgrade([5, "x", None, [1]], "2.0")) == [5, "x", None, [1]]


# -- objects_of ----------------------------------------------------------------------------
def test_objects_of_a_2_0_bundle() -> None:
    """Return a 2.0 bundle's objects and its spec_version."""
    assert objects_of(bundle20(INDICATOR_20, MALWARE_20)) == ([INDICATOR_20, MALWARE_20], "2.0")


def test_objects_of_a_2_1_bundle() -> None:
    """Return a 2.1 bundle's objects, with no bundle version (2.1 bundles carry none)."""
    objs = [indicator(), malware()]
    document = {"type": "bundle", "id": "bundle--5d0092c5-5f74-4287-9642-33f4c354e56d",
                "objects": objs}
    assert objects_of(document) == (objs, None)


def test_objects_of_an_empty_bundle() -> None:
    """Return no objects for a bundle without any."""
    assert objects_of({"type": "bundle", "id": "bundle--5d0092c5-5f74-4287-9642-33f4c354e56d"}) == ([], None)


def test_objects_of_an_envelope() -> None:
    """Return a TAXII envelope's objects."""
    objs = [indicator()]
    assert objects_of({"more": False, "objects": objs}) == (objs, None)


def test_objects_of_a_list() -> None:
    """Return a plain JSON list as it is."""
    objs = [indicator(), 5]
    assert objects_of(objs) == (objs, None)


def test_objects_of_a_single_object() -> None:
    """Return a single STIX object as a list of one."""
    obj = indicator()
    assert objects_of(obj) == ([obj], None)


def test_bundle_spec_version_that_is_not_a_string_is_ignored() -> None:
    """Ignore a bundle spec_version that is not a string."""
    assert objects_of({"type": "bundle", "spec_version": 2.0, "objects": []}) == ([], None)


@pytest.mark.parametrize("document", [
    None, 5, "bundle", True, {"objects": "x"}, {"objects": None}, {"type": "indicator"},
    {"id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"}, {"title": "not STIX"},
])
def test_objects_of_rejects_other_shapes(document: object) -> None:
    """Refuse anything that is not a bundle, envelope, list or object."""
    with pytest.raises(BadRequest, match="bundle"):
        objects_of(document)


@pytest.mark.parametrize("objects", ["x", {"a": 1}, 5, None])
def test_bundle_whose_objects_is_not_a_list_is_rejected(objects: object) -> None:
    """Refuse a bundle whose objects is not a list, rather than import nothing from it."""
    with pytest.raises(BadRequest):
        objects_of({"type": "bundle", "id": "bundle--5d0092c5-5f74-4287-9642-33f4c354e56d",
                    "spec_version": "2.0", "objects": objects})
