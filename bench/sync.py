"""Measure replication between two Communiqué nodes over loopback, signature checks included.

    .venv/bin/python bench/sync.py                                  # 100,000 objects, 3 runs
    .venv/bin/python bench/sync.py --objects 5000 --runs 1          # smoke run, about a minute
    .venv/bin/python bench/sync.py --page-sizes 1000,5000 --cli     # page-size sweep, and the CLI
    .venv/bin/python bench/sync.py --report bench/results/sync-latest.json

Node B, the source, is `communique serve --workers 1` on SQLite in its own process.
It is filled once with ``--objects`` generated indicators through `communique import`,
so B signs every one of them. Their TLP 2.0 levels are a fixed mix (``MIX``): CLEAR,
GREEN and AMBER travel; a few RED do not (half of them name A's organisation, so B
serves them to A and A must refuse them; the other half B never serves to A).

Node A, the destination, is a fresh SQLite database for every run (`communique
init`), with one private collection and node B added as a peer with `communique peer
add … --max-tlp amber --fingerprint …` (B's key pinned). A runs in this process:
``engine.sync_peer`` is called directly, so that the time can be split by timing
wrappers put around the client's and the store's functions (in this process only;
src/ is not changed). For each run and page size:

1. full replication into the empty A: wall time of ``sync_peer`` → objects/s;
2. incremental syncs right after, with nothing new: ``--incremental-reps`` calls,
   median in ms (the whole call, and the part spent in the collection's link);
3. correctness: A holds exactly the non-RED objects, each with signature VERIFIED;
4. (first page size of each run) ``signatures.verify`` alone over the same objects,
   so that the share of the replication that signatures take can be stated.

With ``--cli`` each run also replicates into one more fresh A with `communique peer
sync` (a subprocess, so interpreter start included). bench/README.md ("Federation:
replicating between nodes") explains every figure.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import random
import resource
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import orjson
import report
import run
import servers
import stixgen

HERE = Path(__file__).resolve().parent
CHUNK = 10_000  # objects per `communique import` file
TARGET_RATE = 3_000  # objects/s, full replication into an empty node
TARGET_INCREMENTAL_MS = 100.0  # per collection, nothing new

# TLP 2.0 marking definitions (as in src/communique/stix/markings.py).
TLP2 = {
    "clear": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    "green": "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    "amber": "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    "red": "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
RECIPIENTS_EXTENSION = "extension-definition--1a97b63f-06a8-4ee3-a22d-7f4d339a07d0"

B_ORG, A_ORG, OTHER_ORG = "Source CERT", "Destination CERT", "Third CERT"
B_WRITER, A_AT_B = "analyst@source.example", "sync@destination.example"
PEER = "source"
LOCAL = "from-source"


class Share(NamedTuple):
    """One TLP level of the mix: how many objects in 1,000 carry it, and what becomes of them."""

    label: str
    per_thousand: int
    marking: str
    names_a: bool  # RED only: the recipients extension names A's organisation
    served: bool  # B returns it to A's token
    stored: bool  # A keeps it


MIX = (
    Share("TLP:CLEAR", 250, "clear", False, True, True),
    Share("TLP:GREEN", 350, "green", False, True, True),
    Share("TLP:AMBER", 350, "amber", False, True, True),
    Share("TLP:RED naming A's organisation", 25, "red", True, True, False),
    Share("TLP:RED naming another organisation", 25, "red", False, False, False),
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=100_000,
                        help="objects in node B, a multiple of 1,000 (default 100000)")
    parser.add_argument("--runs", type=int, default=3,
                        help="repetitions, each into a fresh node A; medians are reported (default 3)")
    parser.add_argument("--page-sizes", default="1000",
                        help="page sizes to replicate with, comma-separated (default 1000); B's "
                             "max_page_size is raised to the largest")
    parser.add_argument("--incremental-reps", type=int, default=20,
                        help="incremental syncs (nothing new) after each full one (default 20)")
    parser.add_argument("--cli", action="store_true",
                        help="also replicate with `communique peer sync` (page size 1000) each run")
    parser.add_argument("--cli-incremental-reps", type=int, default=5,
                        help="with --cli: incremental `communique peer sync` runs (default 5)")
    parser.add_argument("--seed", type=int, default=2021, help="seed of the generated objects")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "sync-latest.json",
                        help="where to write the raw results (default bench/results/sync-latest.json)")
    parser.add_argument("--report", type=Path, metavar="FILE.json",
                        help="measure nothing: print the table of a results file written by --out")
    args = parser.parse_args(argv)
    args.page_sizes = [int(s) for s in args.page_sizes.split(",")]
    if args.objects <= 0 or args.objects % 1000:
        parser.error("--objects must be a positive multiple of 1,000")
    if any(p <= 0 for p in args.page_sizes) or len(set(args.page_sizes)) != len(args.page_sizes):
        parser.error("--page-sizes must be distinct positive integers")
    return args


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _last_line(output: str) -> str:
    return output.strip().splitlines()[-1]


# -- the content -------------------------------------------------------------------------
@dataclass
class Content:
    """What B holds: every id with the share of MIX it belongs to."""

    shares: dict[str, Share] = field(default_factory=dict)

    def ids(self, pick: Callable[[Share], bool]) -> set[str]:
        return {i for i, share in self.shares.items() if pick(share)}

    def counts(self) -> dict[str, int]:
        return dict(Counter(share.label for share in self.shares.values()))


def indicators(seed: int, number: int) -> tuple[list[dict], list[Share]]:
    """Return the 1,000 indicators of block ``number``, each marked with one level of MIX.

    The indicators are stixgen's (patterns of eleven forms, names, kill-chain phases);
    its TLP 1.0 markings are replaced. The mix is exact in every block; its order is a
    seeded shuffle, so block ``n`` is always the same.
    """
    maker = stixgen.Envelope(seed, number, 1000)
    objects = [maker.indicator() for _ in range(1000)]
    shares = [share for share in MIX for _ in range(share.per_thousand)]
    random.Random(f"sync-bench:{seed}:{number}").shuffle(shares)
    for obj, share in zip(objects, shares):
        obj.pop("object_marking_refs", None)
        obj["object_marking_refs"] = [TLP2[share.marking]]
        if share.marking == "red":
            obj["extensions"] = {RECIPIENTS_EXTENSION: {
                "extension_type": "property-extension",
                "recipient_organizations": [A_ORG if share.names_a else OTHER_ORG]}}
    return objects, shares


# -- node B: the source ------------------------------------------------------------------
@dataclass
class Source:
    server: servers.Server
    database: str
    collection: str
    token: str
    fingerprint: str
    content: Content
    fill: dict

    @property
    def api_root_url(self) -> str:
        return f"{self.server.base_url}/{self.server.api_root}/"

    def cpu_seconds(self) -> float:
        """User and system CPU time of B's server process so far."""
        fields = Path(f"/proc/{self.server.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_source(workdir: Path, args: argparse.Namespace) -> Source:
    """Set node B up with its CLI, fill it with `communique import`, and serve it."""
    workdir.mkdir()
    database = f"sqlite:///{workdir}/source.db"

    def cli(*argv: str) -> str:
        return servers.communique_cli(*argv, database=database)

    init = cli("init")
    fingerprint = next(line.split()[-1] for line in init.splitlines()
                       if line.startswith("fingerprint"))
    for org in (B_ORG, A_ORG, OTHER_ORG):
        cli("org", "add", org)
    cli("user", "add", B_WRITER, "--org", B_ORG, "--role", "analyst")
    cli("user", "add", A_AT_B, "--org", A_ORG, "--role", "reader")
    token = _last_line(cli("token", "create", A_AT_B))
    collection = _last_line(cli("collection", "add", "Shared with the destination",
                                "--read", B_ORG, "--write", B_ORG, "--read", A_ORG))

    content = Content()
    import_seconds = 0.0
    generate_seconds = 0.0
    for start in range(0, args.objects, CHUNK):
        began = time.perf_counter()
        batch: list[dict] = []
        for number in range(start // 1000, min(start + CHUNK, args.objects) // 1000):
            objects, shares = indicators(args.seed, number)
            batch.extend(objects)
            content.shares.update((obj["id"], share) for obj, share in zip(objects, shares))
        bundle = workdir / "import.json"
        bundle.write_bytes(orjson.dumps({"type": "bundle", "id": f"bundle--{uuid.uuid4()}",
                                         "objects": batch}))
        generate_seconds += time.perf_counter() - began
        began = time.perf_counter()
        output = cli("import", str(bundle), "--collection", collection, "--as", B_WRITER)
        import_seconds += time.perf_counter() - began
        if f"{len(batch)} added" not in output:
            raise RuntimeError(f"import into B: {output}")
        log(f"  B holds {start + len(batch):,} objects")
        bundle.unlink()
    if len(content.shares) != args.objects:
        raise RuntimeError(f"generated {len(content.shares)} distinct ids, not {args.objects}")

    max_page = max([1000, *args.page_sizes])
    saved = os.environ.get("COMMUNIQUE_MAX_PAGE_SIZE")
    os.environ["COMMUNIQUE_MAX_PAGE_SIZE"] = str(max_page)
    try:
        server = servers.start_communique(workdir, prepare=lambda w: (database, token, collection))
    finally:
        if saved is None:
            os.environ.pop("COMMUNIQUE_MAX_PAGE_SIZE")
        else:
            os.environ["COMMUNIQUE_MAX_PAGE_SIZE"] = saved
    server.name = "node B"
    fill = {"objects": args.objects, "mix": content.counts(), "max_page_size": max_page,
            "generate_seconds": generate_seconds, "import_seconds": import_seconds,
            "import_objects_per_s": args.objects / import_seconds,
            "database_mib": _size_mib(workdir, "source.db")}
    return Source(server, database, collection, token, fingerprint, content, fill)


def _size_mib(directory: Path, name: str) -> float:
    return round(sum(p.stat().st_size for p in directory.glob(name + "*")) / 2**20, 1)


# -- node A: the destination -------------------------------------------------------------
@dataclass
class Destination:
    workdir: Path
    database: str
    collection: str

    def cli(self, *argv: str) -> str:
        return servers.communique_cli(*argv, database=self.database)


def make_destination(workdir: Path, source: Source) -> Destination:
    """A fresh node A: init, the two organisations, a private collection, and B as a peer."""
    workdir.mkdir()
    node = Destination(workdir, f"sqlite:///{workdir}/destination.db", "")
    node.cli("init")
    node.cli("org", "add", A_ORG)
    node.cli("org", "add", B_ORG)
    node.collection = _last_line(node.cli("collection", "add", "From the source", "--alias",
                                          LOCAL, "--read", A_ORG, "--write", A_ORG))
    token_file = workdir / "source.token"
    token_file.write_text(source.token + "\n")
    token_file.chmod(0o600)
    node.cli("peer", "add", PEER, "--url", source.api_root_url, "--token-file", str(token_file),
             "--pull", f"{source.collection}={LOCAL}", "--org", B_ORG, "--as", A_ORG,
             "--max-tlp", "amber", "--fingerprint", source.fingerprint)
    return node


# -- where the time goes: timing wrappers, in this process only ----------------------------
class Clock:
    """Seconds and calls per part, added up by the wrappers while they are installed."""

    def __init__(self) -> None:
        self.seconds: Counter = Counter()
        self.calls: Counter = Counter()

    def reset(self) -> None:
        self.seconds.clear()
        self.calls.clear()

    def timed(self, part: str, function: Callable) -> Callable:
        def wrapper(*a: Any, **kw: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*a, **kw)
            finally:
                self.seconds[part] += time.perf_counter() - started
                self.calls[part] += 1
        return wrapper

    def timed_block(self, part: str, function: Callable[[], Any]) -> Callable:
        @contextlib.contextmanager
        def wrapper() -> Iterator[Any]:
            started = time.perf_counter()
            try:
                with function() as value:
                    yield value
            finally:
                self.seconds[part] += time.perf_counter() - started
                self.calls[part] += 1
        return wrapper


@contextlib.contextmanager
def instrumented(store: Any, clock: Clock) -> Iterator[None]:
    """Put timing wrappers around the parts of a pull; take them away afterwards.

    - ``fetch``: ``TaxiiClient.get_objects`` (request, B's work, transfer, JSON parse);
      within it ``http`` (``_request``: the round trip and body) and ``parse``
      (``_json_object``: orjson and the envelope checks);
    - ``check``: ``ingest.check`` (validation and signature checks, before the write);
      within it ``verify`` (``signatures.verify``, per object);
    - ``write``: every ``store.write()`` block of the run, commit included; within it
      ``store_checked`` (``ingest.store_checked``: the objects' inserts);
    - ``read``: every ``store.read()`` block;
    - ``link``: ``engine._run``, the whole run of one link (one collection);
    - once per peer and run: ``client_init`` (``TaxiiClient()``, an ``httpx.Client``),
      ``api_root`` (the API root request), ``identity`` (``engine.check_identity``, a
      write transaction) and ``keyring`` (``node.keyring``, the trusted keys loaded).
    """
    from communique import ingest, node
    from communique.provenance import signatures
    from communique.sync import client, engine

    taxii = client.TaxiiClient
    saved = [(taxii, "get_objects", taxii.__dict__["get_objects"]),
             (taxii, "_request", taxii.__dict__["_request"]),
             (taxii, "_json_object", taxii.__dict__["_json_object"]),
             (taxii, "__init__", taxii.__dict__["__init__"]),
             (taxii, "api_root", taxii.__dict__["api_root"]),
             (ingest, "check", ingest.check),
             (ingest, "store_checked", ingest.store_checked),
             (signatures, "verify", signatures.verify),
             (engine, "_run", engine._run),
             (engine, "check_identity", engine.check_identity),
             (node, "keyring", node.keyring)]
    taxii.get_objects = clock.timed("fetch", taxii.get_objects)
    taxii._request = clock.timed("http", taxii._request)
    taxii._json_object = staticmethod(clock.timed("parse", saved[2][2].__func__))
    taxii.__init__ = clock.timed("client_init", taxii.__init__)
    taxii.api_root = clock.timed("api_root", taxii.api_root)
    ingest.check = clock.timed("check", ingest.check)
    ingest.store_checked = clock.timed("store_checked", ingest.store_checked)
    signatures.verify = clock.timed("verify", signatures.verify)
    engine._run = clock.timed("link", engine._run)
    engine.check_identity = clock.timed("identity", engine.check_identity)
    node.keyring = clock.timed("keyring", node.keyring)
    store.write = clock.timed_block("write", store.write)
    store.read = clock.timed_block("read", store.read)
    try:
        yield
    finally:
        for owner, name, value in saved:
            setattr(owner, name, value)
        del store.write, store.read  # back to the class's methods


# -- one replication -----------------------------------------------------------------------
def replicate(node: Destination, source: Source, page_size: int, reps: int) -> dict:
    """Full replication into the empty A, then ``reps`` incremental syncs; return the timings."""
    from communique.store.engines import open_store
    from communique.sync import engine

    store = open_store(node.database)
    try:
        with store.read() as tx:
            peer = tx.find_peer(PEER)
        options = engine.Options(page_size=page_size)
        clock = Clock()
        with instrumented(store, clock):
            cpu_a, cpu_b = time.process_time(), source.cpu_seconds()
            started = time.perf_counter()
            runs = engine.sync_peer(store, peer, options)
            wall = time.perf_counter() - started
            cpu_a, cpu_b = time.process_time() - cpu_a, source.cpu_seconds() - cpu_b
            full = _moved(runs)
            parts = dict(clock.seconds)
            calls = dict(clock.calls)

            incremental_ms, link_ms, incremental_parts = [], [], []
            for _ in range(reps):
                clock.reset()
                started = time.perf_counter()
                again = _moved(engine.sync_peer(store, peer, options))
                incremental_ms.append((time.perf_counter() - started) * 1000)
                link_ms.append(clock.seconds["link"] * 1000)
                incremental_parts.append({k: v * 1000 for k, v in clock.seconds.items()})
                if again["added"] or again["duplicate"] or again["refused"] or again["pages"] != 1:
                    raise RuntimeError(f"an incremental sync with nothing new moved something: {again}")
    finally:
        store.close()
    stored = full["added"]
    return {
        "page_size": page_size, "wall_s": wall, "moved": full,
        "objects_per_s": stored / wall, "source_objects_per_s": source.fill["objects"] / wall,
        "received_per_s": (full["added"] + full["refused"]) / wall,
        "parts_s": parts, "calls": calls,
        "other_s": wall - sum(parts.get(k, 0.0) for k in ("fetch", "check", "write", "read")),
        "cpu_a_s": cpu_a, "cpu_b_s": cpu_b,
        "incremental_ms": incremental_ms, "incremental_median_ms": statistics.median(incremental_ms),
        "incremental_link_ms": link_ms, "incremental_link_median_ms": statistics.median(link_ms),
        # per part, the median over the repetitions
        "incremental_parts_ms": {k: statistics.median(p.get(k, 0.0) for p in incremental_parts)
                                 for k in set().union(*incremental_parts)},
    }


def _moved(runs: list) -> dict:
    if len(runs) != 1:
        raise RuntimeError(f"expected one link, got {len(runs)}")
    if runs[0].error:
        raise RuntimeError(f"the sync failed: {runs[0].error}")
    moved = runs[0].moved
    return {"added": moved.added, "duplicate": moved.duplicate, "refused": moved.refused,
            "pages": moved.pages, "complete": moved.complete, "reasons": moved.reasons or {}}


def check_destination(node: Destination, source: Source, moved: dict | None) -> dict:
    """A holds exactly the non-RED objects, one version each, every signature VERIFIED."""
    expected = source.content.ids(lambda s: s.stored)
    refused_expected = len(source.content.ids(lambda s: s.served and not s.stored))
    path = node.database.removeprefix("sqlite:///")
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        rows = db.execute("SELECT stix_id, signature, tlp FROM objects WHERE collection_id = ?",
                          (node.collection,)).fetchall()
    ids = [r[0] for r in rows]
    problems = []
    if len(ids) != len(set(ids)):
        problems.append(f"{len(ids) - len(set(ids))} duplicate versions")
    if set(ids) != expected:
        problems.append(f"{len(expected - set(ids))} missing, {len(set(ids) - expected)} unexpected")
    unverified = sum(r[1] != 1 for r in rows)  # signatures.Status.VERIFIED
    if unverified:
        problems.append(f"{unverified} objects not VERIFIED")
    red = sum(r[2] == 4 for r in rows)
    if red:
        problems.append(f"{red} TLP:RED objects stored")
    if moved is not None:
        if moved["added"] != len(expected):
            problems.append(f"the run says {moved['added']} added, expected {len(expected)}")
        if moved["refused"] != refused_expected:
            problems.append(f"the run says {moved['refused']} refused, expected {refused_expected}")
    if problems:
        raise RuntimeError("node A is wrong: " + "; ".join(problems))
    return {"stored": len(ids), "expected": len(expected), "verified": len(rows) - unverified,
            "red_stored": red, "refused": moved["refused"] if moved else None, "ok": True}


def verification_alone(node: Destination) -> dict:
    """Time ``signatures.verify`` alone over the objects A stored, and its two halves."""
    from communique import node as node_module
    from communique.provenance import signatures
    from communique.stix.validate import validate
    from communique.store.engines import open_store

    store = open_store(node.database)
    try:
        keyring = node_module.keyring(store)
    finally:
        store.close()
    path = node.database.removeprefix("sqlite:///")
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        bodies = [r[0] for r in db.execute("SELECT body FROM objects WHERE collection_id = ?",
                                           (node.collection,))]
    objects = [orjson.loads(body) for body in bodies]
    started = time.perf_counter()
    verdicts = [signatures.verify(raw, keyring) for raw in objects]
    verify = time.perf_counter() - started
    if any(v.status is not signatures.Status.VERIFIED for v in verdicts):
        raise RuntimeError("verification alone: not every object verifies")
    started = time.perf_counter()
    for raw in objects:
        signatures.canonical_payload(raw)
    canonical = time.perf_counter() - started
    started = time.perf_counter()
    for raw in objects:
        validate(raw)
    validation = time.perf_counter() - started
    # The Ed25519 check alone (OpenSSL, through cryptography), on the exact bytes the JWS
    # covers: BASE64URL(header) "." BASE64URL(canonical payload), RFC 7515 Appendix F.
    public = {kid: trusted.key.public_key for kid, trusted in keyring.items()}
    signed = []
    for raw in objects:
        compact = raw["extensions"][signatures.PROVENANCE_EXTENSION]["signature"]
        header, _, signature = compact.split(".")
        kid = orjson.loads(_b64(header))["kid"]
        message = header.encode() + b"." + base64.urlsafe_b64encode(
            signatures.canonical_payload(raw)).rstrip(b"=")
        signed.append((public[kid], _b64(signature), message))
    started = time.perf_counter()
    for key, signature, message in signed:
        key.verify(signature, message)  # raises InvalidSignature on a mismatch
    ed25519 = time.perf_counter() - started
    count = len(objects)
    return {"objects": count, "verify_s": verify, "verify_us": verify / count * 1e6,
            "canonical_s": canonical, "canonical_us": canonical / count * 1e6,
            "ed25519_s": ed25519, "ed25519_us": ed25519 / count * 1e6,
            "jose_rest_us": (verify - canonical - ed25519) / count * 1e6,
            "validate_s": validation, "validate_us": validation / count * 1e6,
            "body_bytes_mean": sum(map(len, bodies)) / count}


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def replicate_cli(node: Destination, source: Source, reps: int) -> dict:
    """Full replication with `communique peer sync`, then incremental ones; wall times."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    output = node.cli("peer", "sync", PEER)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
    incremental = []
    for _ in range(reps):
        started = time.perf_counter()
        again = node.cli("peer", "sync", PEER)
        incremental.append((time.perf_counter() - started) * 1000)
        if " 0 pulled, 0 already there, 0 refused" not in again:
            raise RuntimeError(f"incremental `peer sync` moved something: {again}")
    startup = []
    for _ in range(reps):  # the same interpreter start and store opening, no sync
        started = time.perf_counter()
        node.cli("peer", "list")
        startup.append((time.perf_counter() - started) * 1000)
    added = int(output.split(": ", 1)[1].split(" pulled")[0])
    return {"page_size": 1000, "wall_s": wall, "output": output.strip(), "added": added,
            "objects_per_s": added / wall, "cpu_s": cpu, "objects_per_cpu_s": added / cpu,
            "incremental_ms": incremental,
            "incremental_median_ms": statistics.median(incremental),
            "peer_list_ms": startup, "peer_list_median_ms": statistics.median(startup)}


# -- the whole benchmark -------------------------------------------------------------------
def one_run(number: int, workroot: Path, source: Source, args: argparse.Namespace) -> dict:
    result: dict = {"run": number + 1, "loadavg_start": report.loadavg(), "syncs": []}
    sizes = args.page_sizes[number % len(args.page_sizes):] + \
        args.page_sizes[:number % len(args.page_sizes)]  # rotate the order run by run
    for page_size in sizes:
        node = make_destination(workroot / f"a-{number}-{page_size}", source)
        log(f"run {number + 1}/{args.runs}: full replication, page size {page_size}")
        timing = replicate(node, source, page_size, args.incremental_reps)
        timing["correctness"] = check_destination(node, source, timing["moved"])
        log(f"  {timing['moved']['added']:,} stored in {timing['wall_s']:.1f} s = "
            f"{timing['objects_per_s']:,.0f} objects/s; incremental "
            f"{timing['incremental_median_ms']:.1f} ms (link {timing['incremental_link_median_ms']:.1f} ms)")
        if page_size == args.page_sizes[0]:
            result["verify_alone"] = verification_alone(node)
            v = result["verify_alone"]
            log(f"  verification alone: {v['verify_us']:.0f} µs/object "
                f"({v['verify_s']:.1f} s for {v['objects']:,})")
        result["syncs"].append(timing)
        shutil.rmtree(node.workdir, ignore_errors=True)
    result["syncs"].sort(key=lambda s: args.page_sizes.index(s["page_size"]))
    if args.cli:
        node = make_destination(workroot / f"a-{number}-cli", source)
        log(f"run {number + 1}/{args.runs}: full replication with `communique peer sync`")
        result["cli"] = replicate_cli(node, source, args.cli_incremental_reps)
        result["cli"]["correctness"] = check_destination(node, source, None)
        log(f"  {result['cli']['objects_per_s']:,.0f} objects/s; incremental "
            f"{result['cli']['incremental_median_ms']:.0f} ms "
            f"(`peer list` {result['cli']['peer_list_median_ms']:.0f} ms)")
        shutil.rmtree(node.workdir, ignore_errors=True)
    result["loadavg_end"] = report.loadavg()
    return result


def summarise(results: dict) -> dict:
    """Medians over runs, per page size."""
    runs = results["runs"]

    def med(values: list) -> float | None:
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else None

    per_size = {}
    for size in results["config"]["page_sizes"]:
        syncs = [s for r in runs for s in r["syncs"] if s["page_size"] == size]
        parts = {k: med([s["parts_s"].get(k, 0.0) / s["wall_s"] for s in syncs])
                 for k in ("fetch", "http", "parse", "check", "verify", "write", "store_checked",
                           "read")}
        parts["other"] = med([s["other_s"] / s["wall_s"] for s in syncs])
        per_size[size] = {
            "objects_per_s": med([s["objects_per_s"] for s in syncs]),
            "source_objects_per_s": med([s["source_objects_per_s"] for s in syncs]),
            "wall_s": med([s["wall_s"] for s in syncs]),
            "incremental_ms": med([s["incremental_median_ms"] for s in syncs]),
            "incremental_link_ms": med([s["incremental_link_median_ms"] for s in syncs]),
            "incremental_parts_ms": {k: med([s["incremental_parts_ms"].get(k, 0.0) for s in syncs])
                                     for k in ("client_init", "api_root", "identity", "keyring",
                                               "link", "http", "write", "read")},
            "shares": parts,
            "cpu_a_share": med([s["cpu_a_s"] / s["wall_s"] for s in syncs]),
            "objects_per_cpu_s_a": med([s["moved"]["added"] / s["cpu_a_s"] for s in syncs]),
            "cpu_b_share": med([s["cpu_b_s"] / s["wall_s"] for s in syncs]),
            "per_run_objects_per_s": [s["objects_per_s"] for s in syncs],
            "per_run_incremental_ms": [s["incremental_median_ms"] for s in syncs],
        }
    first = results["config"]["page_sizes"][0]
    verify = [r["verify_alone"] for r in runs if "verify_alone" in r]
    walls = {r["run"]: next(s["wall_s"] for s in r["syncs"] if s["page_size"] == first)
             for r in runs}
    summary: dict = {"page_sizes": per_size, "verify_alone": {
        "verify_us": med([v["verify_us"] for v in verify]),
        "canonical_us": med([v["canonical_us"] for v in verify]),
        "ed25519_us": med([v["ed25519_us"] for v in verify]),
        "jose_rest_us": med([v["jose_rest_us"] for v in verify]),
        "validate_us": med([v["validate_us"] for v in verify]),
        "share_of_full_sync": med([r["verify_alone"]["verify_s"] / walls[r["run"]]
                                   for r in runs if "verify_alone" in r]),
        "body_bytes_mean": med([v["body_bytes_mean"] for v in verify])}}
    cli = [r["cli"] for r in runs if "cli" in r]
    if cli:
        summary["cli"] = {"objects_per_s": med([c["objects_per_s"] for c in cli]),
                          "objects_per_cpu_s": med([c.get("objects_per_cpu_s") for c in cli]),
                          "incremental_ms": med([c["incremental_median_ms"] for c in cli]),
                          "peer_list_ms": med([c["peer_list_median_ms"] for c in cli])}
    best = max(per_size.values(), key=lambda s: s["objects_per_s"] or 0)
    default = per_size.get(1000) or per_size[first]
    summary["targets"] = {
        "full_objects_per_s": {"target": TARGET_RATE, "page_size_1000": default["objects_per_s"],
                               "best": best["objects_per_s"],
                               "met": (default["objects_per_s"] or 0) >= TARGET_RATE},
        "incremental_ms": {"target": TARGET_INCREMENTAL_MS, "value": default["incremental_ms"],
                           "met": (default["incremental_ms"] or 1e9) < TARGET_INCREMENTAL_MS},
    }
    return summary


def render(results: dict) -> str:
    """The table of medians, the breakdown and the targets."""
    m, cfg, s, fill = results["machine"], results["config"], results["summary"], results["fill"]
    sizes = cfg["page_sizes"]
    lines = [
        (f"Federation benchmark: {cfg['objects']:,} objects from node B to an empty node A, "
         f"median of {len(results['runs'])} run(s)"),
        (f"machine: {m['cpu']}, {m['usable_cores']} usable cores, Python {m['python']}, "
         f"SQLite {m['sqlite']}; load average {m['loadavg_start']} at start, "
         f"{m.get('loadavg_end')} at end"),
        f"code: src/ at {m['revision']} (digest {m.get('source_digest')})",
        (f"B: {fill['objects']:,} indicators imported in {fill['import_seconds']:.1f} s "
         f"({fill['import_objects_per_s']:,.0f}/s, signed by B); mix {fill['mix']}"),
        "",
    ]
    by = {int(k): v for k, v in s["page_sizes"].items()}
    header = "| measure | " + " | ".join(f"page size {p:,}" for p in sizes) + " | target |"
    rows = [header, "|---|" + "---|" * len(sizes) + "---|"]

    def row(label: str, pick: Callable[[dict], Any], fmt: str, target: str = "") -> None:
        cells = []
        for p in sizes:
            value = pick(by[p])
            cells.append("—" if value is None else format(value, fmt))
        rows.append(f"| {label} | " + " | ".join(cells) + f" | {target} |")

    row("full replication, objects stored at A per s", lambda x: x["objects_per_s"], ",.0f",
        f">= {TARGET_RATE:,}")
    row(f"full replication, B's {cfg['objects']:,} objects per s",
        lambda x: x["source_objects_per_s"], ",.0f")
    row("full replication, wall s", lambda x: x["wall_s"], ".1f")
    row("incremental sync, nothing new, ms per call (1 collection)",
        lambda x: x["incremental_ms"], ".1f", f"< {TARGET_INCREMENTAL_MS:.0f}")
    for key, label in (("client_init", "  of which creating the HTTP client (httpx.Client)"),
                       ("api_root", "  of which the API root request"),
                       ("identity", "  of which the peer's key check (check_identity)"),
                       ("keyring", "  of which loading the trusted keys (node.keyring)")):
        row(label + ", ms", lambda x, k=key: x["incremental_parts_ms"].get(k), ".1f")
    row("  of which the collection's link, ms", lambda x: x["incremental_link_ms"], ".1f")
    for key, label in (("fetch", "share: fetching pages from B (get_objects)"),
                       ("http", "  of which the HTTP round trip (B's work, transfer)"),
                       ("parse", "  of which parsing the JSON (orjson, checks)"),
                       ("check", "share: checking objects (ingest.check)"),
                       ("verify", "  of which signatures.verify"),
                       ("write", "share: store write transactions, commit included"),
                       ("store_checked", "  of which ingest.store_checked (inserts)"),
                       ("read", "share: store read transactions"),
                       ("other", "share: the rest (TLP rule, loop, set-up)")):
        row(label, lambda x, k=key: None if x["shares"][k] is None else 100 * x["shares"][k],
            ".1f")
    row("CPU of A (this process) / wall, %", lambda x: 100 * x["cpu_a_share"], ".0f")
    row("CPU of B (server process) / wall, %", lambda x: 100 * x["cpu_b_share"], ".0f")
    row("objects stored per CPU second of A", lambda x: x["objects_per_cpu_s_a"], ",.0f")
    lines += rows
    v = s["verify_alone"]
    verified = results["runs"][0]["verify_alone"]["objects"]
    lines += ["", (f"signatures.verify alone, over the {verified:,} stored objects (mean body "
                   f"{v['body_bytes_mean']:,.0f} bytes): {v['verify_us']:.0f} µs/object = "
                   f"{100 * v['share_of_full_sync']:.0f} % of the full replication's wall time "
                   f"(page size {sizes[0]:,}); of which the RFC 8785 canonical form "
                   f"{v['canonical_us']:.0f} µs, the Ed25519 check itself (OpenSSL) "
                   f"{v['ed25519_us']:.0f} µs, the JWS handling around it "
                   f"{v['jose_rest_us']:.0f} µs; STIX validation alone "
                   f"{v['validate_us']:.0f} µs/object")]
    if "cli" in s:
        c = s["cli"]
        per_cpu = ("" if c["objects_per_cpu_s"] is None else
                   f" ({c['objects_per_cpu_s']:,.0f} per CPU second of the command)")
        lines.append(f"`communique peer sync` (page size 1,000): {c['objects_per_s']:,.0f} objects "
                     f"stored/s{per_cpu}; incremental {c['incremental_ms']:.0f} ms per command, "
                     f"against {c['peer_list_ms']:.0f} ms for `communique peer list` "
                     "(interpreter start)")
    t = s["targets"]
    full, inc = t["full_objects_per_s"], t["incremental_ms"]
    lines += ["", (f"target full replication >= {full['target']:,} objects/s: "
                   f"{'MET' if full['met'] else 'NOT MET'} ({full['page_size_1000']:,.0f} at "
                   f"the default page size; best {full['best']:,.0f})"),
              (f"target incremental < {inc['target']:.0f} ms per collection: "
               f"{'MET' if inc['met'] else 'NOT MET'} ({inc['value']:.1f} ms)")]
    for r in results["runs"]:
        lines.append(f"run {r['run']}: " + ", ".join(
            f"page {x['page_size']:,}: {x['objects_per_s']:,.0f}/s, incremental "
            f"{x['incremental_median_ms']:.1f} ms" for x in r["syncs"])
            + f"; load {r['loadavg_start']} → {r['loadavg_end']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report:
        saved = orjson.loads(args.report.read_bytes())
        saved["summary"] = summarise(saved)
        print(render(saved))
        return 0
    results: dict = {"machine": report.machine(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                     "config": {k: (str(v) if isinstance(v, Path) else v)
                                for k, v in vars(args).items()},
                     "runs": []}
    workroot = Path(tempfile.mkdtemp(prefix="communique-sync-bench-"))
    log(f"working in {workroot}")
    source = None
    try:
        # Every `communique` process, and node A in this process, runs a copy of src/.
        servers.SOURCE = run.snapshot_source(workroot / "src")
        sys.path.insert(0, str(servers.SOURCE))
        import communique

        if not Path(communique.__file__).is_relative_to(servers.SOURCE):
            raise RuntimeError(f"communique imported from {communique.__file__}, not the snapshot")
        results["machine"]["source_digest"] = run.source_digest(servers.SOURCE)
        log(f"measuring a snapshot of src/ at {results['machine']['revision']} "
            f"(digest {results['machine']['source_digest']})")
        log(f"node B: importing {args.objects:,} indicators")
        source = start_source(workroot / "b", args)
        results["fill"] = source.fill
        log(f"  imported in {source.fill['import_seconds']:.1f} s "
            f"({source.fill['import_objects_per_s']:,.0f} objects/s); serving on "
            f"{source.server.base_url} (max_page_size {source.fill['max_page_size']})")
        for number in range(args.runs):
            results["runs"].append(one_run(number, workroot, source, args))
    finally:
        if source is not None:
            source.server.stop()
        shutil.rmtree(workroot, ignore_errors=True)
    results["machine"]["loadavg_end"] = report.loadavg()
    results["summary"] = summarise(results)
    report.save(results, args.out, render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
