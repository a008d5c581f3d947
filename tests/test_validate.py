"""validate(): what a STIX 2.1 object must satisfy before it is stored (STIX 2.1 §3–§7, §11)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from communique.errors import InvalidObject
from communique.stix.validate import StixObject, validate
from tests.support import indicator, ipv4, malware, marking_statement, relationship, stix_id, ts

IDENTITY = "identity--f431f809-377b-45e0-aa1c-6a4751cae5ff"
TLP_GREEN = "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"
FILE_ID = "file--9a0d0b1e-5c3f-4a6c-8e2d-1f0e0b3c7d9a"
CREATED = ts(0)
LATER = ts(60)


def sdo(stix_type: str, **properties: Any) -> dict:
    """Return an object of ``stix_type`` with the common SDO/SRO properties set."""
    obj = {"type": stix_type, "spec_version": "2.1", "id": stix_id(stix_type),
           "created": CREATED, "modified": CREATED}
    obj.update(properties)
    return obj


def sco(stix_type: str, **properties: Any) -> dict:
    """Return a cyber-observable of ``stix_type`` with its common properties set."""
    return {"type": stix_type, "spec_version": "2.1", "id": stix_id(stix_type), **properties}


def refuse(obj: object, match: str) -> None:
    """Assert that validate() refuses ``obj`` with a message matching ``match``."""
    with pytest.raises(InvalidObject, match=match) as caught:
        validate(obj)
    assert caught.value.status == 400


def with_(obj: dict, **changes: Any) -> dict:
    """Return a copy of ``obj`` with properties replaced."""
    return {**obj, **changes}


def without(obj: dict, *names: str) -> dict:
    """Return a copy of ``obj`` without the named properties."""
    return {k: v for k, v in obj.items() if k not in names}


def nested(depth: int) -> list:
    """Return a list nested ``depth`` levels deep."""
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


VALID = {
    "attack-pattern": sdo("attack-pattern", name="Spearphishing Attachment",
                          kill_chain_phases=[{"kill_chain_name": "mitre-attack",
                                              "phase_name": "initial-access"}]),
    "campaign": sdo("campaign", name="Operation Dust", first_seen=ts(0), last_seen=ts(10)),
    "course-of-action": sdo("course-of-action", name="Block the domain"),
    "grouping": sdo("grouping", context="suspicious-activity", object_refs=[FILE_ID]),
    "identity": sdo("identity", name="National CERT", identity_class="organization"),
    "incident": sdo("incident", name="Ministry mail compromise"),
    "indicator": indicator(1, created_by_ref=IDENTITY, object_marking_refs=[TLP_GREEN],
                           confidence=85, labels=["phishing"], valid_until=ts(3600),
                           external_references=[{"source_name": "cert", "url": "https://x.example"}],
                           granular_markings=[{"marking_ref": TLP_GREEN, "selectors": ["name"]}]),
    "indicator-sigma": indicator(2, pattern_type="sigma", pattern="title: anything goes {"),
    "infrastructure": sdo("infrastructure", name="C2 servers"),
    "intrusion-set": sdo("intrusion-set", name="APT-X", first_seen=ts(0), last_seen=ts(0)),
    "location": sdo("location", country="EE"),
    "location-by-coordinates": sdo("location", latitude=59.43, longitude=24.75),
    "malware": malware(1),
    "malware-instance": sdo("malware", is_family=False),
    "malware-analysis": sdo("malware-analysis", product="sandbox", result="malicious"),
    "note": sdo("note", content="Seen on the ministry's gateway", object_refs=[FILE_ID]),
    "observed-data": sdo("observed-data", first_observed=ts(0), last_observed=ts(5),
                         number_observed=3, object_refs=[FILE_ID]),
    "opinion": sdo("opinion", opinion="agree", object_refs=[FILE_ID]),
    "report": sdo("report", name="Weekly report", published=ts(0), object_refs=[FILE_ID],
                  report_types=["threat-report"]),
    "threat-actor": sdo("threat-actor", name="Fancy Cat", threat_actor_types=["nation-state"]),
    "tool": sdo("tool", name="mimikatz"),
    "vulnerability": sdo("vulnerability", name="CVE-2024-0001"),
    "relationship": relationship(stix_id("indicator"), stix_id("malware")),
    "sighting": sdo("sighting", sighting_of_ref=stix_id("indicator"), count=0,
                    first_seen=ts(0), last_seen=ts(1), where_sighted_refs=[IDENTITY]),
    "sighting-max-count": sdo("sighting", sighting_of_ref=stix_id("indicator"), count=999_999_999),
    "artifact": sco("artifact", payload_bin="aGVsbG8=", mime_type="text/plain"),
    "autonomous-system": sco("autonomous-system", number=64496),
    "directory": sco("directory", path="C:\\Windows"),
    "domain-name": sco("domain-name", value="example.com"),
    "email-addr": sco("email-addr", value="someone@example.com"),
    "email-message": sco("email-message", is_multipart=False, subject="hi"),
    "file": sco("file", hashes={"SHA-256": "a" * 64}, name="x.exe"),
    "ipv4-addr": ipv4("198.51.100.7"),
    "ipv4-addr-without-spec-version": without(ipv4("198.51.100.8"), "spec_version"),
    "ipv6-addr": sco("ipv6-addr", value="2001:db8::1"),
    "mac-addr": sco("mac-addr", value="00:00:5e:00:53:01"),
    "mutex": sco("mutex", name="__mutex__"),
    "network-traffic": sco("network-traffic", protocols=["tcp"], dst_ref=stix_id("ipv4-addr")),
    "process": sco("process", pid=4),
    "software": sco("software", name="Word"),
    "url": sco("url", value="https://example.com/x"),
    "user-account": sco("user-account", user_id="1001"),
    "windows-registry-key": sco("windows-registry-key", key="HKEY_LOCAL_MACHINE\\System"),
    "x509-certificate": sco("x509-certificate", serial_number="36:f7:d4:32"),
    "marking-definition-statement": marking_statement(),
    "marking-definition-tlp": {"type": "marking-definition", "spec_version": "2.1", "id": TLP_GREEN,
                               "created": "2017-01-20T00:00:00.000Z", "definition_type": "tlp",
                               "name": "TLP:GREEN", "definition": {"tlp": "green"}},
    "language-content": sdo("language-content", object_ref=FILE_ID,
                            contents={"de": {"name": "Datei"}}),
    "extension-definition": sdo("extension-definition", created_by_ref=IDENTITY, name="ext",
                                schema="https://example.com/schema", version="1.0",
                                extension_types=["property-extension"]),
    "custom-type": sdo("x-ministry-briefing", x_classification="RESTRICTED",
                       x_pages=12, x_meta={"nested": [1, 2, {"deep": None}]}),
    "custom-properties": indicator(3, x_ministry_note="seen twice", x_score=0.5,
                                   X_Upper_Case=True, extensions={"x-ext": {"a": 1}}),
    "timestamp-nanoseconds": indicator(4, created="2024-01-01T00:00:00.123456789Z",
                                       modified="2024-01-01T00:00:00.123456789Z",
                                       valid_from="2024-01-01T00:00:00Z"),
    "revoked": with_(malware(2), revoked=True),
}


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_objects_pass(name: str) -> None:
    """Accept a valid example of each kind of object."""
    obj = VALID[name]
    checked = validate(obj)
    assert isinstance(checked, StixObject)
    assert checked.id == obj["id"] and checked.type == obj["type"]
    assert checked.spec_version == "2.1" and checked.raw is obj


def test_version_is_modified_else_created() -> None:
    """Version an SDO by modified, a marking-definition by created, an SCO by nothing."""
    versioned = validate(indicator(created=ts(0), modified=ts(1)))
    assert (versioned.version, versioned.version_us) == (ts(1), 1_704_067_201_000_000)
    marking = validate(marking_statement())
    assert (marking.version, marking.version_us) == (ts(0), 1_704_067_200_000_000)
    observable = validate(ipv4("198.51.100.1"))
    assert (observable.version, observable.version_us) == (None, None)


# -- shape, type and id --------------------------------------------------------------------
@pytest.mark.parametrize("value", [None, [], [indicator()], "indicator", 42, 1.5, True])
def test_not_a_dict(value: object) -> None:
    """Refuse anything that is not a JSON object."""
    refuse(value, "must be a JSON object")


@pytest.mark.parametrize("stix_type", [None, 5, "", "ab", "Indicator", "x_custom", "x--y",
                                       "-xy", "xy-", "ind icator", "x" * 251, ["indicator"]])
def test_invalid_type(stix_type: object) -> None:
    """Refuse a missing or malformed type."""
    refuse(with_(indicator(), type=stix_type), "property 'type'")


def test_missing_type() -> None:
    """Refuse an object without a type."""
    refuse(without(indicator(), "type"), "property 'type'")


def test_bundle_is_not_an_object() -> None:
    """Refuse a bundle offered as an object."""
    refuse({"type": "bundle", "id": stix_id("bundle"), "objects": [indicator()]}, "bundle")


@pytest.mark.parametrize("identifier", [None, 5, ["indicator--x"]])
def test_missing_or_non_string_id(identifier: object) -> None:
    """Refuse an id that is absent or not a string."""
    obj = without(indicator(), "id") if identifier is None else with_(indicator(), id=identifier)
    refuse(obj, "property 'id'")


@pytest.mark.parametrize("identifier", [
    "indicator", "indicator--", "indicator--1234", "indicator-8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
    "indicator--8e2e2d2b17d44cbf938f98ee46b3cd3f", "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3",
    "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3fa", "indicator--zzzzzzzz-17d4-4cbf-938f-98ee46b3cd3f",
    "indicator--{8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f}", " indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
    "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f\n",
])
def test_id_not_type_uuid(identifier: str) -> None:
    """Refuse an id that is not type--UUID."""
    refuse(with_(indicator(), id=identifier), "type--UUID")


@pytest.mark.parametrize("variant", ["0", "7", "c", "f"])
def test_id_with_a_bad_uuid_variant(variant: str) -> None:
    """Refuse a UUID whose variant is not RFC 4122's (10xx)."""
    refuse(with_(indicator(), id=f"indicator--8e2e2d2b-17d4-4cbf-{variant}38f-98ee46b3cd3f"), "RFC 4122")


