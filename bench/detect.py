"""Measure the indicator engine: events and log lines matched per second, against a bare set
lookup and the OASIS reference matcher, and the memory of the compiled indicators.

    .venv/bin/python bench/detect.py                       # 100,000 indicators
    .venv/bin/python bench/detect.py --indicators 1000000 --events 200000 --eve-lines 0 \\
        --zeek-lines 0 --out bench/results/detect-1m.json  # memory at 1M

Indicators are equality patterns of the forms producers emit most (IPv4 addresses,
domain names, SHA-256 hashes, URLs). Three measurements, medians of ``--runs``, one core:

- pre-parsed ``Event`` values of three observables each (two addresses, one domain), as
  a conn/dns log gives, one in a thousand holding an indicator's value, matched by
  ``Engine.match_many`` in batches, next to a bare loop of set lookups over the same values;
- end to end from files: a Suricata EVE log (a mix of flow, dns, tls, http, fileinfo and
  alert events) and a Zeek conn.log, scanned by ``logs.scan`` and matched by
  ``Engine.match_batch``, one line in a thousand holding an indicator's value;
- the growth of the process's resident memory while the indicators are compiled.

Each measurement runs in a process of its own, after compiling the indicators there. The
engine's cached verdicts are dropped before every run: each run starts cold, as a hunt does.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterator

import orjson

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))

import report  # noqa: E402
from communique.detect.engine import Engine  # noqa: E402
from communique.detect.events import Event, ReadReport  # noqa: E402
from communique.detect.logs import read, scan  # noqa: E402

PLANTED = 5_000  # indicator values planted into events and logs
V4, DOMAIN = "ipv4-addr:value", "domain-name:value"


def indicators(count: int, seed: int = 2026) -> Iterator[tuple[str, str, str, str]]:
    """Yield (id, pattern, path, value) for ``count`` equality indicators of mixed kinds."""
    rng = random.Random(seed)
    for n in range(count):
        kind = n % 5
        if kind in (0, 1):
            value, path = f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}", V4
        elif kind == 2:
            value, path = f"c2-{n}.bad{n % 997}.example", DOMAIN
        elif kind == 3:
            value, path = f"{rng.getrandbits(256):064x}", "file:hashes.'SHA-256'"
        else:
            value, path = f"http://d{n}.example/p/{n}", "url:value"
        yield f"indicator--{n:08x}-{n % 65536:04x}-4000-8000-{rng.getrandbits(48):012x}", \
            f"[{path} = '{value}']", path, value


def _address(rng: random.Random) -> str:
    """An address of a network of a few hundred thousand (internal ones twice as often)."""
    draw = rng.random()
    if draw < 0.5:
        return f"192.168.{rng.randrange(256)}.{rng.randrange(256)}"
    if draw < 0.8:
        return f"172.16.{rng.randrange(64)}.{rng.randrange(256)}"
    return f"203.0.{rng.randrange(256)}.{rng.randrange(256)}"


def _plant(n: int, planted: list[tuple[str, str]]) -> tuple[str, str] | None:
    return planted[(n // 1000) % len(planted)] if n % 1000 == 0 and planted else None


def events(count: int, planted: list[tuple[str, str]], rng: random.Random) -> list[Event]:
    """Conn/DNS-like events; every thousandth carries a planted indicator value."""
    made = []
    for n in range(count):
        values = {V4: (f"192.168.{rng.randrange(256)}.{rng.randrange(256)}",
                       f"172.16.{rng.randrange(64)}.{rng.randrange(256)}"),
                  DOMAIN: (f"site{rng.randrange(50_000)}.example",)}
        plant = _plant(n, planted)
        if plant:
            path, value = plant
            values = {**values, path: (value,) + values.get(path, ())}
        made.append(Event(n, values, ""))
    return made


def eve_lines(count: int, planted: list[tuple[str, str]], rng: random.Random) -> Iterator[bytes]:
    """Suricata EVE lines: 45 % flow, 25 % dns, 10 % tls, 10 % http, 5 % fileinfo, 5 % alert."""
    start = datetime(2026, 11, 27, 8, 0, tzinfo=timezone.utc)
    for n in range(count):
        stamp = (start + timedelta(microseconds=n * 3_217)).strftime("%Y-%m-%dT%H:%M:%S.%f+0000")
        source, destination = _address(rng), _address(rng)
        name = f"site{rng.randrange(50_000)}.example"
        plant = _plant(n, planted)
        if plant:
            destination = plant[1] if plant[0] == V4 else destination
            name = plant[1] if plant[0] == DOMAIN else name
        url = f"/p/{rng.randrange(1_000_000)}?q={rng.randrange(1000)}"
        flow = {"timestamp": stamp, "flow_id": rng.getrandbits(50), "in_iface": "eth0",
                "src_ip": source, "src_port": rng.randrange(1024, 65536), "dest_ip": destination,
                "dest_port": rng.choice([53, 80, 443, 443, 443, 8080, 22, 25]), "proto": "TCP"}
        http = {"hostname": name, "url": url, "http_user_agent": "Mozilla/5.0 (Windows NT 10.0)",
                "http_content_type": "text/html", "http_method": "GET", "protocol": "HTTP/1.1",
                "status": 200, "length": rng.randrange(100_000)}
        draw = rng.random()
        if draw < 0.45:
            document = {**flow, "event_type": "flow", "app_proto": "tls", "flow": {
                "pkts_toserver": rng.randrange(100), "pkts_toclient": rng.randrange(100),
                "bytes_toserver": rng.randrange(100_000), "bytes_toclient": rng.randrange(100_000),
                "start": stamp, "end": stamp, "age": rng.randrange(100), "state": "closed",
                "reason": "timeout", "alerted": False}, "tcp": {
                "tcp_flags": "1b", "syn": True, "fin": True, "psh": True, "ack": True, "state": "closed"}}
        elif draw < 0.70:
            answer = _address(rng)
            document = {**flow, "event_type": "dns", "proto": "UDP", "dns": {
                "version": 2, "type": "answer", "id": rng.randrange(65536), "flags": "8180",
                "qr": True, "rd": True, "ra": True, "rrname": name, "rrtype": "A", "rcode": "NOERROR",
                "answers": [{"rrname": name, "rrtype": "A", "ttl": 300, "rdata": answer}],
                "grouped": {"A": [answer]}}}
        elif draw < 0.80:
            document = {**flow, "event_type": "tls", "tls": {
                "subject": f"CN={name}", "issuerdn": "C=US, O=Example CA, CN=Example Issuing CA 1",
                "serial": "0A:1B:2C:3D", "sni": name, "version": "TLS 1.2",
                "fingerprint": ":".join(f"{rng.randrange(256):02x}" for _ in range(20)),
                "notbefore": "2026-01-01T00:00:00", "notafter": "2027-01-01T00:00:00",
                "ja3": {"hash": f"{rng.getrandbits(128):032x}"}}}
        elif draw < 0.90:
            document = {**flow, "event_type": "http", "tx_id": 0, "http": http}
        elif draw < 0.95:
            document = {**flow, "event_type": "fileinfo", "http": http, "fileinfo": {
                "filename": url, "magic": "PE32 executable", "state": "CLOSED", "stored": False,
                "md5": f"{rng.getrandbits(128):032x}", "sha1": f"{rng.getrandbits(160):040x}",
                "sha256": f"{rng.getrandbits(256):064x}", "size": 1000, "tx_id": 0}}
        else:
            document = {**flow, "event_type": "alert", "direction": "to_server", "http": http,
                        "app_proto": "http", "alert": {
                            "action": "allowed", "gid": 1, "signature_id": 2024897, "rev": 3,
                            "signature": "ET POLICY Example signature", "severity": 2,
                            "category": "Potential Corporate Privacy Violation",
                            "metadata": {"created_at": ["2019_01_01"], "updated_at": ["2024_01_01"]}}}
        yield orjson.dumps(document)


CONN = ("ts uid id.orig_h id.orig_p id.resp_h id.resp_p proto service duration orig_bytes "
        "resp_bytes conn_state local_orig local_resp missed_bytes history orig_pkts orig_ip_bytes "
        "resp_pkts resp_ip_bytes tunnel_parents").split()
CONN_TYPES = ("time string addr port addr port enum string interval count count string bool bool "
              "count string count count count count set[string]").split()


def zeek_conn_lines(count: int, planted: list[tuple[str, str]], rng: random.Random) -> Iterator[bytes]:
    """A Zeek conn.log as Zeek writes it; every thousandth connection to a planted address."""
    yield from (line.encode() for line in (
        "#separator \\x09", "#set_separator\t,", "#empty_field\t(empty)", "#unset_field\t-",
        "#path\tconn", "#open\t2026-11-27-08-00-00", "#fields\t" + "\t".join(CONN),
        "#types\t" + "\t".join(CONN_TYPES)))
    seconds = 1_795_000_000.0
    v4_planted = [plant for plant in planted if plant[0] == V4]
    for n in range(count):
        seconds += 0.003217
        plant = _plant(n, v4_planted)
        destination = plant[1] if plant else _address(rng)
        proto, service = rng.choice([("tcp", "ssl"), ("tcp", "http"), ("udp", "dns"), ("tcp", "-")])
        yield (f"{seconds:.6f}\tC{rng.getrandbits(60):x}\t{_address(rng)}\t{rng.randrange(1024, 65536)}"
               f"\t{destination}\t{rng.choice([53, 80, 443, 8080])}\t{proto}\t{service}\t"
               f"{rng.random() * 10:.6f}\t{rng.randrange(10_000)}\t{rng.randrange(100_000)}\tSF\tT\tF\t0"
               f"\tShADadFf\t{rng.randrange(100)}\t{rng.randrange(10_000)}\t{rng.randrange(100)}"
               f"\t{rng.randrange(100_000)}\t-").encode()
    yield b"#close\t2026-11-27-09-00-00"


def rss_mib() -> float:
    """Return the resident memory of this process now, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def compile_indicators(count: int) -> tuple[Engine, dict, list[tuple[str, str]]]:
    """Compile ``count`` indicators made on the fly (so only what the engine keeps stays)."""
    planted: list[tuple[str, str]] = []
    gc.collect()
    before = rss_mib()
    started = time.perf_counter()
    engine = Engine()
    for indicator_id, pattern, path, value in indicators(count):
        engine.add(indicator_id, pattern)
        if path in (V4, DOMAIN) and len(planted) < PLANTED:
            planted.append((path, value))
    seconds = time.perf_counter() - started
    gc.collect()
    return engine, {"compile_s": seconds, "rss_growth_mib": rss_mib() - before}, planted


