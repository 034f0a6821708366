"""The cost of the hot path must not grow with the backlog.

For each backend, with N ready tasks queued (10,000 and 1,000,000 by default), time one
dispatch round (snapshot + admission of 100 tasks), one claim of 100 tasks and one batched
completion of 100 tasks, as medians over repeated rounds. The 10,000 run is the baseline:
the figure that matters is the ratio big/small, which should stay near 1.

    python benchmarks/claim_cost.py --backend sqlite --backend postgres --small 10000 --big 1000000
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import backlog, fresh_database

from corral.lifecycle import State
from corral.model import AttemptReport, WorkerInfo
from corral.scheduler.dispatcher import dispatch
from corral.store import open_store
from corral.store.contract import ClaimParams, CompleteParams, InsertParams

BATCH = 100


def analyze(url: str) -> None:
    """Refresh the planner's statistics after the bulk load, as autovacuum would."""
    if url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(url.split("sqlite:///", 1)[1]) as conn:
            conn.execute("ANALYZE")
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE")


def measure(backend: str, queued: int, rounds: int) -> dict[str, float]:
    with fresh_database(backend) as url:
        store = open_store(url)
        tasks = backlog(queued)
        for first in range(0, queued, 50_000):
            store.task_insert_many(InsertParams(tasks[first : first + 50_000], time.time()))
        analyze(url)
        now = time.time()
        store.worker_register(WorkerInfo("bench", "host", 1, ("default",), BATCH), now + 3600, now)
        store.ready_groups_refresh(1_000_000)  # the bulk load's hints, as the scheduler would
        costs: dict[str, list[float]] = {"dispatch": [], "claim": [], "complete": []}
        for _ in range(rounds):
            now = time.time()
            started = time.perf_counter()
            admitted = dispatch(store, now, prefetch=0)
            costs["dispatch"].append(time.perf_counter() - started)
            started = time.perf_counter()
            claimed = store.task_claim(ClaimParams("bench", ["default"], BATCH, now + 60, now))
            costs["claim"].append(time.perf_counter() - started)
            reports = [
                AttemptReport(
                    t.id, t.attempt, "succeeded", State.SUCCEEDED, worker_id="bench", result="null"
                )
                for t in claimed
            ]
            started = time.perf_counter()
            store.task_complete_many(CompleteParams(reports, now))
            costs["complete"].append(time.perf_counter() - started)
            assert admitted == BATCH and len(claimed) == BATCH, (admitted, len(claimed))
        store.close()
    return {k: sorted(v)[len(v) // 2] for k, v in costs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", action="append", choices=["sqlite", "postgres"])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    for backend in args.backend or ["sqlite", "postgres"]:
        small = measure(backend, args.small, args.rounds)
        big = measure(backend, args.big, args.rounds)
        print(
            f"{backend}: median ms per round of {BATCH} tasks "
            f"({args.small:,} vs {args.big:,} ready tasks queued)"
        )
        for step in ("dispatch", "claim", "complete"):
            print(
                f"  {step:9} {small[step] * 1000:8.2f} ms  {big[step] * 1000:8.2f} ms  "
                f"ratio {big[step] / small[step]:5.2f}"
            )


if __name__ == "__main__":
    main()