def test_id_type_mismatch() -> None:
    """Refuse an id whose prefix names another type."""
    refuse(with_(indicator(), id=stix_id("malware")), "does not match type 'indicator'")


# -- spec_version and the required properties ---------------------------------------------
@pytest.mark.parametrize("stix_type", ["indicator", "relationship", "marking-definition",
                                       "x-custom-thing"])
def test_missing_spec_version(stix_type: str) -> None:
    """Refuse an SDO, SRO, marking or custom object without spec_version."""
    obj = {"indicator": indicator(), "relationship": VALID["relationship"],
           "marking-definition": marking_statement(),
           "x-custom-thing": sdo("x-custom-thing")}[stix_type]
    refuse(without(obj, "spec_version"), "'spec_version' is required")


@pytest.mark.parametrize("obj", [indicator(), ipv4("198.51.100.2")], ids=["sdo", "sco"])
def test_spec_version_2_0_is_refused(obj: dict) -> None:
    """Refuse STIX 2.0 content with a message that points at the upgrade."""
    refuse(with_(obj, spec_version="2.0"), r"spec_version '2\.0' is not supported.*import")


@pytest.mark.parametrize("value", ["2.2", "", 2.1, None, ["2.1"]])
def test_other_spec_versions_are_refused(value: object) -> None:
    """Refuse any spec_version but "2.1"."""
    refuse(with_(indicator(), spec_version=value), "spec_version")


