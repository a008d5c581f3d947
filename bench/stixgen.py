"""Deterministic STIX 2.1 test content: envelopes of a realistic mix of objects.

Envelope ``n`` of a given seed is always the same, whatever was generated before
it, so any fill level can be reproduced (and any object id recomputed) without
keeping state. Object ids and SCO values are unique across all envelopes.

The mix of one 1,000-object envelope (scaled for other sizes):

    indicator 300   relationship 250   ipv4-addr 100   domain-name 80
    file 50         url 30             sighting 30     malware 40
    attack-pattern 40   identity 20    intrusion-set 15   threat-actor 10
    campaign 10     course-of-action 10   vulnerability 10   report 5

Indicators cycle through eleven pattern forms: equality on ipv4-addr, domain-name,
url and file hashes; AND and OR comparisons; ISSUBSET on a CIDR; MATCHES on an
e-mail sender; network-traffic with a reference path; a Windows registry key; and
a FOLLOWEDBY ... WITHIN qualified observation expression.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import orjson

MIX: tuple[tuple[str, int], ...] = (
    ("indicator", 300), ("relationship", 250), ("ipv4-addr", 100), ("domain-name", 80),
    ("file", 50), ("url", 30), ("sighting", 30), ("malware", 40), ("attack-pattern", 40),
    ("identity", 20), ("intrusion-set", 15), ("threat-actor", 10), ("campaign", 10),
    ("course-of-action", 10), ("vulnerability", 10), ("report", 5),
)
MIX_TOTAL = sum(n for _, n in MIX)

SCO_NAMESPACE = uuid.UUID("00abedb4-aa42-466c-9c01-fed23315a9b7")  # STIX 2.1 §2.9
TLP_GREEN = "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"
TLP_AMBER = "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82"
EPOCH = datetime(2020, 1, 1, tzinfo=timezone.utc)
TLDS = ("com", "net", "org", "info", "ru", "cn", "io", "biz", "xyz", "top")
WORDS = ("update", "secure", "login", "cdn", "mail", "portal", "cloud", "sync", "api", "files",
         "static", "auth", "office", "support", "verify", "account", "docs", "share")
FAMILIES = ("backdoor", "remote-access-trojan", "ransomware", "dropper", "downloader",
            "keylogger", "bot", "spyware", "trojan", "worm")
PHASES = ("reconnaissance", "initial-access", "execution", "persistence",
          "privilege-escalation", "defense-evasion", "credential-access", "discovery",
          "lateral-movement", "collection", "command-and-control", "exfiltration", "impact")
SECTORS = ("government-national", "defense", "energy", "financial-services", "telecommunications",
           "healthcare", "technology", "transportation")


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _ipv4(index: int, salt: int) -> str:
    """Return a distinct address for each index (a bijection on 32 bits)."""
    value = ((index * 2654435761) ^ salt) & 0xFFFFFFFF
    return ".".join(str((value >> shift) & 255) for shift in (24, 16, 8, 0))


class Envelope:
    """Builds the objects of one envelope; ``rng`` and ``base`` make it deterministic."""

    def __init__(self, seed: int, number: int, size: int) -> None:
        self.rng = random.Random(f"communique-bench:{seed}:{number}")
        self.base = number * size  # global index of this envelope's first object
        self.salt = random.Random(seed).getrandbits(32)
        self.seed = seed
        self.size = size
        self.counter = 0
        self.identities: list[str] = []
        self.by_type: dict[str, list[str]] = {}

    # -- helpers ---------------------------------------------------------------------
    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _index(self) -> int:
        self.counter += 1
        return self.base + self.counter

    def _times(self) -> tuple[str, str]:
        created = EPOCH + timedelta(seconds=self.rng.randrange(5 * 365 * 86400),
                                    milliseconds=self.rng.randrange(1000))
        modified = created + timedelta(seconds=self.rng.choice((0, 0, 60, 3600, 86400 * 7)))
        return _stamp(created), _stamp(modified)

    def _sdo(self, stix_type: str, **props: Any) -> dict:
        created, modified = self._times()
        obj = {"type": stix_type, "spec_version": "2.1", "id": f"{stix_type}--{self._uuid()}",
               "created": created, "modified": modified}
        if self.identities and stix_type != "identity":
            obj["created_by_ref"] = self.rng.choice(self.identities)
        obj.update(props)
        if self.rng.random() < 0.8:
            obj["object_marking_refs"] = [self.rng.choice((TLP_GREEN, TLP_GREEN, TLP_AMBER))]
        if self.rng.random() < 0.5:
            obj["confidence"] = self.rng.randrange(30, 100)
        return obj

    def _sco(self, stix_type: str, key: dict, **props: Any) -> dict:
        name = uuid.uuid5(SCO_NAMESPACE, orjson.dumps(key, option=orjson.OPT_SORT_KEYS).decode())
        return {"type": stix_type, "spec_version": "2.1", "id": f"{stix_type}--{name}",
                **key, **props}

    def _domain(self, index: int) -> str:
        word = WORDS[index % len(WORDS)]
        return f"{word}-{hashlib.blake2b(f'{self.seed}:{index}'.encode(), digest_size=5).hexdigest()}.{TLDS[index % len(TLDS)]}"

    def _sha256(self, index: int) -> str:
        return hashlib.sha256(f"{self.seed}:{index}".encode()).hexdigest()

    def _pick(self, stix_type: str) -> str:
        known = self.by_type.get(stix_type)
        return self.rng.choice(known) if known else f"{stix_type}--{self._uuid()}"

    # -- object kinds ----------------------------------------------------------------
    def identity(self) -> dict:
        i = self._index()
        return self._sdo("identity", name=f"Organisation {i}", identity_class="organization",
                         sectors=[self.rng.choice(SECTORS)])

    def pattern(self, index: int) -> str:
        form = index % 11
        ip, other = _ipv4(index, self.salt), _ipv4(index + 7_000_003, self.salt)
        domain, digest = self._domain(index), self._sha256(index)
        return (
            f"[ipv4-addr:value = '{ip}']",
            f"[domain-name:value = '{domain}']",
            f"[url:value = 'http://{domain}/{digest[:8]}/index.php']",
            f"[file:hashes.'SHA-256' = '{digest}']",
            f"[file:hashes.MD5 = '{digest[:32]}' AND file:name = 'invoice_{index}.exe']",
            f"[ipv4-addr:value = '{ip}' OR ipv4-addr:value = '{other}']",
            f"[ipv4-addr:value ISSUBSET '{ip.rsplit('.', 1)[0]}.0/24']",
            f"[email-message:from_ref.value MATCHES '^.*@{domain.replace('.', '[.]')}$']",
            f"[network-traffic:dst_ref.type = 'ipv4-addr' AND network-traffic:dst_ref.value = '{ip}' AND network-traffic:dst_port = {1024 + index % 60000}]",
            f"[windows-registry-key:key = 'HKEY_LOCAL_MACHINE\\\\Software\\\\Run{index}']",
            f"[file:hashes.'SHA-256' = '{digest}'] FOLLOWEDBY [domain-name:value = '{domain}'] WITHIN 300 SECONDS",
        )[form]

    def indicator(self) -> dict:
        i = self._index()
        obj = self._sdo("indicator", name=f"Indicator {i}",
                        indicator_types=[self.rng.choice(("malicious-activity", "anomalous-activity",
                                                          "compromised", "attribution"))],
                        pattern=self.pattern(i), pattern_type="stix", pattern_version="2.1")
        obj["valid_from"] = obj["created"]
        if self.rng.random() < 0.3:
            obj["description"] = f"Seen in campaign traffic, batch {i // 1000}."
        if self.rng.random() < 0.3:
            obj["kill_chain_phases"] = [{"kill_chain_name": "mitre-attack",
                                         "phase_name": self.rng.choice(PHASES)}]
        return obj

    def malware(self) -> dict:
        i = self._index()
        return self._sdo("malware", name=f"Malware family {i}", is_family=True,
                         malware_types=[self.rng.choice(FAMILIES)],
                         description="A malware family tracked by the national CERT.")

    def attack_pattern(self) -> dict:
        i = self._index()
        technique = f"T{1000 + i % 600}"
        return self._sdo("attack-pattern", name=f"Technique {technique}.{i % 1000:03d}",
                         kill_chain_phases=[{"kill_chain_name": "mitre-attack",
                                             "phase_name": self.rng.choice(PHASES)}],
                         external_references=[{"source_name": "mitre-attack",
                                               "external_id": technique,
                                               "url": f"https://attack.mitre.org/techniques/{technique}/"}])

    def named(self, stix_type: str) -> Callable[[], dict]:
        def make() -> dict:
            i = self._index()
            props: dict[str, Any] = {"name": f"{stix_type.replace('-', ' ').title()} {i}"}
            if stix_type == "threat-actor":
                props["threat_actor_types"] = ["nation-state"]
            if stix_type == "vulnerability":
                props["name"] = f"CVE-{2015 + i % 10}-{10000 + i % 90000}"
                props["external_references"] = [{"source_name": "cve", "external_id": props["name"]}]
            return self._sdo(stix_type, **props)
        return make

    def ipv4(self) -> dict:
        return self._sco("ipv4-addr", {"value": _ipv4(self._index(), self.salt)})

    def domain(self) -> dict:
        return self._sco("domain-name", {"value": self._domain(self._index())})

    def file(self) -> dict:
        i = self._index()
        return self._sco("file", {"hashes": {"SHA-256": self._sha256(i)}},
                         name=f"payload_{i}.dll", size=1024 + i % 500_000)

    def url(self) -> dict:
        i = self._index()
        return self._sco("url", {"value": f"https://{self._domain(i)}/download/{i}"})

    def relationship(self) -> dict:
        self._index()
        kind = self.rng.random()
        if kind < 0.5:
            source, rel, target = self._pick("indicator"), "indicates", self._pick("malware")
        elif kind < 0.8:
            source, rel, target = self._pick("malware"), "uses", self._pick("attack-pattern")
        else:
            source, rel, target = self._pick("intrusion-set"), "uses", self._pick("malware")
        return self._sdo("relationship", relationship_type=rel, source_ref=source,
                         target_ref=target)

    def sighting(self) -> dict:
        self._index()
        obj = self._sdo("sighting", sighting_of_ref=self._pick("indicator"),
                        count=self.rng.randrange(1, 50),
                        where_sighted_refs=[self.rng.choice(self.identities)])
        obj["first_seen"] = obj["created"]
        obj["last_seen"] = obj["modified"]
        return obj

    def report(self) -> dict:
        i = self._index()
        refs = [ref for kind in ("indicator", "malware", "attack-pattern")
                for ref in self.rng.sample(self.by_type[kind], 5)]
        obj = self._sdo("report", name=f"Situation report {i}", report_types=["threat-report"],
                        object_refs=refs)
        obj["published"] = obj["modified"]
        return obj

    # -- assembly --------------------------------------------------------------------
    def objects(self) -> list[dict]:
        makers: dict[str, Callable[[], dict]] = {
            "identity": self.identity, "indicator": self.indicator, "malware": self.malware,
            "attack-pattern": self.attack_pattern, "ipv4-addr": self.ipv4,
            "domain-name": self.domain, "file": self.file, "url": self.url,
            "relationship": self.relationship, "sighting": self.sighting, "report": self.report,
        }
        counts = _scaled_counts(self.size)
        order = ["identity", "malware", "attack-pattern", "intrusion-set", "threat-actor",
                 "campaign", "course-of-action", "vulnerability", "indicator", "ipv4-addr",
                 "domain-name", "file", "url", "relationship", "sighting", "report"]
        made: list[dict] = []
        for stix_type in order:
            make = makers.get(stix_type) or self.named(stix_type)
            for _ in range(counts.get(stix_type, 0)):
                obj = make()
                made.append(obj)
                self.by_type.setdefault(stix_type, []).append(obj["id"])
                if stix_type == "identity":
                    self.identities.append(obj["id"])
        self.rng.shuffle(made)
        return made


def _scaled_counts(size: int) -> dict[str, int]:
    counts = {name: n * size // MIX_TOTAL for name, n in MIX}
    counts["indicator"] += size - sum(counts.values())  # rounding remainder
    for needed in ("identity", "malware", "attack-pattern", "indicator"):
        counts[needed] = max(counts[needed], 5)  # reports and refs draw on these
    counts["indicator"] -= sum(counts.values()) - size
    return counts


def envelope_objects(seed: int, number: int, size: int = 1000) -> list[dict]:
    """Return the objects of envelope ``number`` (0-based) for ``seed``."""
    return Envelope(seed, number, size).objects()


def envelope_bytes(objects: list[dict]) -> bytes:
    """Serialise a TAXII envelope of ``objects`` (done before any timing starts)."""
    return orjson.dumps({"objects": objects})
