"""Measure what TLP 2.0 enforcement costs on reads: this tree's code against the code before it.

    .venv/bin/python bench/tlp.py                          # 10k and 1M objects, 3 runs
    .venv/bin/python bench/tlp.py --sizes 10000 --runs 1   # smoke run, under a minute
    .venv/bin/python bench/tlp.py --report bench/results/tlp-latest.json

Two Communiqué servers run side by side, each on SQLite with one worker: a
snapshot of src/ as it is now ("tlp"), and src/ at --baseline ("baseline",
default 8d15c9a, the last commit before TLP enforcement). Each has a producer
organisation, which writes, and a reader organisation, which may only read. Both
get the same envelopes, in which every object carries a TLP level from a fixed
mix (``MIX``). At each fill level the reader GETs single objects it may see, and
pages through the collection and its manifest. bench/README.md ("TLP
enforcement") explains every figure.

With --unenforced, a third server ("tlp-off") runs a copy of the current snapshot
whose store admits every object to every reader (its ``_visible`` predicate
replaced by TRUE, in the temporary copy only): the same code but for the
predicate, so that its cost can be told apart from everything else that changed
since the baseline.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import orjson
import requests

import measure
import report
import run
import servers
import stixgen

HERE = Path(__file__).resolve().parent
BASELINE = "8d15c9a"
LIMIT = 1000  # objects per page, the server's maximum
WARMUP = 5  # GETs per server before the timed ones
SETTLE_S = 2.0  # pause after a fill, so that the WAL checkpoint thread is done
MIN_PAGING_S = 3.0  # seconds of paging per server and level, at least one round of A B B A
HIDDEN_CHECKS = 20  # untimed GETs of objects the reader may not see, at each level
THRESHOLD = 0.20  # "within 20 %": a latency at most 1.2x, a rate at least 0.8x the baseline's

# Copied from src/communique/stix/markings.py: the baseline has no such module.
TLP2 = {
    "clear": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    "green": "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    "amber": "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    "amber+strict": "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    "red": "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
RECIPIENTS_EXTENSION = "extension-definition--1a97b63f-06a8-4ee3-a22d-7f4d339a07d0"
PRODUCER, READER, OTHER = "Producer CERT", "Reader CERT", "Third CERT"
WRITER_EMAIL, READER_EMAIL = "writer@producer.example", "reader@reader.example"


class Share(NamedTuple):
    """One TLP level of the mix: how many objects in 1,000 carry it, and whether the reader sees them."""

    label: str
    per_thousand: int
    marking: str | None  # key of TLP2; None: unmarked, so the collection's default (AMBER)
    names_reader: bool  # for RED: the recipients extension names the reader's organisation
    visible: bool


MIX = (
    Share("TLP:CLEAR", 200, "clear", False, True),
    Share("TLP:GREEN", 300, "green", False, True),
    Share("TLP:AMBER", 250, "amber", False, True),
    Share("TLP:AMBER+STRICT", 100, "amber+strict", False, True),
    Share("TLP:RED naming the reader", 50, "red", True, True),
    Share("TLP:RED naming another organisation", 50, "red", False, False),
    Share("unmarked (collection default AMBER)", 50, None, False, True),
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,1000000",
                        help="fill levels, comma-separated multiples of 1,000 (default 10000,1000000)")
    parser.add_argument("--runs", type=int, default=3, help="repetitions; medians are reported (default 3)")
    parser.add_argument("--baseline", default=BASELINE,
                        help=f"git commit whose src/ is measured without TLP (default {BASELINE})")
    parser.add_argument("--get-samples", type=int, default=1000,
                        help="timed GETs of one object per server and fill level (default 1000)")
    parser.add_argument("--unenforced", action="store_true",
                        help="also serve the current code with the TLP predicate switched off")
    parser.add_argument("--skip-manifest", action="store_true", help="do not page the manifest")
    parser.add_argument("--seed", type=int, default=2021, help="seed of the generated objects")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "tlp-latest.json",
                        help="where to write the raw results (default bench/results/tlp-latest.json)")
    parser.add_argument("--report", type=Path, metavar="FILE.json",
                        help="measure nothing: print the table of a results file written by --out")
    parser.add_argument("--keep", action="store_true",
                        help="keep the last run's databases (for EXPLAIN QUERY PLAN) and print where")
    parser.add_argument("--request-timeout", type=float, default=1800.0,
                        help="seconds any request may take (default 1800)")
    args = parser.parse_args(argv)
    args.sizes = sorted({int(s) for s in args.sizes.split(",")})
    if any(s <= 0 or s % measure.ENVELOPE_SIZE for s in args.sizes):
        parser.error(f"--sizes must be positive multiples of {measure.ENVELOPE_SIZE}")
    return args


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- the content ---------------------------------------------------------------------------
def mark(objects: list[dict], *, seed: int, number: int) -> list[bool]:
    """Give each object of envelope ``number`` one level of MIX, in place; return which the reader sees.

    The mix is exact in every envelope and its order is shuffled with a seed, so
    envelope ``n`` is always marked the same way. stixgen's TLP 1.0 markings are
    replaced, not added to: an object's level is its most restrictive marking.
    """
    shares = [share for share in MIX for _ in range(share.per_thousand * len(objects) // 1000)]
    shares += [MIX[1]] * (len(objects) - len(shares))  # rounding, for other envelope sizes
    random.Random(f"tlp-bench:{seed}:{number}").shuffle(shares)
    for obj, share in zip(objects, shares):
        obj.pop("object_marking_refs", None)
        obj.pop("granular_markings", None)
        if share.marking:
            obj["object_marking_refs"] = [TLP2[share.marking]]
        if share.marking == "red":
            obj.setdefault("extensions", {})[RECIPIENTS_EXTENSION] = {
                "extension_type": "property-extension",
                "recipient_organizations": [READER if share.names_reader else OTHER]}
    return [share.visible for share in shares]


@dataclass
class Content:
    """What has been posted so far: every id, and whether the reader may see it."""

    seed: int
    ids: list[str] = field(default_factory=list)
    visible: list[bool] = field(default_factory=list)
    next_envelope: int = 0

    @property
    def stored(self) -> int:
        return len(self.ids)

    def next_body(self) -> tuple[bytes, int]:
        """Build, mark and serialise the next envelope; return its body and its size."""
        objects = stixgen.envelope_objects(self.seed, self.next_envelope, measure.ENVELOPE_SIZE)
        self.visible.extend(mark(objects, seed=self.seed, number=self.next_envelope))
        self.ids.extend(obj["id"] for obj in objects)
        self.next_envelope += 1
        return stixgen.envelope_bytes(objects), len(objects)

    def sample(self, count: int, *, visible: bool, salt: str) -> list[str]:
        """Return ``count`` distinct ids (fewer if there are not so many), the same for every run."""
        pool = [i for i, seen in zip(self.ids, self.visible) if seen == visible]
        return random.Random(f"tlp-sample:{self.seed}:{self.stored}:{salt}").sample(
            pool, min(count, len(pool)))


# -- the servers --------------------------------------------------------------------------
@dataclass
class Node:
    """One server under test: the producer writes through ``server``, the reader through ``reader``."""

    name: str
    enforces: bool  # whether it applies TLP, so that the reader sees only the visible objects
    server: servers.Server
    writer: requests.Session
    reader: requests.Session

    @property
    def manifest_url(self) -> str:
        s = self.server
        return f"{s.base_url}/{s.api_root}/collections/{s.collection_id}/manifest/"


@contextlib.contextmanager
def source(path: Path) -> Iterator[None]:
    """Run every `communique` command started meanwhile from ``path`` (servers.SOURCE)."""
    saved, servers.SOURCE = servers.SOURCE, path
    try:
        yield
    finally:
        servers.SOURCE = saved


def _last_line(output: str) -> str:
    return output.strip().splitlines()[-1]


def prepare(workdir: Path, reader_token: dict[str, str]) -> tuple[str, str, str]:
    """Create the producer and the reader, their tokens, and a collection only the producer writes.

    Return (database URL, producer's token, collection id); the reader's token goes
    into ``reader_token["token"]``. Only commands the baseline has are used.
    """
    database = f"sqlite:///{workdir}/bench.db"

    def cli(*args: str) -> str:
        return servers.communique_cli(*args, database=database)

    cli("init")
    cli("org", "add", PRODUCER)
    cli("org", "add", READER)
    cli("user", "add", WRITER_EMAIL, "--org", PRODUCER, "--role", "analyst")
    cli("user", "add", READER_EMAIL, "--org", READER, "--role", "reader")
    token = _last_line(cli("token", "create", WRITER_EMAIL))
    reader_token["token"] = _last_line(cli("token", "create", READER_EMAIL))
    collection = _last_line(cli("collection", "add", "TLP bench", "--read", PRODUCER,
                                "--write", PRODUCER, "--read", READER))
    return database, token, collection


def start(name: str, code: Path, workdir: Path, *, enforces: bool) -> Node:
    """Serve the code in ``code`` from a fresh database in ``workdir``."""
    workdir.mkdir()
    reader_token: dict[str, str] = {}
    with source(code):
        server = servers.start_communique(workdir, prepare=lambda w: prepare(w, reader_token))
    server.name = name
    reader = requests.Session()
    reader.headers.update({"Accept": servers.TAXII,
                           "Authorization": f"Bearer {reader_token['token']}"})
    return Node(name, enforces, server, run.session_for(server), reader)


def snapshot_commit(commit: str, target: Path) -> Path:
    """Extract src/ at ``commit`` into ``target`` with git archive; return the package's parent."""
    target.mkdir()
    archive = subprocess.run(["git", "-C", str(servers.ROOT), "archive", commit, "src"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    code = target / "src"
    check = subprocess.run([str(servers.VENV_BIN / "python"), "-c",
                            "import communique; print(communique.__file__)"],
                           capture_output=True, text=True, check=False,
                           env={**os.environ, "PYTHONPATH": str(code)})
    if not check.stdout.strip().startswith(str(code)):
        raise RuntimeError(f"the snapshot of {commit} is not the one imported: {check.stdout}{check.stderr}")
    return code


def switch_off_tlp(code: Path, target: Path) -> Path:
    """Copy the snapshot ``code`` to ``target`` with the store's TLP predicate replaced by TRUE."""
    shutil.copytree(code, target)
    sql = target / "communique" / "store" / "sql.py"
    with open(sql, "a") as module:
        module.write("\n\n# Appended by bench/tlp.py --unenforced: every reader sees every object.\n"
                     "import sqlalchemy as _bench_sa\n"
                     "SqlTx._visible = staticmethod(lambda visibility: _bench_sa.true())\n")
    return target


def short_revision(commit: str) -> str:
    return subprocess.run(["git", "-C", str(servers.ROOT), "rev-parse", "--short", commit],
                          capture_output=True, text=True, check=True).stdout.strip()


# -- the measurements ----------------------------------------------------------------------
def turns(nodes: list, index: int) -> list:
    """Return the nodes rotated by ``index``, so that none always goes first."""
    shift = index % len(nodes)
    return nodes[shift:] + nodes[:shift]


def post(node: Node, body: bytes, size: int, timeout: float) -> float:
    """POST one envelope as the producer; return the seconds it took."""
    began = time.perf_counter()
    response = node.writer.post(node.server.objects_url, data=body,
                                headers={"Content-Type": servers.TAXII}, timeout=timeout)
    elapsed = time.perf_counter() - began
    status = orjson.loads(response.content) if response.status_code == 202 else {}
    if status.get("success_count") != size or status.get("failure_count"):
        raise RuntimeError(f"{node.name}: POST answered {response.status_code}: {response.text[:800]}")
    return elapsed


def fill_to(nodes: list[Node], content: Content, level: int, timeout: float) -> dict[str, dict]:
    """Post envelopes to every node until ``level`` objects are stored; return each one's timings."""
    seconds: dict[str, list[float]] = {node.name: [] for node in nodes}
    while content.stored < level:
        number = content.next_envelope
        body, size = content.next_body()
        for node in turns(nodes, number):
            seconds[node.name].append(post(node, body, size, timeout))
    return {name: {"envelopes": len(s), "envelope_seconds": s,
                   "step_objects_per_s": len(s) * measure.ENVELOPE_SIZE / sum(s)}
            for name, s in seconds.items()}


def timed_get(node: Node, object_id: str, timeout: float) -> float:
    """GET one object as the reader; return the seconds it took."""
    began = time.perf_counter()
    response = node.reader.get(node.server.object_url(object_id), timeout=timeout)
    elapsed = time.perf_counter() - began
    if response.status_code != 200 or object_id.encode() not in response.content:
        raise RuntimeError(f"{node.name}: GET {object_id} answered {response.status_code}: "
                           f"{response.text[:300]}")
    return elapsed


def get_objects(nodes: list[Node], ids: list[str], timeout: float) -> dict[str, dict]:
    """Time GETs of ``ids`` on every node, request by request in rotating order."""
    for node in nodes:
        for object_id in ids[:WARMUP]:
            timed_get(node, object_id, timeout)
    latencies: dict[str, list[float]] = {node.name: [] for node in nodes}
    for index, object_id in enumerate(ids[WARMUP:]):
        for node in turns(nodes, index):
            latencies[node.name].append(timed_get(node, object_id, timeout))
    return {name: _latency_summary(values) for name, values in latencies.items()}


def _latency_summary(seconds: list[float]) -> dict:
    ordered = sorted(seconds)
    return {"samples": len(ordered), "median_ms": statistics.median(ordered) * 1000,
            "p95_ms": ordered[max(0, -(-95 * len(ordered) // 100) - 1)] * 1000,  # nearest rank
            "max_ms": ordered[-1] * 1000, "latencies_ms": [round(x * 1000, 3) for x in seconds]}


def check_hidden(nodes: list[Node], ids: list[str], timeout: float) -> None:
    """Untimed: the enforcing node must answer 404 for objects the reader may not see."""
    for node in nodes:
        for object_id in ids:
            status = node.reader.get(node.server.object_url(object_id), timeout=timeout).status_code
            if status != (404 if node.enforces else 200):
                raise RuntimeError(f"{node.name}: GET of hidden {object_id} answered {status}")


def page_through(nodes: list[Node], expected: dict[str, int], timeout: float,
                 url_of: Callable[[Node], str | None]) -> dict[str, dict]:
    """Page through every node's listing in rounds of A B B A, until each has paged MIN_PAGING_S.

    A small collection pages in a fraction of a second, too short to time once.
    """
    passes: dict[str, list[dict]] = {node.name: [] for node in nodes}
    while min(sum(p["seconds"] for p in done) for done in passes.values()) < MIN_PAGING_S:
        for node in [*nodes, *nodes[::-1]]:
            passes[node.name].append(measure.page_all(
                node.server, node.reader, expected=expected[node.name], limit=LIMIT,
                request_timeout=timeout, budget=None, url=url_of(node)))
    return {name: _paging_summary(done) for name, done in passes.items()}


def _paging_summary(passes: list[dict]) -> dict:
    seconds = sum(p["seconds"] for p in passes)
    return {"objects": passes[0]["objects"], "pages": passes[0]["pages"],
            "objects_per_s": sum(p["objects"] for p in passes) / seconds,
            "pages_per_s": sum(p["pages"] for p in passes) / seconds,
            "passes_count": len(passes),
            "first_page_ms": statistics.median(p["first_page_ms"] for p in passes),
            "page_ms_median": statistics.median(p["page_ms_median"] for p in passes),
            "passes": passes}


def measure_level(nodes: list[Node], content: Content, args: argparse.Namespace) -> dict:
    """Measure every read at the current fill level, as the reader."""
    time.sleep(SETTLE_S)
    timeout = args.request_timeout
    seen = sum(content.visible)
    expected = {node.name: seen if node.enforces else content.stored for node in nodes}
    check_hidden(nodes, content.sample(HIDDEN_CHECKS, visible=False, salt="hidden"), timeout)
    entry = {"level": content.stored, "visible": seen,
             "rss_after_fill_kib": {node.name: node.server.rss() for node in nodes},
             "get": get_objects(nodes, content.sample(args.get_samples + WARMUP, visible=True,
                                                      salt="get"), timeout),
             "paging": page_through(nodes, expected, timeout, lambda node: None)}
    if not args.skip_manifest:
        entry["manifest"] = page_through(nodes, expected, timeout, lambda node: node.manifest_url)
    return entry


def one_run(number: int, workdir: Path, code: dict[str, Path], args: argparse.Namespace) -> dict:
    """Start the servers afresh, fill them level by level and measure the reads at each."""
    order = turns(list(code), number)
    nodes = [start(name, code[name], workdir / name, enforces=name == "tlp") for name in order]
    try:
        content = Content(args.seed)
        levels = []
        for level in args.sizes:
            ingest = fill_to(nodes, content, level, args.request_timeout)
            entry = {**measure_level(nodes, content, args), "ingest": ingest}
            levels.append(entry)
            log(f"  {level:>9,}: " + "; ".join(_brief(entry, node.name) for node in nodes))
        return {"order": [node.name for node in nodes], "levels": levels}
    finally:
        for node in nodes:
            node.server.stop()


def _brief(entry: dict, name: str) -> str:
    paging = entry["paging"][name]
    return (f"{name}: GET {entry['get'][name]['median_ms']:.2f} ms, paging "
            f"{paging['objects_per_s']:,.0f} obj/s ({paging['objects']:,} objects), "
            f"ingest {entry['ingest'][name]['step_objects_per_s']:,.0f} obj/s")


# -- the summary and the table -------------------------------------------------------------
class Measure(NamedTuple):
    """One row of the table: how to read it from a level's entry, and which way is better."""

    label: str
    pick: Callable[[dict, str], float]
    higher_is_better: bool | None  # None: a count, not compared
    compared: bool  # part of the requirement's check


MEASURES = (
    Measure("GET one object, median ms", lambda e, n: e["get"][n]["median_ms"], False, True),
    Measure("GET one object, p95 ms", lambda e, n: e["get"][n]["p95_ms"], False, True),
    Measure("paging, objects returned/s", lambda e, n: e["paging"][n]["objects_per_s"], True, True),
    Measure("paging, pages/s", lambda e, n: e["paging"][n]["pages_per_s"], True, False),
    Measure("paging, first page ms", lambda e, n: e["paging"][n]["first_page_ms"], False, False),
    Measure("paging, objects returned", lambda e, n: e["paging"][n]["objects"], None, False),
    Measure("manifest paging, records returned/s",
            lambda e, n: e["manifest"][n]["objects_per_s"], True, True),
    Measure("ingest, whole step, objects/s",
            lambda e, n: e["ingest"][n]["step_objects_per_s"], True, False),
)


PAIRS = (("tlp", "baseline"), ("tlp", "tlp-off"))  # (measured, reference): the ratios shown


def summarise(results: dict) -> list[dict]:
    """Return, per measure and level, the medians over runs, their ratios and the verdicts."""
    names = list(results["sources"])
    rows = []
    for measure_ in MEASURES:
        for level in results["config"]["sizes"]:
            entries = [e for r in results["runs"] for e in r["levels"] if e["level"] == level]
            if not entries or (measure_.label.startswith("manifest") and "manifest" not in entries[0]):
                continue
            per_run = {n: [measure_.pick(e, n) for e in entries] for n in names}
            row = {"measure": measure_.label, "level": level, "compared": measure_.compared,
                   "median": {n: statistics.median(v) for n, v in per_run.items()}, "ratios": {}}
            for a, b in PAIRS:
                if b in names:
                    row["ratios"][f"{a}/{b}"] = _ratio(measure_, row["median"][a], row["median"][b],
                                                       per_run[a], per_run[b])
            rows.append(row)
    return rows


def _ratio(measure_: Measure, a: float, b: float, runs_a: list[float], runs_b: list[float]) -> dict:
    """The ratio of two medians, per-run ratios, and whether ``a`` is within 20 % of ``b``."""
    ratio = a / b if b else None
    within = None
    if measure_.higher_is_better is not None and ratio is not None:
        within = ratio >= 1 - THRESHOLD if measure_.higher_is_better else ratio <= 1 + THRESHOLD
    return {"ratio": ratio, "within_20pct": within,
            "per_run": [x / y if y else None for x, y in zip(runs_a, runs_b)]}


def _num(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def _ratio_cells(row: dict, pair: str) -> tuple[str, str, str]:
    found = row["ratios"][pair]
    verdict = {None: "—", True: "yes", False: "**NO**"}[found["within_20pct"]]
    return (f"{found['ratio']:.3f}" if found["ratio"] else "—",
            verdict if row["compared"] else f"({verdict})",
            ", ".join(f"{r:.2f}" for r in found["per_run"] if r is not None))


def render(results: dict) -> str:
    """Format the machine, the code measured and the table of medians with ratios."""
    m, cfg, src = results["machine"], results["config"], results["sources"]
    lines = [
        (f"Machine: {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable), "
         f"{m['ram_gib']} GiB RAM, Python {m['python']}, SQLite {m['sqlite']}, Linux {m['kernel']}; "
         f"load average {m['loadavg_start']} at start, {m.get('loadavg_end')} at end"),
        "; ".join(f"{name}: src/ at {s['revision']} (digest {s['digest']})" for name, s in src.items())
        + "; SQLite, 1 worker each",
        (f"Seed {cfg['seed']}; medians of {cfg['runs']} run(s); {cfg['get_samples']} GETs per server "
         f"and level; paging limit={LIMIT}, in rounds of A B B A until each server has paged "
         f"{MIN_PAGING_S:.0f} s"),
        "",
    ]
    names = list(src)
    pairs = [f"{a}/{b}" for a, b in PAIRS if b in names]
    header = ["measure", "stored objects", *names]
    for pair in pairs:
        header += [pair, "within 20 %", "per run"]
    rows = [tuple(header)]
    for row in results["summary"]:
        cells = [row["measure"], f"{row['level']:,}", *(_num(row["median"][n]) for n in names)]
        for pair in pairs:
            cells += _ratio_cells(row, pair)
        rows.append(tuple(cells))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for index, row in enumerate(rows):
        lines.append("| " + " | ".join(c.ljust(w) if i < 2 else c.rjust(w)
                                       for i, (c, w) in enumerate(zip(row, widths))) + " |")
        if index == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    lines += ["", ("Verdicts in brackets are for information: the requirement is checked on the "
                   "GET latencies, objects returned/s and manifest records returned/s.")]
    return "\n".join(lines)


# -- the whole benchmark -------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """Measure both servers --runs times, print the table, write the raw results."""
    args = parse_args(argv)
    if args.report:
        saved = orjson.loads(args.report.read_bytes())
        saved["summary"] = summarise(saved)
        print(render(saved))
        return 0
    results: dict = {"machine": report.machine(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                     "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                     "mix": [share._asdict() for share in MIX], "runs": []}
    workroot = Path(tempfile.mkdtemp(prefix="communique-tlp-bench-"))
    log(f"working in {workroot}")
    try:
        code = {"tlp": run.snapshot_source(workroot / "src-tlp"),
                "baseline": snapshot_commit(args.baseline, workroot / "src-baseline")}
        revisions = {"tlp": results["machine"]["revision"], "baseline": short_revision(args.baseline)}
        if args.unenforced:
            code["tlp-off"] = switch_off_tlp(code["tlp"], workroot / "src-tlp-off")
            revisions["tlp-off"] = revisions["tlp"] + ", predicate off"
        results["sources"] = {name: {"revision": revisions[name], "digest": run.source_digest(path)}
                              for name, path in code.items()}
        log(f"measuring {results['sources']}")
        for number in range(args.runs):
            log(f"run {number + 1}/{args.runs}, levels {args.sizes}")
            workdir = workroot / f"run-{number}"
            workdir.mkdir()
            results["runs"].append(one_run(number, workdir, code, args))
            if not (args.keep and number == args.runs - 1):
                shutil.rmtree(workdir, ignore_errors=True)
    finally:
        if args.keep:
            log(f"kept the last run's databases under {workroot}")
        else:
            shutil.rmtree(workroot, ignore_errors=True)
    results["machine"]["loadavg_end"] = report.loadavg()
    results["summary"] = summarise(results)
    report.save(results, args.out, render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