@pytest.mark.parametrize("name", ["created", "modified"])
@pytest.mark.parametrize("obj", [indicator(), VALID["relationship"], VALID["sighting"],
                                 VALID["custom-type"]], ids=["sdo", "relationship", "sighting",
                                                             "custom"])
def test_missing_created_or_modified(obj: dict, name: str) -> None:
    """Refuse an SDO, SRO or custom object without created or modified."""
    refuse(without(obj, name), f"property '{name}' is required")


def test_marking_definition_needs_created() -> None:
    """Refuse a marking-definition without created."""
    refuse(without(marking_statement(), "created"), "property 'created' is required")


@pytest.mark.parametrize("key, name", [
    ("indicator", "pattern"), ("indicator", "pattern_type"), ("indicator", "valid_from"),
    ("relationship", "relationship_type"), ("relationship", "source_ref"),
    ("relationship", "target_ref"), ("sighting", "sighting_of_ref"), ("identity", "name"),
    ("report", "published"), ("report", "object_refs"), ("grouping", "context"),
    ("note", "content"), ("observed-data", "number_observed"), ("domain-name", "value"),
    ("ipv4-addr", "value"), ("network-traffic", "protocols"), ("email-message", "is_multipart"),
    ("language-content", "contents"), ("extension-definition", "schema"),
])
def test_required_properties(key: str, name: str) -> None:
    """Refuse an object without a property its type requires."""
    refuse(without(VALID[key], name), f"property '{name}' is required on {VALID[key]['type']}")


