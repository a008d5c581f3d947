"""The STIX 2.1 object types and the properties each one requires (STIX 2.1 §4–§7)."""

from __future__ import annotations

SPEC_VERSION = "2.1"

DOMAIN_OBJECTS = frozenset({
    "attack-pattern", "campaign", "course-of-action", "grouping", "identity", "incident",
    "indicator", "infrastructure", "intrusion-set", "location", "malware",
    "malware-analysis", "note", "observed-data", "opinion", "report", "threat-actor",
    "tool", "vulnerability",
})
RELATIONSHIP_OBJECTS = frozenset({"relationship", "sighting"})
CYBER_OBSERVABLES = frozenset({
    "artifact", "autonomous-system", "directory", "domain-name", "email-addr",
    "email-message", "file", "ipv4-addr", "ipv6-addr", "mac-addr", "mutex",
    "network-traffic", "process", "software", "url", "user-account",
    "windows-registry-key", "x509-certificate",
})
META_OBJECTS = frozenset({"language-content", "marking-definition", "extension-definition"})

# Properties each type requires beyond the common ones. A tuple inside the tuple
# means "at least one of these".
REQUIRED: dict[str, tuple[str | tuple[str, ...], ...]] = {
    "attack-pattern": ("name",),
    "campaign": ("name",),
    "course-of-action": ("name",),
    "grouping": ("context", "object_refs"),
    "identity": ("name",),
    "incident": ("name",),
    "indicator": ("pattern", "pattern_type", "valid_from"),
    "infrastructure": ("name",),
    "intrusion-set": ("name",),
    "location": (("region", "country", "latitude"),),
    "malware": ("is_family",),
    "malware-analysis": ("product", ("result", "analysis_sco_refs")),
    "note": ("content", "object_refs"),
    "observed-data": ("first_observed", "last_observed", "number_observed"),
    "opinion": ("opinion", "object_refs"),
    "report": ("name", "published", "object_refs"),
    "threat-actor": ("name",),
    "tool": ("name",),
    "vulnerability": ("name",),
    "relationship": ("relationship_type", "source_ref", "target_ref"),
    "sighting": ("sighting_of_ref",),
    "artifact": (("payload_bin", "url"),),
    "autonomous-system": ("number",),
    "directory": ("path",),
    "domain-name": ("value",),
    "email-addr": ("value",),
    "email-message": ("is_multipart",),
    "file": (("hashes", "name"),),
    "ipv4-addr": ("value",),
    "ipv6-addr": ("value",),
    "mac-addr": ("value",),
    "mutex": ("name",),
    "network-traffic": ("protocols",),
    "software": ("name",),
    "url": ("value",),
    "language-content": ("object_ref", "contents"),
    "extension-definition": ("created_by_ref", "name", "schema", "version", "extension_types"),
}

# Timestamp properties, and the pairs whose order the spec fixes (later >= earlier).
TIMESTAMPS = frozenset({
    "created", "modified", "valid_from", "valid_until", "first_seen", "last_seen",
    "published", "first_observed", "last_observed", "start_time", "stop_time",
})
ORDERED_PAIRS = (
    ("created", "modified"),
    ("valid_from", "valid_until"),
    ("first_seen", "last_seen"),
    ("first_observed", "last_observed"),
)


def needs_created_modified(stix_type: str) -> bool:
    """Return whether objects of ``stix_type`` are versioned by created/modified.

    Custom object types (anything not defined by the spec) follow the SDO rules.
    """
    return stix_type not in CYBER_OBSERVABLES and stix_type != "marking-definition"


def needs_spec_version(stix_type: str) -> bool:
    """Return whether ``spec_version`` is required (it is optional only on SCOs)."""
    return stix_type not in CYBER_OBSERVABLES
