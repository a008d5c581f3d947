"""Benchmark Communiqué against the OASIS reference TAXII server medallion, over real HTTP.

    .venv/bin/python bench/run.py                  # full run: 10k, 100k, 1M objects, 3 runs
    .venv/bin/python bench/run.py --quick          # smoke run, about two minutes
    .venv/bin/python bench/run.py --sizes 10000,100000 --runs 3 --out results.json

Both servers get the same generated STIX 2.1 objects (``stixgen``), posted in
envelopes of 1,000. At each fill level the script measures ingest, GET of one
object by id, paging through the whole collection, and the server's RSS; then it
times ``communique import`` of MITRE ATT&CK Enterprise. bench/README.md explains
every figure.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
import requests

import measure
import report
import servers

HERE = Path(__file__).resolve().parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Read the command line; --quick replaces the defaults with small ones."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="small sizes and one run: a smoke test in about two minutes")
    parser.add_argument("--sizes", help="fill levels for Communiqué, comma-separated "
                        "(default 10000,100000,1000000; --quick: 1000,3000)")
    parser.add_argument("--runs", type=int, help="repetitions; medians are reported (default 3; --quick: 1)")
    parser.add_argument("--skip-medallion", action="store_true", help="benchmark Communiqué alone")
    parser.add_argument("--skip-import", action="store_true", help="do not time the ATT&CK import")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "latest.json",
                        help="where to write the raw results as JSON (default bench/results/latest.json)")
    parser.add_argument("--seed", type=int, default=2021, help="seed of the generated objects")
    parser.add_argument("--get-samples", type=int, help="GETs of one object per fill level (default 200; --quick: 50)")
    parser.add_argument("--import-runs", type=int, help="ATT&CK imports to take the median of (default 3; --quick: 1)")
    parser.add_argument("--medallion-max", type=int,
                        help="fill medallion up to this many objects (default 50000; --quick: 3000)")
    parser.add_argument("--medallion-step-budget", type=float, default=900.0,
                        help="seconds one medallion fill step may take before filling stops (default 900)")
    parser.add_argument("--medallion-get-budget", type=float,
                        help="seconds of single-object GETs per level on medallion, at least 5 GETs (default 60; --quick: 10)")
    parser.add_argument("--medallion-page-timeout", type=float,
                        help="seconds a medallion page request may take before paging gives up (default 300; --quick: 30)")
    parser.add_argument("--report", type=Path, metavar="FILE.json",
                        help="measure nothing: print the table of a results file written by --out")
    parser.add_argument("--request-timeout", type=float, default=1800.0,
                        help="seconds any other request may take (default 1800)")
    args = parser.parse_args(argv)
    quick = args.quick
    args.sizes = [int(s) for s in (args.sizes or ("1000,3000" if quick else "10000,100000,1000000")).split(",")]
    if any(s <= 0 or s % measure.ENVELOPE_SIZE for s in args.sizes):
        parser.error(f"--sizes must be positive multiples of {measure.ENVELOPE_SIZE}")
    args.sizes = sorted(set(args.sizes))
    args.runs = args.runs or (1 if quick else 3)
    args.get_samples = args.get_samples or (50 if quick else 200)
    args.import_runs = args.import_runs or (1 if quick else 3)
    args.medallion_max = args.medallion_max or (3000 if quick else 50_000)
    args.medallion_get_budget = args.medallion_get_budget or (10.0 if quick else 60.0)
    args.medallion_page_timeout = args.medallion_page_timeout or (30.0 if quick else 300.0)
    return args


def medallion_levels(sizes: list[int], cap: int) -> list[int]:
    """Return medallion's fill levels: the sizes up to ``cap``, then ``cap`` itself."""
    levels = [s for s in sizes if s <= cap]
    if any(s > cap for s in sizes) and cap not in levels:
        levels.append(cap)
    return levels