@pytest.mark.parametrize("key, names", [
    ("location", ("country",)), ("file", ("hashes", "name")), ("artifact", ("payload_bin",)),
    ("malware-analysis", ("result",)),
])
def test_at_least_one_of(key: str, names: tuple[str, ...]) -> None:
    """Refuse an object with none of the properties of which it needs one."""
    refuse(without(VALID[key], *names), "needs at least one of")


def test_marking_definition_type_without_definition() -> None:
    """Refuse a marking-definition with definition_type but no definition."""
    refuse(without(marking_statement(), "definition"), "needs a 'definition'")


# -- timestamps ----------------------------------------------------------------------------
@pytest.mark.parametrize("value", [
    "2024-01-01T00:00:00.000", "2024-01-01T00:00:00.000+00:00", "2024-01-01T02:00:00+02:00",
    "2024-01-01", "2024-01-01 00:00:00Z", "01/01/2024", "yesterday", "", "2024-1-1T0:0:0Z",
])
def test_malformed_timestamps(value: str) -> None:
    """Refuse timestamps that are not RFC 3339 UTC with Z."""
    refuse(with_(indicator(), created=value), "'created'.*RFC 3339")


@pytest.mark.parametrize("value", ["2024-02-30T00:00:00Z", "2023-02-29T00:00:00Z",
                                   "2024-04-31T00:00:00Z", "2024-01-01T25:00:00Z"])
def test_impossible_timestamps(value: str) -> None:
    """Refuse timestamps that name no real instant."""
    refuse(with_(indicator(), valid_from=value), "'valid_from'.*not a real date")


@pytest.mark.parametrize("value", [1704067200, 1704067200.0, None, True, ["2024-01-01T00:00:00Z"],
                                   {"at": "2024-01-01T00:00:00Z"}])
def test_non_string_timestamps(value: object) -> None:
    """Refuse timestamps that are not strings."""
    refuse(with_(indicator(), modified=value), "'modified'.*must be a string")


@pytest.mark.parametrize("key, name", [("report", "published"), ("observed-data", "first_observed"),
                                       ("campaign", "last_seen"), ("sighting", "first_seen")])
def test_every_timestamp_property_is_checked(key: str, name: str) -> None:
    """Check the format of each timestamp property, not only created and modified."""
    refuse(with_(VALID[key], **{name: "2024-01-01T00:00:00+01:00"}), f"'{name}'")


def test_modified_before_created() -> None:
    """Refuse modified earlier than created."""
    refuse(indicator(created=LATER, modified=CREATED, valid_from=LATER),
           "'modified'.*earlier than 'created'")


def test_modified_equal_to_created_is_fine() -> None:
    """Accept modified equal to created (and a nanosecond difference truncated away)."""
    validate(indicator(created="2024-01-01T00:00:00.0000001Z",
                       modified="2024-01-01T00:00:00.0000002Z"))


@pytest.mark.parametrize("valid_until", [CREATED, ts(0, year=2023)], ids=["equal", "earlier"])
def test_valid_until_not_after_valid_from(valid_until: str) -> None:
    """Refuse valid_until equal to or earlier than valid_from."""
    refuse(indicator(valid_from=CREATED, valid_until=valid_until), "'valid_until'")


@pytest.mark.parametrize("key", ["campaign", "intrusion-set", "sighting"])
def test_last_seen_before_first_seen(key: str) -> None:
    """Refuse last_seen earlier than first_seen."""
    refuse(with_(VALID[key], first_seen=LATER, last_seen=CREATED), "'last_seen'.*earlier")


def test_last_observed_before_first_observed() -> None:
    """Refuse last_observed earlier than first_observed."""
    refuse(with_(VALID["observed-data"], first_observed=LATER, last_observed=CREATED),
           "'last_observed'.*earlier")


