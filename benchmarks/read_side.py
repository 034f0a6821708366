"""The read side's cost must not grow with history.

For each backend, fill a database with N finished tasks (10,000, then 2,000,000: bulk SQL, as
fast as the backend takes it) in 50 history groups, plus the same unfinished set every time
(2,000 ready tasks in 20 groups, 40 of them admitted and 40 running, and 1,000 tasks finished in
the last minutes, so that the waits window holds the same rows). Then time, as medians of
repeated calls: the group figures, the pool figures, a filtered task page (one history group:
the first page and a deep keyset page half-way into history), a page of the ready tasks, a page
in the finished order, and one task's detail. The figure that matters is the ratio 2M / 10k,
which should stay near 1. With --explain, print each page's plan on the big database.

    python benchmarks/read_side.py --backend sqlite --backend postgres --small 10000 --big 2000000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import fresh_database

from corral.clock import ManualClock
from corral.codec import dumps
from corral.lifecycle import State
from corral.model import NewTask, WorkerInfo
from corral.read_model import TaskFilter
from corral.readside import ReadSide, encode_cursor
from corral.store import Store, open_store
from corral.store.contract import AdmitParams, ClaimParams, InsertParams

HISTORY_GROUPS = 50
LIVE_GROUPS = 20
READY = 2000
RECENT = 1000
NO_AGING = dumps({"kind": "none"})
BACKOFF = dumps({"base": 1.0, "cap": 300.0, "factor": 2.0, "jitter": 0.0})

COLUMNS = ("name, pool, group_name, state, priority, level, aging, args, kwargs, max_retries, "
           "backoff, on_timeout, attempt, created_at, enqueued_at, ready_at, first_started_at, "
           "started_at, finished_at")  # fmt: skip


def history_sql(backend: str) -> str:
    """Insert finished tasks 1..:n: the oldest a day back and more, the last RECENT just now."""
    values = """'bench.hist', 'default', 'h' || mod(i, {g}), 'succeeded', 0, 0, t.aging, '[]',
        '{{}}',
        0, t.backoff, 'retry', 1, {at} - 2, {at} - 2, {at} - 2, {at} - 1, {at} - 1, {at}"""
    at = "(CASE WHEN i > :n - {r} THEN :now - (:n - i) * 0.1 ELSE :now - 86400 - (:n - i) END)"
    at = at.format(r=RECENT)
    if backend == "postgres":
        at = at.replace(":now", "%(now)s").replace(":n", "%(n)s")
        body = values.format(g=HISTORY_GROUPS, at=at)
        return (f"INSERT INTO corral_tasks ({COLUMNS}) SELECT {body} "
                "FROM generate_series(1, %(n)s) AS i, (SELECT aging, backoff FROM corral_tasks "
                "LIMIT 1) AS t")  # fmt: skip
    body = values.format(g=HISTORY_GROUPS, at=at)
    return (f"WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < :n) "
            f"INSERT INTO corral_tasks ({COLUMNS}) SELECT {body} FROM seq, (SELECT aging, backoff "
            "FROM corral_tasks LIMIT 1) AS t")  # fmt: skip


def execute(url: str, sql: str, params: dict[str, Any] | None = None) -> list[Any]:
    if url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(url.split("sqlite:///", 1)[1]) as conn:
            return conn.execute(sql, params or {}).fetchall()
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(sql, params)
        return cur.fetchall() if cur.description else []


def task(group: str) -> NewTask:
    return NewTask(name="bench.live", pool="default", group=group, priority=0, level=0,
                   aging=NO_AGING, args="[]", kwargs="{}", max_retries=0, backoff=BACKOFF,
                   max_runtime=None, on_timeout="retry")  # fmt: skip


def fill(url: str, store: Store, backend: str, finished: int, now: float) -> None:
    live = [task(f"g{i % LIVE_GROUPS}") for i in range(READY)]
    ids = [s.id for s in store.task_insert_many(InsertParams(live, now - 5))]
    execute(url, history_sql(backend), {"n": finished, "now": now})
    store.worker_register(WorkerInfo("bench", "host", 1, ("default",), 100), now + 3600, now)
    store.task_admit_many(AdmitParams(ids[:80], now - 3))
    store.task_claim(ClaimParams("bench", ["default"], 40, now + 3600, now - 2))
    execute(url, "ANALYZE")  # the planner's statistics after a bulk load, as a vacuum would


def median_ms(call: Callable[[], object], rounds: int) -> float:
    call()
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def measure(backend: str, finished: int, rounds: int, explain: bool) -> dict[str, float]:
    with fresh_database(backend) as url:
        store = open_store(url)
        now = time.time()
        fill(url, store, backend, finished, now)
        reads = ReadSide(store, ManualClock(now))
        one_group = TaskFilter(group="h7")
        deep = encode_cursor("created", None, READY + finished // 2)
        some_task = READY + finished // 3
        cases: dict[str, Callable[[], object]] = {
            "group figures": reads.groups,
            "pool figures": reads.pools,
            "group page, first": lambda: reads.tasks(one_group, limit=50),
            "group page, deep": lambda: reads.tasks(one_group, after=deep, limit=50),
            "ready page": lambda: reads.tasks(TaskFilter(states=(State.READY,)), limit=50),
            "finished order page": lambda: reads.tasks(order="finished", limit=50),
            "task detail": lambda: reads.task(some_task),
        }
        figures = {name: median_ms(call, rounds) for name, call in cases.items()}
        if explain:
            print_plans(url, backend, store)
        store.close()
        return figures


def print_plans(url: str, backend: str, store: Store) -> None:
    rq: Any = store.read_queries  # type: ignore[attr-defined]
    params = {"states": None, "name": None, "group_name": None, "workflow_id": None, "pool": None,
              "created_from": None, "created_until": None, "finished_from": None,
              "finished_until": None, "after_id": 10**12, "after_key": 1e12, "limit": 51,
              "since": 0.0, **{f"want_{s}": s == State.READY for s in State}}  # fmt: skip
    statements = {name: getattr(rq, name) for name in (
        "PAGE_BY_GROUP", "PAGE_BY_NAME", "PAGE_BY_WORKFLOW", "PAGE_BY_FINISHED",
        "COUNT_UNFINISHED", "RECENT_STARTS")}  # fmt: skip
    statements["PAGE_BY_STATE"] = rq.PAGE_BY_STATE
    for name, sql in statements.items():
        p = dict(params)
        if name == "PAGE_BY_NAME":
            p["name"] = "bench.hist"
        if name == "PAGE_BY_GROUP":
            p["group_name"] = "h7"
        if name == "PAGE_BY_WORKFLOW":
            p["workflow_id"] = 3
        if name == "PAGE_BY_STATE":
            p["states"] = rq.encode_list(["ready"])
        prefix = "EXPLAIN QUERY PLAN " if backend == "sqlite" else "EXPLAIN "
        plan = execute(url, prefix + sql, p)
        lines = [str(row[-1] if backend == "sqlite" else row[0]) for row in plan]
        print(f"  {backend} {name}:")
        for line in lines:
            print(f"      {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", action="append", choices=["sqlite", "postgres"])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--big", type=int, default=2_000_000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--explain", action="store_true", help="print the plans (big database)")
    args = parser.parse_args()
    for backend in args.backend or ["sqlite"]:
        small = measure(backend, args.small, args.rounds, False)
        big = measure(backend, args.big, args.rounds, args.explain)
        print(f"{backend}: median ms with {args.small:,} vs {args.big:,} finished tasks")
        for name in small:
            ratio = big[name] / small[name]
            print(f"  {name:<22} {small[name]:8.2f} {big[name]:8.2f}   ratio {ratio:5.2f}")


if __name__ == "__main__":
    main()
