"""Measure detection at scale: facts filed at ingest, correlation, and sensor exports.

    .venv/bin/python bench/correlate.py                                  # 100,000 indicators, 3 runs, ~8 min
    .venv/bin/python bench/correlate.py --indicators 10000               # smoke run, under a minute
    .venv/bin/python bench/correlate.py --analyze                        # ANALYZE after the import
    .venv/bin/python bench/correlate.py --postgresql --indicators 10000  # on a throwaway PostgreSQL
    .venv/bin/python bench/correlate.py --report bench/results/correlate-100k.json

Three organisations each import their share of ``--indicators`` equality indicators
(IPv4 addresses, domain names, URLs, SHA-256 and MD5 hashes; valid from an hour
ago, so none has decayed) into a collection of their own, which a fourth, reading
organisation may also read. Of the distinct values, 10 % are reported by two of
the three organisations and 2 % by all three. Every run starts from fresh
databases and measures, in this process (no HTTP), as the reader:

1. ingest through ``importer.import_objects`` (validation, signing, storage, facts
   filed), in objects/s; then the same import into another fresh database with
   ``filing.file_stored`` replaced by a no-op in this process only (src/ is not
   changed), so that what filing costs can be stated (the two imports take turns
   going first from one run to the next);
2. the detection tables, rows and bytes (SQLite's ``dbstat``, PostgreSQL's
   ``pg_total_relation_size``), and the rows a pairwise correlation table like
   MISP's would hold: k·(k−1) ordered pairs for a value k indicators look for.
   Those pairs are written to a scratch table of two row keys, indexed both ways,
   which gives a lower bound for that table's bytes;
3. ``correlation.correlate`` of ``--samples`` stored values drawn at random,
   given without a path as `communique correlate VALUE` gives them: median and p95;
4. ``correlation.shared(min_reporters=2, limit=1000)``: the median of three calls;
5. ``sensors.export`` of everything the reader may take out, in every format:
   seconds, entries and bytes. A format that fails is reported; the others are
   still measured.

With ``--analyze`` the database is analysed (``ANALYZE``) after the import, which
Communiqué itself never does, to show what planner statistics change. Every run
measures a copy of src/ taken at the start. Medians over ``--runs``; the results
file is rewritten after every run, so an interrupted benchmark keeps what it
measured. bench/README.md ("Detection: correlation and sensor exports") explains
the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import ipaddress
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import report
import run
import servers

HERE = Path(__file__).resolve().parent
ORGS = ("CERT One", "CERT Two", "CERT Three")
READER, READER_USER = "SOC Reader", "analyst@reader.example"
PATHS = ("ipv4-addr:value", "domain-name:value", "url:value", "file:hashes.'SHA-256'",
         "file:hashes.MD5")
# TLP 2.0 marking definitions (as in src/communique/stix/markings.py): 2 CLEAR, 6 GREEN, 2 AMBER in 10.
MARKINGS = ("marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",) * 2 + (
    "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",) * 6 + (
    "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",) * 2
TABLES = ("objects", "indicator_facts", "indicator_values", "sighting_facts")
DETECTION = TABLES[1:]
SHARED_LIMIT = 1000
NAMESPACE = uuid.UUID("6f1c2b8e-4a53-4d0e-9a77-0c5e2d9b1f30")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--indicators", type=int, default=100_000,
                        help="indicators in all, shared out among three organisations (default 100000)")
    parser.add_argument("--runs", type=int, default=3,
                        help="repetitions, each on fresh databases; medians are reported (default 3)")
    parser.add_argument("--samples", type=int, default=1000,
                        help="values looked up with correlate, per run (default 1000)")
    parser.add_argument("--analyze", action="store_true",
                        help="run ANALYZE after the import, before anything is read")
    parser.add_argument("--postgresql", action="store_true",
                        help="measure on a throwaway PostgreSQL cluster (tests/pg.py) instead of SQLite")
    parser.add_argument("--seed", type=int, default=2026, help="seed of the generated values")
    parser.add_argument("--out", type=Path, metavar="FILE.json",
                        default=HERE / "results" / "correlate-latest.json",
                        help="where to write the raw results (default bench/results/correlate-latest.json)")
    parser.add_argument("--report", type=Path, metavar="FILE.json",
                        help="measure nothing: print the table of a results file written by --out")
    args = parser.parse_args(argv)
    if args.indicators < 3 or args.runs < 1 or args.samples < 1:
        parser.error("--indicators must be at least 3, --runs and --samples at least 1")
    return args


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- the content -------------------------------------------------------------------------
@dataclass(frozen=True)
class Content:
    """The indicators each organisation imports, and every distinct value with its reporters."""

    per_org: tuple[list[dict], ...]
    values: list[tuple[str, str]]  # (path, value)
    reporters: list[int]  # organisations reporting each value

    @property
    def indicators(self) -> int:
        return sum(len(objects) for objects in self.per_org)


def reporting_orgs(n: int) -> tuple[int, ...]:
    """Return which organisations report value ``n``: 2 % all three, 10 % two, the rest one."""
    slot = n % 50
    if slot == 0:
        return (0, 1, 2)
    if slot <= 5:
        return ((0, 1), (1, 2), (0, 2))[n % 3]
    return (n % 3,)


def value_of(n: int, seed: int) -> tuple[str, str]:
    """Return (path, value) of distinct value ``n``."""
    path = PATHS[n % len(PATHS)]
    digest = hashlib.sha256(f"{seed}:{n}".encode()).hexdigest()
    if path == "ipv4-addr:value":
        return path, str(ipaddress.IPv4Address(0x0B000000 + n))  # 11.0.0.0 and up
    if path == "domain-name:value":
        return path, f"c2-{digest[:10]}.bad{n % 997}.example"
    if path == "url:value":
        return path, f"http://d{n}.example/gate/{digest[:16]}.php"
    return path, digest if "SHA-256" in path else digest[:32]


def make_content(total: int, seed: int, stamp: str) -> Content:
    """Return ``total`` indicators shared out among the organisations as ``reporting_orgs`` says."""
    per_org: tuple[list[dict], ...] = ([], [], [])
    values, reporters = [], []
    made, n = 0, 0
    while made < total:
        orgs = reporting_orgs(n)[:total - made]
        path, value = value_of(n, seed)
        for org in orgs:
            per_org[org].append(indicator(seed, org, n, f"[{path} = '{value}']", stamp))
        values.append((path, value))
        reporters.append(len(orgs))
        made, n = made + len(orgs), n + 1
    return Content(per_org, values, reporters)


def indicator(seed: int, org: int, n: int, pattern: str, stamp: str) -> dict:
    """Return one organisation's indicator for value ``n``."""
    return {"type": "indicator", "spec_version": "2.1",
            "id": f"indicator--{uuid.uuid5(NAMESPACE, f'{seed}:{org}:{n}')}",
            "created": stamp, "modified": stamp, "valid_from": stamp,
            "name": f"{ORGS[org]} report {n}", "indicator_types": ["malicious-activity"],
            "pattern": pattern, "pattern_type": "stix", "confidence": 60 + n % 40,
            "object_marking_refs": [MARKINGS[n % len(MARKINGS)]]}


