"""Where a bulk submit's time goes, in two parts: preparing the calls (`TaskType.prepare`:
argument checks, JSON, the NewTask) and storing them (`App.submit_many`: rows, SQL, commit), in
microseconds per task, on a fresh database of each backend with its store already open; batches
of 5,000. With `--profile`, cProfile's top entries of one more run (the two parts together). Run
it with `PYTHONPATH=<an older checkout>/src` for the same figures of that code.

    python benchmarks/bulk_parts.py --tasks 20000 --rounds 3
    python benchmarks/bulk_parts.py --tasks 20000 --rounds 1 --profile --backend sqlite
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import fresh_database

import corral

app = corral.App()


@app.task(name="anoop")
async def anoop(ctx: corral.Context, n: int) -> int:
    return n


def one(url: str, count: int) -> tuple[float, float]:
    app.url = url
    app.clock.now()  # the store and its clock opened before the timing
    prepare = store = 0.0
    for first in range(0, count, 5000):
        began = time.perf_counter()
        calls = [anoop.prepare(i) for i in range(first, min(first + 5000, count))]
        prepared = time.perf_counter()
        app.submit_many(calls)
        prepare, store = prepare + prepared - began, store + time.perf_counter() - prepared
    app.close()
    return prepare, store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backend", action="append", choices=["sqlite", "postgres"])
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    for backend in args.backend or ["sqlite", "postgres"]:
        parts = []
        for _ in range(args.rounds):
            with fresh_database(backend) as url:
                parts.append(one(url, args.tasks))
        prepare = statistics.median(p for p, _ in parts) / args.tasks * 1e6
        store = statistics.median(s for _, s in parts) / args.tasks * 1e6
        total = [round(args.tasks / (p + s)) for p, s in parts]
        print(f"{backend:8} prepare {prepare:5.1f} us/task  store {store:5.1f} us/task  "
              f"rounds {total} tasks/s")  # fmt: skip
        if args.profile:
            with fresh_database(backend) as url:
                profile = cProfile.Profile()
                profile.runcall(one, url, args.tasks)
            pstats.Stats(profile).sort_stats("tottime").print_stats(20)


if __name__ == "__main__":
    main()
