"""Time the store's write path alone, in process, as a SQLite store fills up.

    .venv/bin/python bench/store_fill.py --objects 1000000
    .venv/bin/python bench/store_fill.py --objects 1000000 --pragma cache_size=-65536
    .venv/bin/python bench/store_fill.py --objects 1000000 --page-size 2048

No HTTP, no server: each 1,000-object envelope of the benchmark's generator is
validated untimed, then one write transaction stores it, and only that
transaction is timed. It isolates what the storage engine costs as the store
grows, and lets a SQLite setting be tried (``--pragma``, applied to every
connection after Communiqué's own) without touching the code.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import event

import servers
import stixgen

sys.path.insert(0, str(servers.ROOT / "src"))

from communique import audit, ingest, node, settings, timestamps  # noqa: E402
from communique.store.engines import open_store  # noqa: E402

BLOCK = 10_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    parser.add_argument("--objects", type=int, default=1_000_000, help="fill up to this many")
    parser.add_argument("--report-every", type=int, default=100_000,
                        help="print the rate over each block of this many objects")
    parser.add_argument("--pragma", action="append", default=[],
                        help="an extra SQLite PRAGMA for every connection, e.g. cache_size=-65536")
    parser.add_argument("--page-size", type=int, default=0,
                        help="create the database with this SQLite page size first")
    parser.add_argument("--seed", type=int, default=2021)
    args = parser.parse_args()
    if args.report_every % BLOCK or args.objects % args.report_every:
        parser.error(f"--report-every must divide --objects and be a multiple of {BLOCK:,}")

    with tempfile.TemporaryDirectory(prefix="communique-store-fill-") as tmp:
        database = f"sqlite:///{tmp}/fill.db"
        if args.page_size:
            raw = sqlite3.connect(f"{tmp}/fill.db")
            raw.execute(f"PRAGMA page_size={args.page_size}")
            raw.execute("VACUUM")  # writes the header, so the page size sticks
            raw.close()
        servers.communique_cli("init", database=database)
        servers.communique_cli("org", "add", "bench", database=database)
        collection = servers.communique_cli("collection", "add", "fill", "--write", "bench",
                                            database=database).strip().splitlines()[-1]
        store = open_store(database)
        with store.read() as tx:
            target = tx.get_collection("default", collection)
        assert target is not None

        @event.listens_for(store.engine, "connect")
        def _extra(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            for pragma in args.pragma:
                dbapi_conn.execute(f"PRAGMA {pragma}")

        provenance = node.local_provenance(store, settings.load(database=database),
                                           node.signer(store, settings.load(database=database)))
        rates: list[float] = []
        spent, stored, number = 0.0, 0, 0
        print(f"{'stored':>10}  objects/s (store only)", flush=True)
        while stored < args.objects:
            checked = ingest.check(stixgen.envelope_objects(args.seed, number), provenance)
            number += 1
            started = time.perf_counter()
            with store.write() as tx:
                ingest.store_checked(tx, checked, collection=target, producer_org=None,
                                     now=timestamps.now_us(), actor=audit.OPERATOR)
            spent += time.perf_counter() - started
            stored += len(checked.valid)
            if stored % BLOCK == 0:
                rates.append(BLOCK / spent)
                spent = 0.0
                if stored == BLOCK and args.report_every > BLOCK:
                    print(f"{stored:>10,}  {rates[-1]:>9,.0f}  (first {BLOCK:,})", flush=True)
            if stored % args.report_every == 0:
                block = rates[-(args.report_every // BLOCK):]
                print(f"{stored:>10,}  {statistics.harmonic_mean(block):>9,.0f}", flush=True)
        size = sum(path.stat().st_size for path in Path(tmp).glob("fill.db*"))
        print(f"database and WAL files: {size / 2**20:,.0f} MiB")
        store.engine.dispose()


if __name__ == "__main__":
    main()