# -- a node ------------------------------------------------------------------------------
@dataclass
class Node:
    """A fresh database with the organisations, their feeds and the reader."""

    store: Any
    feeds: list[Any]  # one collection per reporting organisation
    producers: list[int]  # the organisation id of each feed's writer
    reader: Any  # the reader's Principal
    provenance: Any


def make_node(url: str, key: Path) -> Node:
    """Initialise a database at ``url`` and create the organisations, feeds and reader."""
    from communique import accounts, node
    from communique.cli import add_collection
    from communique.settings import Settings
    from communique.store import open_store

    settings = Settings(database=url, signing_key=str(key))
    store = open_store(url)
    signer = node.initialise(store, settings)
    for name in ORGS + (READER,):
        accounts.add_organisation(store, name)
    accounts.add_user(store, READER_USER, org=READER, role="analyst")
    feeds = [add_collection(store, f"{name} feed", root="default", alias=f"feed-{i + 1}",
                            read=(name, READER), write=(name,)) for i, name in enumerate(ORGS)]
    with store.read() as tx:
        ids = {org.name: org.id for org in tx.list_organisations()}
    return Node(store, feeds, [ids[name] for name in ORGS],
                accounts.principal_for(store, READER_USER),
                node.local_provenance(store, settings, signer))


@contextlib.contextmanager
def facts_not_filed() -> Iterator[None]:
    """Make ``filing.file_stored`` a no-op in this process while the block runs."""
    from communique.detect import filing

    saved = filing.file_stored
    filing.file_stored = lambda tx, collection_id, stored: None
    try:
        yield
    finally:
        filing.file_stored = saved