def session_for(server: servers.Server) -> requests.Session:
    """Return a keep-alive session that sends the server's Accept and credentials."""
    session = requests.Session()
    session.headers.update(server.headers)
    return session


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- one run on one server --------------------------------------------------------------
def run_communique(workdir: Path, args: argparse.Namespace, levels: list[int]) -> dict:
    """Fill a fresh Communiqué level by level; measure ingest, GET, paging and RSS at each."""
    server = servers.start_communique(workdir)
    try:
        session = session_for(server)
        filler = measure.Filler(server, session, args.seed, args.request_timeout)
        done = []
        for level in levels:
            entry = {"level": level, "ingest": filler.fill_to(level, budget=None)}
            entry["rss_after_fill_kib"] = server.rss()
            entry["get"] = measure.get_objects(server, session, filler.ids, samples=args.get_samples,
                                               budget=None, seed=args.seed,
                                               request_timeout=args.request_timeout)
            entry["paging"] = measure.page_all(server, session, expected=filler.stored, limit=1000,
                                               request_timeout=args.request_timeout, budget=None)
            entry["rss_after_reads_kib"] = server.rss()
            done.append(entry)
            log(f"  communique {level:>9,}: {_brief(entry)}")
        return {"levels": done}
    finally:
        server.stop()


def run_medallion(workdir: Path, bin_dir: Path, args: argparse.Namespace,
                  levels: list[int]) -> dict:
    """Fill a fresh medallion level by level; measure ingest, GET and RSS at each.

    Paging is measured afterwards on separate instances (``page_medallion``): a
    listing that outlasts its timeout keeps medallion busy for a long time after
    the client gives up, which would spoil every later measurement.
    """
    server = servers.start_medallion(workdir, bin_dir)
    done, stopped = [], None
    try:
        session = session_for(server)
        filler = measure.Filler(server, session, args.seed, args.request_timeout)
        for level in levels:
            try:
                ingest = filler.fill_to(level, budget=args.medallion_step_budget)
            except requests.Timeout:
                stopped = f"a POST took longer than {args.request_timeout:.0f} s"
                break
            entry = {"level": ingest["stored"], "target_level": level, "ingest": ingest,
                     "rss_after_fill_kib": server.rss()}
            entry["get"] = measure.get_objects(server, session, filler.ids,
                                               samples=args.get_samples,
                                               budget=args.medallion_get_budget, seed=args.seed,
                                               request_timeout=args.request_timeout)
            entry["rss_after_reads_kib"] = server.rss()
            done.append(entry)
            log(f"  medallion  {entry['level']:>9,}: {_brief(entry)}")
            if ingest["stopped"]:
                stopped = ingest["stopped"]
                break
    finally:
        server.stop()
    for entry in done:
        entry["paging"] = None
    timed_out = None
    for entry in done:
        if timed_out:
            entry["paging"] = {"complete": False, "objects_per_s": None,
                               "stopped": f"not tried: paging already gave up at {timed_out:,} objects"}
            continue
        entry["paging"] = page_medallion(workdir, bin_dir, args, entry["level"])
        log(f"  medallion  {entry['level']:>9,}: paging {_paging(entry['paging'])}")
        if not entry["paging"]["complete"]:
            timed_out = entry["level"]
    return {"levels": done, "stopped": stopped}


def page_medallion(workdir: Path, bin_dir: Path, args: argparse.Namespace, level: int) -> dict:
    """Fill a separate medallion to ``level`` and page through it, then stop it."""
    pagedir = workdir / f"paging-{level}"
    pagedir.mkdir()
    server = servers.start_medallion(pagedir, bin_dir)
    try:
        session = session_for(server)
        filler = measure.Filler(server, session, args.seed, args.request_timeout)
        filler.fill_to(level, budget=None)
        result = measure.page_all(server, session, expected=filler.stored, limit=1000,
                                  request_timeout=args.medallion_page_timeout, budget=None)
        result["rss_after_kib"] = server.rss()
        return result
    finally:
        server.stop()  # also ends a listing still being computed after a client timeout


def _paging(paging: dict) -> str:
    if paging["complete"]:
        return f"{paging['objects_per_s']:,.0f} obj/s (first page {paging['first_page_ms']:,.0f} ms)"
    return paging["stopped"]


def _brief(entry: dict) -> str:
    parts = [f"ingest {entry['ingest']['objects_per_s']:,.0f} obj/s",
             f"GET median {entry['get']['median_ms']:,.1f} ms (n={entry['get']['samples']})",
             f"RSS {entry['rss_after_fill_kib']['VmRSS'] / 1024:,.0f} MiB"]
    if entry.get("paging"):
        parts.append(f"paging {_paging(entry['paging'])}")
    return ", ".join(parts)