# -- references ----------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["not-an-id", "", "indicator--1", 5, None, True,
                                   ["indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"], {"id": "x"}])
@pytest.mark.parametrize("name", ["source_ref", "target_ref"])
def test_bad_reference(name: str, value: object) -> None:
    """Refuse a *_ref that is not a STIX identifier."""
    refuse(with_(VALID["relationship"], **{name: value}), f"'{name}'.*not a STIX identifier")


def test_custom_reference_properties_are_checked() -> None:
    """Check custom x_*_ref properties like the spec's own."""
    refuse(with_(indicator(), x_owner_ref="someone"), "'x_owner_ref'.*not a STIX identifier")


@pytest.mark.parametrize("value", ["indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f", 5, None,
                                   {"a": FILE_ID}])
def test_refs_not_a_list(value: object) -> None:
    """Refuse a *_refs that is not a list."""
    refuse(with_(VALID["report"], object_refs=value), "'object_refs' must be a list of identifiers")


@pytest.mark.parametrize("item", ["bogus", 5, None, [FILE_ID], "file--not-a-uuid"])
def test_refs_with_a_bad_item(item: object) -> None:
    """Refuse a *_refs holding anything but identifiers."""
    refuse(with_(VALID["report"], object_refs=[FILE_ID, item]), "'object_refs'.*not a STIX identifier")


def test_created_by_ref_must_be_an_identity() -> None:
    """Refuse a created_by_ref to anything but an identity."""
    refuse(with_(indicator(), created_by_ref=stix_id("malware")), "'created_by_ref'.*identity")


def test_object_marking_refs_must_be_markings() -> None:
    """Refuse object_marking_refs that point at anything but marking definitions."""
    refuse(with_(indicator(), object_marking_refs=[TLP_GREEN, IDENTITY]), "marking-definition")


@pytest.mark.parametrize("name", ["spec_version", "created_by_ref", "x_deep_ref", "object_refs"])
def test_deeply_nested_values_are_refused_cleanly(name: str) -> None:
    """Refuse a deeply nested value where a string belongs with InvalidObject, not a crash."""
    value = [nested(1000)] if name == "object_refs" else nested(1000)
    with pytest.raises(InvalidObject):
        validate(with_(VALID["report"], **{name: value}))


# -- common property types -----------------------------------------------------------------
@pytest.mark.parametrize("value", [-1, 101, 1000, True, False, 50.0, 50.5, "50", [50]])
def test_confidence_out_of_range_or_not_an_integer(value: object) -> None:
    """Refuse a confidence that is not an integer from 0 to 100."""
    refuse(with_(indicator(), confidence=value), "'confidence' must be an integer from 0 to 100")


@pytest.mark.parametrize("value", [0, 100])
def test_confidence_bounds_are_fine(value: int) -> None:
    """Accept confidence 0 and 100."""
    validate(with_(indicator(), confidence=value))


@pytest.mark.parametrize("value", ["phishing", ["a", 1], [None], [["a"]], {"a": "b"}, 5])
def test_labels_not_a_list_of_strings(value: object) -> None:
    """Refuse labels that are not a list of strings."""
    refuse(with_(indicator(), labels=value), "'labels' must be a list of strings")


@pytest.mark.parametrize("value", ["yes", 1, 0, "true"])
def test_revoked_not_a_boolean(value: object) -> None:
    """Refuse a revoked that is not true or false."""
    refuse(with_(indicator(), revoked=value), "'revoked' must be true or false")


@pytest.mark.parametrize("value", [[{}], [{"url": "https://x.example"}], [{"source_name": 5}],
                                   ["cert"], [None]])
def test_external_references_without_source_name(value: object) -> None:
    """Refuse an external reference without a source_name string."""
    refuse(with_(indicator(), external_references=value), "'source_name'")


@pytest.mark.parametrize("value", [{"source_name": "cert"}, "cert", 5])
def test_external_references_not_a_list(value: object) -> None:
    """Refuse external_references that is not a list."""
    refuse(with_(indicator(), external_references=value), "'external_references' must be a list")


