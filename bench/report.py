"""The machine, the medians over runs, the targets, and the printed table."""

from __future__ import annotations

import os
import platform
import sqlite3
import statistics
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

import orjson

TARGETS = {
    "ingest_min": 5_000,      # objects/s at every fill level
    "ingest_flat": 0.8,       # slowest level at least this share of the fastest
    "get_median_ms": 10.0,    # at the largest fill level
    "paging_min": 20_000,     # objects/s at the smallest and the largest fill level
    "import_s": 10.0,         # ATT&CK Enterprise, median wall time
    "rss_growth": 1.5,        # RSS at the largest level / RSS at the smallest
}


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def source_revision() -> str:
    """Return the git commit measured, marked '+changes' when src/ differs from it."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "src"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+changes" if dirty else "")


def machine() -> dict:
    """Describe the machine and the software the figures were measured with."""
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines()
                  if line.startswith("model name")), platform.processor())
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    mem_kib = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal"))
    versions = {name: metadata.version(name) for name in
                ("communique", "starlette", "uvicorn", "SQLAlchemy", "orjson", "stix2-patterns")}
    return {"cpu": model, "cores": os.cpu_count(), "usable_cores": len(os.sched_getaffinity(0)),
            "ram_gib": round(mem_kib / 1024 / 1024, 1), "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version, "kernel": platform.release(),
            "versions": versions, "revision": source_revision(), "loadavg_start": loadavg()}


def _median(values: list[Any]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _per_level(runs: list[dict]) -> dict[int, list[dict]]:
    grouped: dict[int, list[dict]] = {}
    for run in runs:
        for entry in run["levels"]:
            grouped.setdefault(entry["level"], []).append(entry)
    return grouped


def _summary_of(entries: list[dict]) -> dict:
    def med(pick: Callable[[dict], Any]) -> float | None:
        return _median([pick(e) for e in entries])

    pagings = [e["paging"] for e in entries if e.get("paging")]
    complete = [p for p in pagings if p.get("complete")]
    return {
        "runs": len(entries),
        "ingest_objects_per_s": med(lambda e: e["ingest"]["objects_per_s"]),
        "ingest_step_objects_per_s": med(lambda e: e["ingest"]["step_objects_per_s"]),
        "get_median_ms": med(lambda e: e["get"]["median_ms"]),
        "get_p95_ms": med(lambda e: e["get"]["p95_ms"]),
        "get_samples_per_run": med(lambda e: e["get"]["samples"]),
        "paging_objects_per_s": _median([p["objects_per_s"] for p in complete])
        if len(complete) == len(pagings) else None,
        "paging_first_page_ms": _median([p.get("first_page_ms") for p in complete])
        if len(complete) == len(pagings) else None,
        "paging_gave_up": [p["stopped"] for p in pagings if not p.get("complete")],
        "rss_after_fill_mib": med(lambda e: e["rss_after_fill_kib"]["VmRSS"] / 1024),
        "rss_after_reads_mib": med(lambda e: e["rss_after_reads_kib"]["VmRSS"] / 1024),
        "stopped": [e["ingest"]["stopped"] for e in entries if e["ingest"].get("stopped")],
    }


def save(results: dict, out: Path, rendered: str) -> None:
    """Write a run's raw results as JSON and print its table and where the results are."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))
    print(rendered)
    print(f"\nraw results: {out}")


def summarise(results: dict) -> dict:
    """Return medians over runs for each server and fill level, the import, and the targets."""
    summary: dict = {}
    for name, runs in results["runs"].items():
        summary[name] = {level: _summary_of(entries)
                         for level, entries in sorted(_per_level(runs).items())}
    if "import" in results:
        summary["import_median_s"] = statistics.median(results["import"]["seconds"])
        summary["import_runs"] = len(results["import"]["seconds"])
    summary["targets"] = targets(summary)
    return summary


def targets(summary: dict) -> list[dict]:
    """Check Communiqué's medians against the targets; each item says met or missed."""
    levels = summary.get("communique", {})
    if not levels:
        return []
    small, large = min(levels), max(levels)
    ingest = {lv: s["ingest_objects_per_s"] for lv, s in levels.items()}
    checks = [
        ("ingest >= 5,000 objects/s at every fill level",
         min(ingest.values()) >= TARGETS["ingest_min"],
         ", ".join(f"{lv:,}: {v:,.0f}" for lv, v in ingest.items())),
        ("ingest flat (slowest level >= 80% of fastest)",
         min(ingest.values()) >= TARGETS["ingest_flat"] * max(ingest.values()),
         f"{min(ingest.values()) / max(ingest.values()):.0%}"),
        (f"GET one object median < 10 ms at {large:,}",
         levels[large]["get_median_ms"] < TARGETS["get_median_ms"],
         f"{levels[large]['get_median_ms']:.1f} ms"),
        (f"paging >= 20,000 objects/s at {small:,} and {large:,}",
         all((levels[lv]["paging_objects_per_s"] or 0) >= TARGETS["paging_min"] for lv in (small, large)),
         f"{_num(levels[small]['paging_objects_per_s'])} and {_num(levels[large]['paging_objects_per_s'])}"),
        (f"memory flat (RSS at {large:,} <= 1.5x RSS at {small:,})",
         levels[large]["rss_after_fill_mib"] <= TARGETS["rss_growth"] * levels[small]["rss_after_fill_mib"],
         f"{levels[small]['rss_after_fill_mib']:.0f} -> {levels[large]['rss_after_fill_mib']:.0f} MiB"),
    ]
    if "import_median_s" in summary:
        checks.append(("ATT&CK import < 10 s", summary["import_median_s"] < TARGETS["import_s"],
                       f"{summary['import_median_s']:.2f} s"))
    return [{"target": t, "met": bool(ok), "measured": m} for t, ok, m in checks]