# -- ATT&CK import -----------------------------------------------------------------------
def attack_import(workdir: Path, runs: int) -> dict:
    """Time `communique import` of ATT&CK Enterprise into a fresh database, ``runs`` times."""
    from communique.datasets import attack_enterprise

    bundle = attack_enterprise()
    timings, outputs = [], []
    for number in range(runs):
        target = workdir / f"import-{number}"
        target.mkdir()
        database = f"sqlite:///{target}/import.db"
        servers.communique_cli("init", database=database)
        servers.communique_cli("org", "add", "Bench CERT", database=database)
        collection = servers.communique_cli("collection", "add", "ATT&CK", "--read", "Bench CERT",
                                            database=database).strip().splitlines()[-1]
        command = [str(servers.VENV_BIN / "communique"), "import", str(bundle),
                   "--collection", collection, "--database", database]
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=servers.communique_env())
        timings.append(time.perf_counter() - start)
        if done.returncode not in (0, 2):
            raise RuntimeError(f"communique import failed:\n{done.stdout}\n{done.stderr}")
        outputs.append(done.stdout.strip().splitlines()[0] if done.stdout.strip() else "")
        log(f"  ATT&CK import {number + 1}/{runs}: {timings[-1]:.2f} s ({outputs[-1]})")
    return {"bundle": str(bundle), "bundle_bytes": bundle.stat().st_size, "seconds": timings,
            "summary": outputs}


# -- the code under test ---------------------------------------------------------------
def snapshot_source(target: Path) -> Path:
    """Copy src/ to ``target``: every run then measures the same code."""
    shutil.copytree(servers.ROOT / "src", target,
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    check = subprocess.run([str(servers.VENV_BIN / "python"), "-c",
                            "import communique; print(communique.__file__)"],
                           capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(target)})
    if not check.stdout.strip().startswith(str(target)):
        raise RuntimeError(f"the snapshot of src/ is not the one imported: {check.stdout}{check.stderr}")
    return target


def source_digest(source: Path) -> str:
    """Return a short SHA-256 over the snapshot's .py files (names and contents)."""
    digest = hashlib.sha256()
    for path in sorted(source.rglob("*.py")):
        digest.update(str(path.relative_to(source)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


# -- the whole benchmark -------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """Run every measurement, print the table, write the raw results."""
    args = parse_args(argv)
    if args.report:
        saved = orjson.loads(args.report.read_bytes())
        saved["summary"] = report.summarise(saved)
        print(report.render(saved))
        return 0
    med_levels = [] if args.skip_medallion else medallion_levels(args.sizes, args.medallion_max)
    cq_levels = sorted(set(args.sizes) | set(med_levels))
    results: dict = {"machine": report.machine(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                     "config": {k: (str(v) if isinstance(v, Path) else v)
                                for k, v in vars(args).items()},
                     "levels": {"communique": cq_levels, "medallion": med_levels},
                     "runs": {"communique": [], "medallion": []}}
    workroot = Path(tempfile.mkdtemp(prefix="communique-bench-"))
    log(f"working in {workroot}")
    try:
        servers.SOURCE = snapshot_source(workroot / "src")
        results["machine"]["source_digest"] = source_digest(servers.SOURCE)
        log(f"measuring a snapshot of src/ at {results['machine']['revision']} "
            f"(digest {results['machine']['source_digest']})")
        if not args.skip_medallion:
            log(f"installing medallion {servers.MEDALLION_VERSION} into its own environment")
            bin_dir = servers.install_medallion(workroot / "medallion-venv")
            results["machine"]["medallion"] = servers.medallion_versions(bin_dir)
        for number in range(args.runs):
            log(f"run {number + 1}/{args.runs}: Communiqué, levels {cq_levels}")
            workdir = workroot / f"communique-{number}"
            workdir.mkdir()
            results["runs"]["communique"].append(run_communique(workdir, args, cq_levels))
            shutil.rmtree(workdir, ignore_errors=True)
            if not args.skip_medallion:
                log(f"run {number + 1}/{args.runs}: medallion, levels {med_levels}")
                workdir = workroot / f"medallion-{number}"
                workdir.mkdir()
                results["runs"]["medallion"].append(run_medallion(workdir, bin_dir, args, med_levels))
        if not args.skip_import:
            log(f"ATT&CK Enterprise import, {args.import_runs} time(s)")
            results["import"] = attack_import(workroot, args.import_runs)
    finally:
        shutil.rmtree(workroot, ignore_errors=True)
    results["machine"]["loadavg_end"] = report.loadavg()
    results["summary"] = report.summarise(results)
    report.save(results, args.out, report.render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