@pytest.mark.parametrize("marking", [
    {"marking_ref": TLP_GREEN}, {"marking_ref": TLP_GREEN, "selectors": []},
    {"marking_ref": TLP_GREEN, "selectors": "name"}, {"marking_ref": TLP_GREEN, "selectors": [5]},
])
def test_granular_markings_without_selectors(marking: dict) -> None:
    """Refuse a granular marking without a non-empty list of selectors."""
    refuse(with_(indicator(), granular_markings=[marking]), "'selectors'")


def test_granular_markings_without_marking_ref_or_lang() -> None:
    """Refuse a granular marking that names neither a marking nor a language."""
    refuse(with_(indicator(), granular_markings=[{"selectors": ["name"]}]), "'marking_ref' or 'lang'")


@pytest.mark.parametrize("value", [{"selectors": ["name"], "lang": "en"}, "x", ["x"]])
def test_granular_markings_shape(value: object) -> None:
    """Refuse granular_markings that is not a list of objects."""
    refuse(with_(indicator(), granular_markings=value), "granular.marking")


def test_extensions_not_an_object() -> None:
    """Refuse extensions that is not a JSON object."""
    refuse(with_(indicator(), extensions=["x-ext"]), "'extensions' must be a JSON object")


# -- malware -------------------------------------------------------------------------------
def test_malware_without_is_family() -> None:
    """Refuse malware without is_family."""
    refuse(without(malware(), "is_family"), "'is_family' is required on malware")


@pytest.mark.parametrize("value", ["true", 1, None, []])
def test_malware_is_family_not_a_boolean(value: object) -> None:
    """Refuse an is_family that is not true or false."""
    refuse(with_(malware(), is_family=value), "'is_family' must be true or false")


def test_malware_family_without_name() -> None:
    """Refuse a malware family without a name."""
    refuse(without(malware(), "name"), "family.*needs a 'name'")


# -- indicator patterns --------------------------------------------------------------------
@pytest.mark.parametrize("pattern", [
    pytest.param("[ipv4-addr:value = '198.51.100.1'", id="unbalanced-open"),
    pytest.param("[ipv4-addr:value = '198.51.100.1']]", id="unbalanced-close"),
    pytest.param("ipv4-addr:value = '198.51.100.1'", id="no-brackets"),
    pytest.param("[ipv4-addr:value FOO '198.51.100.1']", id="unknown-operator"),
    pytest.param("[ipv4-addr:value === '198.51.100.1']", id="triple-equals"),
    pytest.param("[ipv4-addr:value = '198.51.100.1'] BUTNOT [url:value = 'x']", id="unknown-joiner"),
    pytest.param("", id="empty"),
    pytest.param("   ", id="blank"),
    pytest.param("[]", id="empty-brackets"),
    pytest.param("[" * 60_000, id="hostile-60k-brackets"),
    pytest.param("(" * 5_000 + "[a:b = 'c']" + ")" * 5_000, id="hostile-deep-parentheses"),
    pytest.param("x" * 100_000, id="hostile-100k"),
    pytest.param("[ipv4-addr:value = '" + "\\" * 100_000 + "']", id="hostile-100k-escapes"),
])
def test_pattern_that_does_not_parse(pattern: str) -> None:
    """Refuse a stix pattern that does not parse, even a hostile one."""
    refuse(indicator(pattern=pattern), "pattern does not parse")


@pytest.mark.parametrize("pattern", [
    "[file:hashes.'SHA-256' = '" + "a" * 64 + "']",
    "[ipv4-addr:value ISSUBSET '198.51.100.0/24']",
    "[ipv4-addr:value = '198.51.100.1'] AND [domain-name:value = 'example.com']",
    "[url:value LIKE 'http://%.example/%'] REPEATS 5 TIMES WITHIN 600 SECONDS",
    "[x-custom:x_value = 'a']",
])
def test_patterns_that_parse(pattern: str) -> None:
    """Accept stix patterns that parse."""
    validate(indicator(pattern=pattern))


@pytest.mark.parametrize("pattern_type", ["sigma", "snort", "suricata", "yara", "pcre",
                                          "x-custom-language"])
def test_other_pattern_types_are_not_parsed(pattern_type: str) -> None:
    """Leave patterns of languages other than stix unparsed."""
    validate(indicator(pattern_type=pattern_type, pattern="[unbalanced ((( FOO"))