def ingest(node: Node, content: Content) -> dict:
    """Import each organisation's indicators into its feed; return the time and rate."""
    from communique import importer

    seconds = 0.0
    for feed, producer, objects in zip(node.feeds, node.producers, content.per_org):
        started = time.perf_counter()
        summary = importer.import_objects(node.store, feed, objects, "2.1",
                                          provenance=node.provenance, producer_org=producer)
        seconds += time.perf_counter() - started
        if summary.counts["added"] != len(objects):
            raise RuntimeError(f"not every indicator was added: {dict(summary.counts)} "
                               f"{summary.refusals[:3]}")
    return {"seconds": seconds, "objects_per_s": content.indicators / seconds}


# -- sizes -------------------------------------------------------------------------------
def sizes(store: Any) -> dict:
    """Return rows and bytes (indexes included) of the tables that matter, and the database's."""
    from sqlalchemy import text

    with store.engine.connect() as conn:
        rows = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in TABLES}
        if store.engine.dialect.name == "sqlite":
            per_table = dict(conn.execute(text(
                "SELECT coalesce(m.tbl_name, d.name), sum(d.pgsize) FROM dbstat AS d "
                "LEFT JOIN sqlite_master AS m ON m.name = d.name GROUP BY 1")).all())
            total = sum(per_table.values())
        else:
            per_table = {t: conn.execute(text("SELECT pg_total_relation_size(:t)"),
                                         {"t": t}).scalar_one() for t in TABLES}
            total = conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
    return {"rows": rows, "bytes": {t: int(per_table.get(t, 0)) for t in TABLES},
            "database_bytes": int(total)}


def pairwise(store: Any) -> dict:
    """Count the ordered pairs of indicators sharing a value; write them out to size them."""
    from sqlalchemy import text

    with store.engine.begin() as conn:
        pairs, values, widest = conn.execute(text(
            "SELECT coalesce(sum(k * (k - 1)), 0), count(*), coalesce(max(k), 0) FROM "
            "(SELECT count(*) AS k FROM indicator_values GROUP BY digest) AS per_value")).one()
        conn.execute(text("CREATE TABLE bench_pairs (a BIGINT NOT NULL, b BIGINT NOT NULL)"))
        conn.execute(text(
            "INSERT INTO bench_pairs SELECT x.object_pk, y.object_pk FROM indicator_values AS x "
            "JOIN indicator_values AS y ON x.digest = y.digest AND x.object_pk <> y.object_pk"))
        conn.execute(text("CREATE INDEX bench_pairs_a ON bench_pairs (a)"))
        conn.execute(text("CREATE INDEX bench_pairs_b ON bench_pairs (b)"))
    with store.engine.begin() as conn:
        if store.engine.dialect.name == "sqlite":
            size = conn.execute(text(
                "SELECT sum(pgsize) FROM dbstat WHERE name IN "
                "('bench_pairs', 'bench_pairs_a', 'bench_pairs_b')")).scalar_one()
        else:
            size = conn.execute(text("SELECT pg_total_relation_size('bench_pairs')")).scalar_one()
        written = conn.execute(text("SELECT count(*) FROM bench_pairs")).scalar_one()
        conn.execute(text("DROP TABLE bench_pairs"))
    if written != pairs:
        raise RuntimeError(f"{written} pairs written, {pairs} counted")
    return {"pairs": int(pairs), "distinct_values": int(values), "most_indicators_per_value":
            int(widest), "pairs_table_bytes_lower_bound": int(size or 0)}


