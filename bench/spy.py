"""Profile a running Communiqué server with py-spy while the benchmark load runs.

    .venv/bin/pip install py-spy
    .venv/bin/python bench/spy.py --level 100000 --what ingest
    .venv/bin/python bench/spy.py --level 100000 --what get

Fills a fresh server to ``--level`` objects (not profiled), then samples it with
``py-spy record`` while it ingests ``--envelopes`` more envelopes, serves
``--gets`` single-object GETs, or pages the whole collection. Prints the functions
with the largest inclusive share of the samples (where the server's CPU time goes)
and keeps the raw collapsed stacks and a flame graph next to the JSON results.
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

import measure
import servers

HERE = Path(__file__).resolve().parent
_LINE = re.compile(r":\d+\)$")  # "f (file.py:12)" -> "f (file.py)": one row per function


def record(pid: int, out: Path, fmt: str) -> subprocess.Popen:
    """Start py-spy sampling ``pid`` (all threads, native frames off) into ``out``."""
    spy = shutil.which("py-spy", path=str(servers.VENV_BIN)) or "py-spy"
    process = subprocess.Popen([spy, "record", "--pid", str(pid), "--rate", "250", "--format", fmt,
                                "--output", str(out), "--nonblocking"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # let it attach
    return process


def shares(collapsed: Path, top: int) -> list[tuple[float, float, str]]:
    """Return (inclusive %, self %, function) for the heaviest functions of collapsed stacks."""
    inclusive: collections.Counter = collections.Counter()
    own: collections.Counter = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        frames = [_LINE.sub(")", f) for f in stack.split(";")
                  if not f.startswith("process ") and not f.startswith("thread ")]
        for frame in set(frames):
            inclusive[frame] += n
        if frames:
            own[frames[-1]] += n
    rows = [(100 * c / total, 100 * own[f] / total, f) for f, c in inclusive.most_common(top)]
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--level", type=int, default=100_000, help="objects stored before profiling")
    parser.add_argument("--what", choices=("ingest", "get", "paging"), default="ingest")
    parser.add_argument("--envelopes", type=int, default=20)
    parser.add_argument("--gets", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=2021)
    parser.add_argument("--top", type=int, default=45)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="communique-spy-"))
    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    server = servers.start_communique(workdir)
    try:
        session = requests.Session()
        session.headers.update(server.headers)
        filler = measure.Filler(server, session, args.seed, 1800)
        filler.fill_to(args.level, budget=None)
        stem = out_dir / f"spy-{args.what}-{args.level}"
        spy = record(server.process.pid, stem.with_suffix(".txt"), "raw")
        if args.what == "ingest":
            result = filler.fill_to(args.level + args.envelopes * measure.ENVELOPE_SIZE, budget=None)
            print(f"ingest while sampled: {result['step_objects_per_s']:,.0f} objects/s")
        elif args.what == "get":
            result = measure.get_objects(server, session, filler.ids, samples=args.gets, budget=None,
                                         seed=args.seed, request_timeout=60)
            print(f"GET while sampled: median {result['median_ms']:.2f} ms, p95 {result['p95_ms']:.2f} ms")
        else:
            result = measure.page_all(server, session, expected=filler.stored, limit=1000,
                                      request_timeout=600, budget=None)
            print(f"paging while sampled: {result['objects_per_s']:,.0f} objects/s")
        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=60)
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"{'incl %':>7} {'self %':>7}  function (file:line)")
    for incl, self_, frame in shares(stem.with_suffix(".txt"), args.top):
        print(f"{incl:7.1f} {self_:7.1f}  {frame}")
    print(f"\ncollapsed stacks: {stem.with_suffix('.txt')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