@pytest.mark.parametrize("changes", [{"pattern": 5}, {"pattern": ["[a:b = 'c']"]},
                                     {"pattern_type": None}, {"pattern_type": ["stix"]}])
def test_pattern_and_pattern_type_must_be_strings(changes: dict) -> None:
    """Refuse a pattern or pattern_type that is not a string."""
    refuse(indicator(**changes), "'pattern' and 'pattern_type' must be strings")


# -- property names and sightings ----------------------------------------------------------
@pytest.mark.parametrize("name", ["x-custom", "x custom", "x.custom", "x:custom", "", "é_custom",
                                  "x_custom\n", "$x", "x" * 251, "x\x00"])
def test_property_names_with_illegal_characters(name: str) -> None:
    """Refuse property names outside a-z, A-Z, 0-9 and _ (or longer than 250)."""
    refuse({**indicator(), name: "value"}, "property name")


@pytest.mark.parametrize("count", [-1, 1_000_000_000, True, 1.0, 1.5, "3", [3]])
def test_sighting_count_out_of_range(count: object) -> None:
    """Refuse a sighting count that is not an integer from 0 to 999,999,999."""
    refuse(with_(VALID["sighting"], count=count), "'count' must be an integer")


# -- property tests ------------------------------------------------------------------------
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children,
                                                                     max_size=4),
    max_leaves=25,
)
INDICATOR = indicator(7, created_by_ref=IDENTITY, object_marking_refs=[TLP_GREEN], confidence=50,
                      labels=["a"], valid_until=ts(3600), external_references=[{"source_name": "s"}],
                      granular_markings=[{"marking_ref": TLP_GREEN, "selectors": ["name"]}])
INTERESTING_NAMES = sorted(set(INDICATOR) | {
    "x_ref", "x_refs", "sighting_of_ref", "where_sighted_refs", "count", "revoked", "extensions",
    "is_family", "first_seen", "last_seen", "published", "definition_type", "x_custom",
})
PROPERTY_TEST = settings(max_examples=400, deadline=None, database=None,
                         suppress_health_check=[HealthCheck.too_slow])


def validate_or_refuse(obj: object) -> None:
    """Run validate(); let only InvalidObject (the designed refusal) escape."""
    try:
        validate(obj)
    except InvalidObject:
        pass


@PROPERTY_TEST
@given(JSON_VALUES)
def test_arbitrary_json_is_validated_or_refused(value: object) -> None:
    """Return or raise InvalidObject for any JSON value, never anything else."""
    validate_or_refuse(value)


@PROPERTY_TEST
@given(st.fixed_dictionaries({"type": st.sampled_from(["indicator", "malware", "sighting",
                                                        "ipv4-addr", "marking-definition",
                                                        "x-thing", "bundle"]) | JSON_VALUES},
                             optional={"id": JSON_VALUES, "spec_version": st.just("2.1") | JSON_VALUES,
                                       "created": st.just(CREATED) | JSON_VALUES,
                                       "modified": st.just(LATER) | JSON_VALUES})
       .flatmap(lambda base: st.dictionaries(st.sampled_from(INTERESTING_NAMES), JSON_VALUES,
                                             max_size=6).map(lambda extra: {**base, **extra})))
def test_arbitrary_stix_like_dicts_are_validated_or_refused(value: dict) -> None:
    """Return or raise InvalidObject for dicts that look partly like STIX objects."""
    validate_or_refuse(value)


@PROPERTY_TEST
@given(name=st.sampled_from(INTERESTING_NAMES), value=JSON_VALUES)
def test_mutated_indicator_is_validated_or_refused(name: str, value: object) -> None:
    """Return or raise InvalidObject when any one property of an indicator is replaced."""
    validate_or_refuse({**INDICATOR, name: value})


@PROPERTY_TEST
@given(names=st.sets(st.sampled_from(sorted(INDICATOR))), data=st.data())
def test_indicator_with_properties_removed_or_replaced(names: set[str], data: st.DataObject) -> None:
    """Return or raise InvalidObject when several properties are removed or replaced at once."""
    obj = dict(INDICATOR)
    for name in sorted(names):
        if data.draw(st.booleans(), label=f"remove {name}"):
            del obj[name]
        else:
            obj[name] = data.draw(JSON_VALUES, label=name)
    validate_or_refuse(obj)