# -- rendering -----------------------------------------------------------------------------
def _num(value: float | None, unit: str = "") -> str:
    if value is None:
        return "—"
    if value >= 100:
        return f"{value:,.0f}{unit}"
    if value >= 10:
        return f"{value:.1f}{unit}"
    return f"{value:.2f}{unit}"


def _ratio(cq: float | None, med: float | None, higher_is_better: bool) -> str:
    if cq is None or med is None or med == 0 or cq == 0:
        return "—"
    ratio = cq / med
    factor = ratio if higher_is_better else 1 / ratio
    if 1 / 1.5 < factor < 1.5:
        return f"{ratio:.3g}"
    word, factor = ("better", factor) if factor >= 1 else ("worse", 1 / factor)
    return f"{ratio:.3g} ({factor:,.0f}× {word})" if factor >= 10 else f"{ratio:.3g} ({factor:.1f}× {word})"


ROWS = (  # label, summary key, unit, higher is better
    ("ingest, objects/s", "ingest_objects_per_s", "", True),
    ("ingest, whole step to this level, objects/s", "ingest_step_objects_per_s", "", True),
    ("GET one object, median ms", "get_median_ms", "", False),
    ("GET one object, p95 ms", "get_p95_ms", "", False),
    ("paging limit=1000, objects/s", "paging_objects_per_s", "", True),
    ("paging, first page ms", "paging_first_page_ms", "", False),
    ("server RSS after fill, MiB", "rss_after_fill_mib", "", False),
)


def table_rows(results: dict) -> list[tuple[str, str, str, str, str]]:
    """Return (metric, stored objects, Communiqué, medallion, Communiqué/medallion) rows."""
    summary = results["summary"]
    cq, med = summary.get("communique", {}), summary.get("medallion", {})
    rows = []
    for label, key, unit, higher in ROWS:
        for level in sorted(set(cq) | set(med)):
            a = cq.get(level, {}).get(key)
            b = med.get(level, {}).get(key)
            b_text = _num(b, unit)
            ratio = _ratio(a, b, higher)
            if key.startswith("paging") and level in med and b is None:
                b_text, ratio = _paging_gave_up(results, level, a, key)
            rows.append((label, f"{level:,}", _num(a, unit), b_text if level in med else "—", ratio))
    if "import_median_s" in summary:
        rows.append(("ATT&CK Enterprise import, s", "fresh db", _num(summary["import_median_s"]),
                     "n/a", "—"))
    return rows


def _paging_gave_up(results: dict, level: int, cq: float | None, key: str) -> tuple[str, str]:
    """Text and lower-bound ratio for a medallion listing that timed out or was not tried."""
    timeout = results["config"]["medallion_page_timeout"]
    reasons = results["summary"]["medallion"][level]["paging_gave_up"]
    if reasons and all(r.startswith("not tried") for r in reasons):
        return "not tried", "—"
    if not cq:
        return f"gave up (> {timeout:.0f} s)", "—"
    if key == "paging_objects_per_s":  # medallion's whole listing took longer than timeout
        return f"gave up (> {timeout:.0f} s)", f"≥ {cq / (level / timeout):,.0f}× better"
    return f"gave up (> {timeout:.0f} s)", f"≥ {timeout * 1000 / cq:,.0f}× better"


def render(results: dict) -> str:
    """Format the machine, the table of medians with ratios, and the targets."""
    m, cfg, summary = results["machine"], results["config"], results["summary"]
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable), {m['ram_gib']} GiB RAM, "
        f"Python {m['python']}, SQLite {m['sqlite']}, Linux {m['kernel']}; "
        f"load average {m['loadavg_start']} at start, {m.get('loadavg_end')} at end",
        f"Communiqué {m['versions']['communique']} at {m['revision']}, source digest "
        f"{m.get('source_digest', '?')} (SQLite, 1 worker)"
        + (f"; medallion {m['medallion']['medallion']} (memory backend, Flask {m['medallion']['flask']})"
           if "medallion" in m else ""),
        f"Envelopes of 1,000 objects; seed {cfg['seed']}; medians of {cfg['runs']} run(s); "
        f"{cfg['get_samples']} GETs per level (medallion: at most {cfg['medallion_get_budget']:.0f} s of GETs, ≥ 5)",
        "",
    ]
    rows = [("metric", "stored objects", "Communiqué", "medallion", "Communiqué/medallion")]
    rows += table_rows(results)
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for index, row in enumerate(rows):
        lines.append("| " + " | ".join(c.ljust(w) if i < 2 else c.rjust(w)
                                       for i, (c, w) in enumerate(zip(row, widths))) + " |")
        if index == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    notes = []
    for name in ("communique", "medallion"):
        for level, s in summary.get(name, {}).items():
            for reason in set(s["stopped"]):
                notes.append(f"{name} at {level:,}: {reason}")
            for reason in set(s["paging_gave_up"]):
                notes.append(f"{name} paging at {level:,}: {reason}")
    if notes:
        lines += ["", "Notes:"] + [f"- {n}" for n in notes]
    if summary.get("targets"):
        lines += ["", "Targets (Communiqué, SQLite, one worker):"]
        lines += [f"- [{'met' if t['met'] else 'MISSED'}] {t['target']}: {t['measured']}"
                  for t in summary["targets"]]
    return "\n".join(lines)
