"""The cost of releasing dependents must follow the finished upstreams, not the waiting backlog.

For each backend, with N tasks waiting on a dependency that never ends (1,000 and 100,000 by
default), time one resolver round that releases the 100 dependents of 100 upstream tasks that
just succeeded, as a median over repeated rounds. The small run is the baseline: the ratio
big/small should stay near 1.

    python benchmarks/resolver_cost.py --backend sqlite --backend postgres --small 1000 --big 100000
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from claim_cost import analyze, backlog
from common import fresh_database

from corral.lifecycle import State
from corral.model import AttemptReport, WorkerInfo
from corral.scheduler.resolver import resolve_due
from corral.store import open_store
from corral.store.contract import AdmitParams, ClaimParams, CompleteParams, InsertParams

BATCH = 100


def measure(backend: str, waiting: int, rounds: int) -> float:
    with fresh_database(backend) as url:
        store = open_store(url)
        now = time.time()
        store.worker_register(WorkerInfo("bench", "host", 1, ("default",), BATCH), now + 3600, now)
        blocker = store.task_insert_many(InsertParams(backlog(1), now))[0].id
        store.task_admit_many(AdmitParams([blocker], now))
        store.task_claim(ClaimParams("bench", ["default"], 1, now + 3600, now))  # runs for ever
        blocked = [replace(t, depends_on=(blocker,)) for t in backlog(waiting)]
        for first in range(0, waiting, 50_000):
            store.task_insert_many(InsertParams(blocked[first : first + 50_000], time.time()))
        analyze(url)
        costs = []
        for _ in range(rounds):
            now = time.time()
            ups = [s.id for s in store.task_insert_many(InsertParams(backlog(BATCH), now))]
            pairs = zip(backlog(BATCH), ups, strict=True)
            children = [replace(t, depends_on=(u,)) for t, u in pairs]
            store.task_insert_many(InsertParams(children, now))
            store.task_admit_many(AdmitParams(ups, now))
            claimed = store.task_claim(ClaimParams("bench", ["default"], BATCH, now + 60, now))
            store.task_complete_many(
                CompleteParams(
                    [AttemptReport(c.id, c.attempt, "succeeded", State.SUCCEEDED) for c in claimed],
                    now,
                )
            )
            started = time.perf_counter()
            moved = resolve_due(store, time.time())
            costs.append(time.perf_counter() - started)
            assert moved == BATCH, moved
        store.close()
    return sorted(costs)[len(costs) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", action="append", choices=["sqlite", "postgres"])
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--big", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    for backend in args.backend or ["sqlite", "postgres"]:
        small = measure(backend, args.small, args.rounds)
        big = measure(backend, args.big, args.rounds)
        print(
            f"{backend}: median ms per resolver round releasing {BATCH} dependents "
            f"({args.small:,} vs {args.big:,} tasks waiting on a running one)\n"
            f"  release  {small * 1000:8.2f} ms  {big * 1000:8.2f} ms  ratio {big / small:5.2f}"
        )


if __name__ == "__main__":
    main()