def match_events(engine: Engine, count: int, batch: int, runs: int,
                 planted: list[tuple[str, str]], keys: set[str]) -> dict:
    """Match pre-parsed events in batches, and run the bare set-lookup loop on the same values."""
    stream = events(count, planted, random.Random(7))
    rates, bare = [], []
    for run in range(runs):
        engine.forget()
        started = time.perf_counter()
        hits = sum(len(engine.match_many(stream[start:start + batch]))
                   for start in range(0, len(stream), batch))
        rates.append(len(stream) / (time.perf_counter() - started))
        assert hits >= count // 1000, hits
        started = time.perf_counter()
        found = 0
        for event in stream:  # the bare loop: one set, raw values, no normalisation
            for seen in event.values.values():
                for value in seen:
                    if value in keys:
                        found += 1
        bare.append(len(stream) / (time.perf_counter() - started))
        print(f"  events run {run + 1}: engine {rates[-1]:,.0f}/s ({hits:,} matches), "
              f"bare loop {bare[-1]:,.0f}/s", flush=True)
    return {"events": count, "batch": batch, "engine_per_s": rates, "bare_per_s": bare,
            "median_engine_per_s": statistics.median(rates), "median_bare_per_s": statistics.median(bare)}


def match_log(engine: Engine, path: Path, lines: int, format: str, runs: int) -> dict:
    """Scan and match a log file end to end; once also by ``read`` and ``match_many``, as before."""
    rates, hits = [], 0
    for run in range(runs):
        engine.forget()
        started = time.perf_counter()
        hits = sum(len(engine.match_batch(batch)) for batch in
                   scan([path], format=format, report=ReadReport()))
        rates.append(lines / (time.perf_counter() - started))
        print(f"  {format} run {run + 1}: {rates[-1]:,.0f} lines/s ({hits} matches)", flush=True)
    engine.forget()
    started = time.perf_counter()
    stream, old_hits = read([path], format=format, report=ReadReport()), 0
    while chunk := [event for _, event in zip(range(10_000), stream)]:
        old_hits += len(engine.match_many(chunk))
    previous = lines / (time.perf_counter() - started)
    assert old_hits == hits, (old_hits, hits)
    print(f"  {format} by read + match_many: {previous:,.0f} lines/s", flush=True)
    return {"lines": lines, "bytes": path.stat().st_size, "matches": hits, "lines_per_s": rates,
            "median_lines_per_s": statistics.median(rates), "read_and_match_many_lines_per_s": previous}


