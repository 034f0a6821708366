"""The cost of one prune batch must follow the batch, not the history.

For each backend, with N finished tasks older than the retention in the database (10,000 and
100,000 by default; pass --big 1000000 for the figure of issue 10), time one prune run of 1,000
tasks (with their events), as a median over repeated runs. The ratio big/small should stay near 1.
On PostgreSQL it also prints the size of the task and event tables before and after the runs.

    python benchmarks/prune_cost.py --backend sqlite --backend postgres --small 10000 --big 1000000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from claim_cost import analyze, backlog
from common import fresh_database

from corral.retention import DEFAULT_RETENTION, plan
from corral.store import open_store
from corral.store.contract import InsertParams

BATCH = 1000
FINISH = "UPDATE {t} SET state = 'succeeded', finished_at = {at} WHERE state = 'ready'"
SIZE = "SELECT pg_total_relation_size('corral_tasks'), pg_total_relation_size('corral_events')"


def measure(backend: str, finished: int, rounds: int) -> tuple[float, str]:
    with fresh_database(backend) as url:
        store = open_store(url)
        old = time.time() - DEFAULT_RETENTION - 3600
        for first in range(0, finished, 50_000):
            store.task_insert_many(InsertParams(backlog(min(50_000, finished - first)), old))
        table = "corral_tasks" if backend == "postgres" else "tasks"
        _execute(store, FINISH.format(t=table, at=old))
        store.task_insert_many(InsertParams(backlog(1), time.time()))  # the newest task, kept
        analyze(url)
        size = _size(store) if backend == "postgres" else ""
        costs = []
        for _ in range(rounds):
            cutoffs = plan(store.retention_get(), time.time(), BATCH)
            started = time.perf_counter()
            pruned = store.task_prune(cutoffs)
            costs.append(time.perf_counter() - started)
            assert pruned == BATCH, pruned
        if backend == "postgres":
            size = f"tasks+events bytes before {size}, after {_size(store)}"
        store.close()
        return statistics.median(costs), size


def _execute(store: object, sql: str) -> None:
    with store._write() if hasattr(store, "_write") else store._tx() as tx:  # type: ignore[attr-defined]
        tx.execute(sql)


def _size(store: object) -> str:
    with store._tx() as tx:  # type: ignore[attr-defined]
        tasks, events = tx.execute(SIZE).fetchone()
    return f"{tasks + events:,}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", action="append", choices=["sqlite", "postgres"])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--big", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    for backend in args.backend or ["sqlite"]:
        small, _ = measure(backend, args.small, args.rounds)
        big, size = measure(backend, args.big, args.rounds)
        print(
            f"{backend}: one prune batch of {BATCH}: {small * 1000:.1f} ms with {args.small:,} "
            f"finished, {big * 1000:.1f} ms with {args.big:,}: ratio {big / small:.2f} {size}"
        )


if __name__ == "__main__":
    main()
