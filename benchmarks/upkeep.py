"""What the table upkeep (corral.upkeep) is worth on PostgreSQL with autovacuum off.

A fresh database is loaded with ready tasks and never ANALYZEd by hand (as a deployment's would
be, with this project's packaged server config), then worked through in rounds of 100: a
dispatch round, a claim, a batched completion, as benchmarks/claim_cost.py times them. Once
with no upkeep, once with the store's `table_upkeep()` after every `--every` rounds (untimed:
the leader runs it in a thread of its own). Printed: the median ms of each step over the last
`--last` rounds, and the size of the tasks table and its indexes at the end.

    python benchmarks/upkeep.py --tasks 50000 --rounds 400
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import psycopg
from common import backlog, fresh_database

from corral.lifecycle import State
from corral.model import AttemptReport, WorkerInfo
from corral.scheduler.dispatcher import dispatch
from corral.store import open_store
from corral.store.contract import ClaimParams, CompleteParams, InsertParams

BATCH = 100
SIZES = """
SELECT pg_size_pretty(pg_table_size('corral_tasks')),
       pg_size_pretty(pg_indexes_size('corral_tasks'))
"""


def run(tasks: int, rounds: int, every: int, last: int) -> dict[str, object]:
    with fresh_database("postgres") as url:
        store = open_store(url)
        queued = backlog(tasks)
        for first in range(0, tasks, 50_000):
            store.task_insert_many(InsertParams(queued[first : first + 50_000], time.time()))
        now = time.time()
        store.worker_register(WorkerInfo("bench", "host", 1, ("default",), BATCH), now + 3600, now)
        store.ready_groups_refresh(1_000_000)
        costs: dict[str, list[float]] = {"dispatch": [], "claim": [], "complete": []}
        upkept = 0
        for n in range(rounds):
            if every and n % every == every - 1:
                upkept += len(store.table_upkeep())
            now = time.time()
            started = time.perf_counter()
            dispatch(store, now, prefetch=0)
            costs["dispatch"].append(time.perf_counter() - started)
            started = time.perf_counter()
            claimed = store.task_claim(ClaimParams("bench", ["default"], BATCH, now + 60, now))
            costs["claim"].append(time.perf_counter() - started)
            reports = [
                AttemptReport(t.id, t.attempt, "succeeded", State.SUCCEEDED, worker_id="bench",
                              result="null")
                for t in claimed
            ]  # fmt: skip
            started = time.perf_counter()
            store.task_complete_many(CompleteParams(reports, now))
            costs["complete"].append(time.perf_counter() - started)
        store.close()
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute(SIZES).fetchone()
            assert row is not None
            table, indexes = row
    figures: dict[str, object] = {k: statistics.median(v[-last:]) * 1000 for k, v in costs.items()}
    return figures | {"table": table, "indexes": indexes, "upkept": upkept}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=400)
    parser.add_argument("--every", type=int, default=50, help="rounds between two upkeeps")
    parser.add_argument("--last", type=int, default=100, help="rounds the medians are of")
    parser.add_argument("--sittings", type=int, default=2, help="off/on pairs, alternated")
    args = parser.parse_args()
    for _ in range(args.sittings):
        for label, every in (("no upkeep", 0), (f"upkeep every {args.every} rounds", args.every)):
            f = run(args.tasks, args.rounds, every, args.last)
            print(f"{label:26} dispatch {f['dispatch']:.2f} claim {f['claim']:.2f} "
                  f"complete {f['complete']:.2f} ms; tasks table {f['table']}, "
                  f"its indexes {f['indexes']}; tables upkept {f['upkept']}")  # fmt: skip


if __name__ == "__main__":
    main()