# -- reading -----------------------------------------------------------------------------
def correlate_latency(node: Node, content: Content, *, samples: int, seed: int,
                      now_us: int) -> dict:
    """Time ``correlate`` of random stored values; check each finds every report of it."""
    from communique.detect import correlation

    rng = random.Random(f"correlate:{seed}")
    chosen = [rng.randrange(len(content.values)) for _ in range(samples + 3)]
    seconds = []
    for position, index in enumerate(chosen):
        value = content.values[index][1]
        started = time.perf_counter()
        reports = correlation.correlate(node.store, node.reader, value, now_us=now_us)
        elapsed = time.perf_counter() - started
        if len(reports) != content.reporters[index] or any(r.excluded for r in reports):
            raise RuntimeError(f"correlate {value!r}: {len(reports)} reports, expected "
                               f"{content.reporters[index]} ({[r.excluded for r in reports]})")
        if position >= 3:  # the first three warm the caches
            seconds.append(elapsed)
    ordered = sorted(seconds)
    return {"samples": len(seconds), "median_ms": statistics.median(ordered) * 1000,
            "p95_ms": ordered[max(0, -(-95 * len(ordered) // 100) - 1)] * 1000,
            "max_ms": ordered[-1] * 1000}


def shared_time(node: Node, content: Content) -> dict:
    """Time ``shared(min_reporters=2, limit=1000)`` three times; check what it returns."""
    from communique.detect import correlation

    expected = min(SHARED_LIMIT, sum(1 for k in content.reporters if k >= 2))
    seconds = []
    for _ in range(3):
        started = time.perf_counter()
        found = correlation.shared(node.store, node.reader, min_reporters=2, limit=SHARED_LIMIT)
        seconds.append(time.perf_counter() - started)
        if len(found) != expected or (found and found[0].reporters != max(content.reporters)):
            raise RuntimeError(f"shared returned {len(found)} values, expected {expected}")
    return {"seconds": statistics.median(seconds), "values": expected,
            "shared_values_in_all": sum(1 for k in content.reporters if k >= 2)}


class Sink:
    """A binary stream that keeps nothing and counts the bytes written to it."""

    def __init__(self) -> None:
        self.bytes = 0

    def write(self, data: bytes) -> int:
        self.bytes += len(data)
        return len(data)

    def flush(self) -> None:
        pass


def export_all(node: Node, content: Content, *, now_us: int) -> dict[str, dict]:
    """Export everything the reader may take out in each format; time each."""
    from communique.detect import exports, sensors

    selection = sensors.Selection(node.feeds, now_us)
    measured: dict[str, dict] = {}
    for name in exports.FORMATS:
        sink = Sink()
        started = time.perf_counter()
        try:
            entries, level = sensors.export(node.store, node.reader, selection, sink,  # type: ignore[arg-type]
                                            format=name, source="bench")
        except Exception as error:  # noqa: BLE001 - a format still being written is reported
            measured[name] = {"error": f"{type(error).__name__}: {error}"[:500]}
            log(f"    export {name}: FAILED {measured[name]['error']}")
            continue
        seconds = time.perf_counter() - started
        measured[name] = {"seconds": seconds, "entries": entries, "entries_per_s": entries / seconds,
                          "indicators_per_s": content.indicators / seconds, "bytes": sink.bytes,
                          "level": level.label}
    return measured


# -- one run -----------------------------------------------------------------------------
@contextlib.contextmanager
def database(workdir: Path, name: str, cluster: Any) -> Iterator[Node]:
    """Yield a node on a fresh database (SQLite file, or PostgreSQL database); drop it after."""
    if cluster is None:
        url = f"sqlite:///{workdir / name}.db"
    else:
        import psycopg

        with psycopg.connect(cluster.url + "/postgres", autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        url = f"{cluster.url}/{name}"
    node = make_node(url, workdir / f"{name}.signing.key")
    try:
        yield node
    finally:
        node.store.close()
        if cluster is None:
            for path in workdir.glob(f"{name}.db*"):
                path.unlink()
        else:
            import psycopg

            with psycopg.connect(cluster.url + "/postgres", autocommit=True) as conn:
                conn.execute(f"DROP DATABASE {name}")


def ingest_without_facts(number: int, workdir: Path, content: Content, cluster: Any,
                         result: dict) -> None:
    """Import into a fresh database with filing switched off; check nothing was filed."""
    with database(workdir, f"bare_{number}", cluster) as bare, facts_not_filed():
        result["ingest_without_facts"] = ingest(bare, content)
        result["sizes_without_facts"] = sizes(bare.store)
    if any(result["sizes_without_facts"]["rows"][t] for t in DETECTION):
        raise RuntimeError("facts were filed although filing was switched off")
    log(f"  run {number + 1}: ingest without facts "
        f"{result['ingest_without_facts']['objects_per_s']:,.0f} objects/s")


def run_analyze(store: Any) -> float:
    """Gather the planner's statistics (``ANALYZE``); return the seconds it took."""
    from sqlalchemy import text

    started = time.perf_counter()
    with store.engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    return time.perf_counter() - started


def one_run(number: int, workdir: Path, content: Content, args: argparse.Namespace,
            cluster: Any) -> dict:
    """Measure everything once, on fresh databases."""
    from communique import timestamps

    result: dict = {"run": number + 1, "loadavg_start": report.loadavg()}
    with database(workdir, f"facts_{number}", cluster) as node:
        for bare in (number % 2, not number % 2):  # take turns going first
            if bare:
                ingest_without_facts(number, workdir, content, cluster, result)
            else:
                result["ingest"] = ingest(node, content)
                log(f"  run {number + 1}: ingest with facts "
                    f"{result['ingest']['objects_per_s']:,.0f} objects/s")
        if args.analyze:
            result["analyze_s"] = run_analyze(node.store)
        result["sizes"] = sizes(node.store)
        now_us = timestamps.now_us()
        result["correlate"] = correlate_latency(node, content, samples=args.samples,
                                                seed=args.seed + number, now_us=now_us)
        log(f"  run {number + 1}: correlate median {result['correlate']['median_ms']:.2f} ms")
        result["shared"] = shared_time(node, content)
        result["exports"] = export_all(node, content, now_us=now_us)
        log(f"  run {number + 1}: shared {result['shared']['seconds']:.2f} s; exports "
            + ", ".join(f"{k} {v['seconds']:.1f} s" if "seconds" in v else f"{k} failed"
                        for k, v in result["exports"].items()))
        result["pairwise"] = pairwise(node.store)  # last: it writes a scratch table
    result["loadavg_end"] = report.loadavg()
    return result


# -- the summary -------------------------------------------------------------------------
def figures(entry: dict) -> dict[str, float]:
    """Flatten one run's measurements into named figures."""
    sizes_, bare = entry["sizes"], entry["sizes_without_facts"]
    found = {
        "ingest_objects_per_s": entry["ingest"]["objects_per_s"],
        "ingest_without_facts_objects_per_s": entry["ingest_without_facts"]["objects_per_s"],
        "filing_share": 1 - entry["ingest_without_facts"]["seconds"] / entry["ingest"]["seconds"],
        "database_bytes": sizes_["database_bytes"],
        "database_without_facts_bytes": bare["database_bytes"],
        "correlate_median_ms": entry["correlate"]["median_ms"],
        "correlate_p95_ms": entry["correlate"]["p95_ms"],
        "shared_s": entry["shared"]["seconds"],
        "pairs": entry["pairwise"]["pairs"],
        "pairs_table_bytes": entry["pairwise"]["pairs_table_bytes_lower_bound"],
    }
    for table in TABLES:
        found[f"rows.{table}"] = sizes_["rows"][table]
        found[f"bytes.{table}"] = sizes_["bytes"][table]
    for name, measured in entry["exports"].items():
        for key in ("seconds", "entries", "entries_per_s", "bytes"):
            if key in measured:
                found[f"export.{name}.{key}"] = measured[key]
    return found


def summarise(results: dict) -> dict:
    """Return the median of every figure over the runs, and the export failures."""
    per_run = [figures(entry) for entry in results["runs"]]
    names = sorted(set().union(*per_run))
    summary: dict = {name: statistics.median(f[name] for f in per_run if name in f)
                     for name in names}
    summary["export_failures"] = sorted({f"{name}: {measured['error']}"
                                         for entry in results["runs"]
                                         for name, measured in entry["exports"].items()
                                         if "error" in measured})
    return summary


def _mib(value: float) -> str:
    return f"{value / 2**20:,.1f} MiB" if value >= 2**20 else f"{value / 2**10:,.0f} KiB"


def rows(results: dict) -> list[tuple[str, str]]:
    """Return (figure, median) rows of the table."""
    s = results["summary"]
    table: list[tuple[str, str]] = [
        ("ingest, facts filed", f"{s['ingest_objects_per_s']:,.0f} objects/s"),
        ("ingest, filing switched off", f"{s['ingest_without_facts_objects_per_s']:,.0f} objects/s"),
        ("share of ingest time spent filing", f"{s['filing_share']:.0%}"),
    ]
    for table_name in TABLES:
        table.append((f"{table_name}: rows, bytes with indexes",
                      f"{s[f'rows.{table_name}']:,.0f}, {_mib(s[f'bytes.{table_name}'])}"))
    detection = sum(s[f"bytes.{t}"] for t in DETECTION)
    table += [
        ("detection tables in all", _mib(detection)),
        ("database, facts filed / filing off",
         f"{_mib(s['database_bytes'])} / {_mib(s['database_without_facts_bytes'])}"),
        ("pairwise table (k(k-1) pairs): rows", f"{s['pairs']:,.0f}"),
        ("pairwise table, two keys indexed both ways", _mib(s["pairs_table_bytes"])),
        ("correlate(value): median, p95",
         f"{s['correlate_median_ms']:.2f} ms, {s['correlate_p95_ms']:.2f} ms"),
        (f"shared(min_reporters=2, limit={SHARED_LIMIT})", f"{s['shared_s'] * 1000:,.0f} ms"),
    ]
    for name in sorted({k.split(".")[1] for k in s if k.startswith("export.")}):
        pick = {key: s[f"export.{name}.{key}"]
                for key in ("seconds", "entries", "entries_per_s", "bytes")}
        text = (f"{pick['seconds']:.2f} s, {pick['entries']:,.0f} entries, "
                f"{pick['entries_per_s']:,.0f} entries/s, {_mib(pick['bytes'])}")
        table.append((f"export {name}", text))
    return table


def render(results: dict) -> str:
    """Format the machine, the configuration and the table of medians."""
    m, cfg = results["machine"], results["config"]
    backend = "PostgreSQL" if cfg["postgresql"] else f"SQLite {m['sqlite']}"
    if cfg.get("analyze"):
        backend += ", ANALYZE after the import"
    content = results["content"]
    by = ", ".join(f"{count:,} reported by {k}"
                   for k, count in sorted(content["values_by_reporters"].items()))
    machine = (f"Machine: {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable), "
               f"{m['ram_gib']} GiB RAM, Python {m['python']}, Linux {m['kernel']}; load "
               f"average {m['loadavg_start']} at start, {m.get('loadavg_end')} at end")
    code = (f"Communiqué {m['versions']['communique']} at {m['revision']}, source digest "
            f"{m.get('source_digest', '?')}; {backend}, in process")
    shape = (f"{content['indicators']:,} indicators from 3 organisations, "
             f"{content['distinct_values']:,} distinct values ({by}); "
             f"{cfg['samples']:,} correlate lookups per run; "
             f"medians of {cfg['runs']} run(s)")
    lines = [machine, code, shape, ""]
    table = [("figure", "median")] + rows(results)
    widths = [max(len(r[i]) for r in table) for i in range(2)]
    for index, (name, value) in enumerate(table):
        lines.append(f"| {name.ljust(widths[0])} | {value.rjust(widths[1])} |")
        if index == 0:
            lines.append(f"|{'-' * (widths[0] + 2)}|{'-' * (widths[1] + 2)}|")
    failures = results["summary"]["export_failures"]
    if failures:
        lines += ["", "Export formats that failed (not measured):"] + [f"- {f}" for f in failures]
    return "\n".join(lines)


# -- the whole benchmark -----------------------------------------------------------------
def describe(content: Content) -> dict:
    """Return how many indicators and values the content holds, by number of reporters."""
    by: dict[int, int] = {}
    for k in content.reporters:
        by[k] = by.get(k, 0) + 1
    return {"indicators": content.indicators, "distinct_values": len(content.values),
            "per_org": [len(objects) for objects in content.per_org],
            "values_by_reporters": {k: by[k] for k in sorted(by)}}


def measure(args: argparse.Namespace, results: dict, workroot: Path) -> None:
    """Snapshot src/, generate the content, and run ``args.runs`` times."""
    servers.SOURCE = run.snapshot_source(workroot / "src")
    sys.path.insert(0, str(servers.SOURCE))
    import communique
    from communique import timestamps

    if not Path(communique.__file__).is_relative_to(servers.SOURCE):
        raise RuntimeError(f"communique imported from {communique.__file__}, not the snapshot")
    results["machine"]["source_digest"] = run.source_digest(servers.SOURCE)
    stamp = timestamps.format_ms(timestamps.now_us() - 3600 * 1_000_000)
    content = make_content(args.indicators, args.seed, stamp)
    results["content"] = describe(content)
    log(f"{content.indicators:,} indicators, {len(content.values):,} distinct values; "
        f"measuring src/ at {results['machine']['revision']}")
    with contextlib.ExitStack() as stack:
        cluster = None
        if args.postgresql:
            sys.path.insert(1, str(servers.ROOT))
            from tests import pg

            cluster = stack.enter_context(contextlib.contextmanager(pg.cluster)())
        for number in range(args.runs):
            results["runs"].append(one_run(number, workroot, content, args, cluster))
            checkpoint(results, args.out)


def checkpoint(results: dict, out: Path) -> None:
    """Write the runs so far, so that an interrupted benchmark keeps what it measured."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps({**results, "summary": summarise(results)},
                                 option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report:
        saved = orjson.loads(args.report.read_bytes())
        print(render(saved))
        return 0
    results: dict = {"machine": report.machine(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                     "config": {k: (str(v) if isinstance(v, Path) else v)
                                for k, v in vars(args).items()},
                     "runs": []}
    workroot = Path(tempfile.mkdtemp(prefix="communique-correlate-bench-"))
    try:
        measure(args, results, workroot)
    finally:
        shutil.rmtree(workroot, ignore_errors=True)
    results["machine"]["loadavg_end"] = report.loadavg()
    results["summary"] = summarise(results)
    report.save(results, args.out, render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