def write_log(path: Path, lines: Iterator[bytes]) -> None:
    with path.open("wb") as out:
        for line in lines:
            out.write(line + b"\n")


def reference_rate(pairs: int) -> float:
    """Return the pattern/observation pairs stix2-matcher decides per second."""
    from stix2matcher.matcher import match

    sample = [pattern for _, pattern, _, _ in indicators(max(1, pairs // 20))]
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
    done = 0
    started = time.perf_counter()
    while done < pairs:
        for pattern in sample:
            match(pattern, [bundle], stix_version="2.1")
            done += 1
    return done / (time.perf_counter() - started)


def render(results: dict) -> str:
    """Return the printed summary of a run."""
    out = [f"{results['indicators']:,} indicators compiled in {results['compile_s']:.1f} s; "
           f"resident memory grew {results['rss_growth_mib']:,.0f} MiB"]
    matched = results.get("pre_parsed")
    if matched:
        engine, bare = matched["median_engine_per_s"], matched["median_bare_per_s"]
        out.append(f"pre-parsed events: engine {engine:,.0f}/s, bare set loop {bare:,.0f}/s, "
                   f"ratio {engine / bare:.2f} (target 1,000,000/s: {'MET' if engine >= 1e6 else 'NOT MET'})")
    for name in ("eve", "zeek"):
        log = results.get(name)
        if log:
            rate = log["median_lines_per_s"]
            out.append(f"{name}: {rate:,.0f} lines/s end to end (read + match_many before: "
                       f"{log['read_and_match_many_lines_per_s']:,.0f}/s; target 300,000/s: "
                       f"{'MET' if rate >= 3e5 else 'NOT MET'})")
    if results.get("reference_pairs_per_s"):
        out.append(f"stix2-matcher: {results['reference_pairs_per_s']:,.0f} pattern/observation pairs/s")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--indicators", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000, help="pre-parsed events (0: skip)")
    parser.add_argument("--eve-lines", type=int, default=300_000, help="EVE log lines (0: skip)")
    parser.add_argument("--zeek-lines", type=int, default=1_000_000, help="conn.log lines (0: skip)")
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--reference-pairs", type=int, default=2_000,
                        help="pattern/observation pairs given to stix2-matcher (0: skip)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "detect-latest.json")
    parser.add_argument("--part", help=argparse.SUPPRESS)  # one measurement, in a process of its own
    parser.add_argument("--log", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.part:
        print(orjson.dumps(measure_part(args)).decode())
        return

    results: dict = {"machine": report.machine(), "indicators": args.indicators, "runs": args.runs}
    results.update(run_part(args, "compile"))
    print(f"{args.indicators:,} indicators compiled in {results['compile_s']:.1f} s, "
          f"resident memory grew {results['rss_growth_mib']:,.0f} MiB", flush=True)
    if args.events:
        results["pre_parsed"] = run_part(args, "events")
    logs: list[tuple[str, int, Callable[..., Iterator[bytes]], str]] = [
        ("eve", args.eve_lines, eve_lines, "eve.json"), ("zeek", args.zeek_lines, zeek_conn_lines, "conn.log")]
    with tempfile.TemporaryDirectory() as folder:
        for name, lines, make, file_name in logs:
            if lines:
                path = Path(folder) / file_name
                planted = [(path_, value) for _, _, path_, value in indicators(args.indicators)
                           if path_ in (V4, DOMAIN)][:PLANTED]
                write_log(path, make(lines, planted, random.Random(11)))
                results[name] = run_part(args, name, path)
                path.unlink()
    if args.reference_pairs:
        results["reference_pairs_per_s"] = reference_rate(args.reference_pairs)
    results["loadavg_end"] = report.loadavg()
    report.save(results, args.out, render(results))


def run_part(args: argparse.Namespace, part: str, log: Path | None = None) -> dict:
    """Run one measurement in a fresh process (so that one's garbage does not slow the next)."""
    command = [sys.executable, __file__, "--part", part, "--indicators", str(args.indicators),
               "--events", str(args.events), "--eve-lines", str(args.eve_lines),
               "--zeek-lines", str(args.zeek_lines), "--batch", str(args.batch), "--runs", str(args.runs)]
    if log is not None:
        command += ["--log", str(log)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    *progress, last = done.stdout.rstrip().splitlines()
    for line in progress:
        print(line, flush=True)
    return orjson.loads(last)


def measure_part(args: argparse.Namespace) -> dict:
    """Compile the indicators, then measure one part (printing progress, the result last)."""
    engine, compiled, planted = compile_indicators(args.indicators)
    if args.part == "compile":
        return compiled
    if args.part == "events":
        keys = {value for _, _, _, value in indicators(args.indicators)}
        return match_events(engine, args.events, args.batch, args.runs, planted, keys)
    lines = args.eve_lines if args.part == "eve" else args.zeek_lines
    return match_log(engine, args.log, lines, args.part, args.runs)


if __name__ == "__main__":
    main()
