"""Measure the indicator engine: events matched per second, against a bare set lookup and
the OASIS reference matcher, and the memory of the compiled indicators.

    .venv/bin/python bench/detect.py                       # 100,000 indicators, 1,000,000 events
    .venv/bin/python bench/detect.py --indicators 1000000 --events 200000   # memory at 1M

Indicators are equality patterns of the forms producers emit most (IPv4 addresses,
domain names, SHA-256 and MD5 hashes, URLs). Events are pre-parsed ``Event`` values
of three observables each (two addresses, one domain), as a conn/dns log gives, of
which one in a thousand holds an indicator's value. One core; medians of ``--runs``.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import resource
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from communique.detect.engine import Engine  # noqa: E402
from communique.detect.events import Event  # noqa: E402


def indicators(count: int, rng: random.Random) -> list[tuple[str, str, str, str]]:
    """Return (id, pattern, path, value) for ``count`` equality indicators of mixed kinds."""
    made = []
    for n in range(count):
        kind = n % 5
        if kind in (0, 1):
            value, path = f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}", "ipv4-addr:value"
        elif kind == 2:
            value, path = f"c2-{n}.bad{n % 997}.example", "domain-name:value"
        elif kind == 3:
            value, path = f"{rng.getrandbits(256):064x}", "file:hashes.'SHA-256'"
        else:
            value, path = f"http://d{n}.example/p/{n}", "url:value"
        made.append((f"indicator-{n}", f"[{path} = '{value}']", path, value))
    return made


def events(count: int, planted: list[tuple[str, str]], rng: random.Random) -> list[Event]:
    """Conn/DNS-like events; every thousandth carries a planted indicator value."""
    made = []
    for n in range(count):
        values = {"ipv4-addr:value": (f"192.168.{rng.randrange(256)}.{rng.randrange(256)}",
                                      f"172.16.{rng.randrange(64)}.{rng.randrange(256)}"),
                  "domain-name:value": (f"site{rng.randrange(50_000)}.example",)}
        if n % 1000 == 0 and planted:
            path, value = planted[(n // 1000) % len(planted)]
            values = {**values, path: (value,) + values.get(path, ())}
        made.append(Event(n, values, ""))
    return made


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--indicators", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--reference-pairs", type=int, default=2_000,
                        help="pattern/observation pairs given to stix2-matcher")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "detect-latest.json")
    args = parser.parse_args()
    rng = random.Random(2026)

    made = indicators(args.indicators, rng)
    before = rss_mib()
    started = time.perf_counter()
    engine = Engine()
    for indicator_id, pattern, _, _ in made:
        engine.add(indicator_id, pattern)
    compile_s = time.perf_counter() - started
    gc.collect()
    engine_mib = rss_mib() - before
    print(f"{args.indicators:,} indicators compiled in {compile_s:.1f} s "
          f"({args.indicators / compile_s:,.0f}/s); process peak RSS grew {engine_mib:,.0f} MiB",
          flush=True)

    planted = [(path, value) for _, _, path, value in made if path != "file:hashes.'SHA-256'"]
    stream = events(args.events, planted[:5000], rng)
    expected_hits = sum(1 for n in range(args.events) if n % 1000 == 0)

    rates, bare_rates = [], []
    for run in range(args.runs):
        engine._plain.clear()
        engine._mapped.clear()
        started = time.perf_counter()
        hits = 0
        for start in range(0, len(stream), args.batch):
            hits += len(engine.match_many(stream[start:start + args.batch]))
        elapsed = time.perf_counter() - started
        assert hits >= expected_hits, (hits, expected_hits)
        rates.append(len(stream) / elapsed)
        keys = {value for _, _, _, value in made}
        started = time.perf_counter()
        found = 0
        for event in stream:  # the bare loop: one set, raw values, no normalisation
            for seen in event.values.values():
                for value in seen:
                    if value in keys:
                        found += 1
        bare_rates.append(len(stream) / (time.perf_counter() - started))
        print(f"run {run + 1}: engine {rates[-1]:,.0f} events/s ({hits:,} matches), "
              f"bare set loop {bare_rates[-1]:,.0f} events/s", flush=True)

    from stix2matcher.matcher import match

    sample = made[: max(1, args.reference_pairs // 20)]
    observation = {"type": "observed-data", "spec_version": "2.1",
                   "id": "observed-data--0b8a0a7e-5d4e-4d7b-9a51-2f6f3c9f7a10",
                   "created": "2026-01-01T00:00:00Z", "modified": "2026-01-01T00:00:00Z",
                   "first_observed": "2026-01-01T00:00:00Z",
                   "last_observed": "2026-01-01T00:00:00Z", "number_observed": 1,
                   "object_refs": ["ipv4-addr--00000000-0000-4000-8000-000000000001"]}
    bundle = {"type": "bundle", "id": "bundle--00000000-0000-4000-8000-000000000002",
              "objects": [observation, {"type": "ipv4-addr", "spec_version": "2.1",
                                        "id": "ipv4-addr--00000000-0000-4000-8000-000000000001",
                                        "value": "192.168.1.1"}]}
    pairs = 0
    started = time.perf_counter()
    while pairs < args.reference_pairs:
        for _, pattern, _, _ in sample:
            match(pattern, [bundle], stix_version="2.1")
            pairs += 1
    reference = pairs / (time.perf_counter() - started)

    engine_rate, bare_rate = statistics.median(rates), statistics.median(bare_rates)
    pairs_per_s = engine_rate * args.indicators
    result = {
        "indicators": args.indicators, "events": args.events, "batch": args.batch,
        "runs": args.runs, "compile_s": compile_s, "engine_rss_growth_mib": engine_mib,
        "engine_events_per_s": rates, "bare_events_per_s": bare_rates,
        "median_engine_events_per_s": engine_rate, "median_bare_events_per_s": bare_rate,
        "ratio_to_bare": engine_rate / bare_rate,
        "reference_pairs_per_s": reference,
        "engine_pattern_event_pairs_per_s": pairs_per_s,
        "python": sys.version.split()[0],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"\nmedian: engine {engine_rate:,.0f} events/s, bare set loop {bare_rate:,.0f} "
          f"events/s, ratio {engine_rate / bare_rate:.2f}")
    print(f"stix2-matcher: {reference:,.0f} pattern/observation pairs/s; the engine decides "
          f"{pairs_per_s:,.0f} pairs/s ({pairs_per_s / reference:,.0f}x)")
    print(f"target >= 1,000,000 events/s: {'MET' if engine_rate >= 1e6 else 'NOT MET'}")
    print(f"raw results: {args.out}")


if __name__ == "__main__":
    main()
