"""Pruning PostgreSQL's history: a delete per row (the layout before migration 9) against
dropping whole day partitions (migration 9).

Each layout gets a fresh database with `--days` days of finished history older than the
retention, `--per-day` tasks a day, each with 4 events, an attempt and 2 log lines, and one
recent task that is kept. The pruner then runs until nothing is left to prune. Reported: the
time it took, how many runs, the size of the history tables (events, logs, attempts, all
partitions, indexes included) before and after, and the WAL the pruning wrote (what a replica
replays; a delete per row also leaves dead rows for a vacuum). Before = the prune batch of
migration 7 (the same statements, on unpartitioned tables); after = the store's prune run
(batch, then the days that may go dropped). Layouts alternate, `--rounds` times each, in the
same sitting.

    python benchmarks/partition_prune.py --days 3 --per-day 20000 --rounds 2
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import types
import uuid
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import PG_ADMIN_URL, backlog

from corral.retention import DAY, DEFAULT_RETENTION, day_of, plan
from corral.store import open_store
from corral.store.contract import InsertParams
from corral.store.postgres import queries as q
from corral.store.postgres import retention_queries as rq
from corral.store.postgres.store import PostgresStore, migrations
from corral.store.pruning import prune_batch

BATCH = 1000
SIZE = """
SELECT sum(pg_total_relation_size(oid)) FROM pg_class WHERE relkind = 'r'
  AND (relname LIKE 'corral\\_events%' OR relname LIKE 'corral\\_logs%'
       OR relname LIKE 'corral\\_attempts%')
"""
"""The history tables, or all their partitions, with their indexes and TOAST."""
# The day's tasks finished, with the rest of their history (the submission events exist).
FILL = """
WITH day AS (
    UPDATE corral_tasks SET state = 'succeeded', attempt = 1, created_at = %(at)s,
           first_started_at = %(at)s + 1, started_at = %(at)s + 1, finished_at = %(at)s + 3
    WHERE state = 'ready' RETURNING id),
attempts AS (
    INSERT INTO corral_attempts (task_id, attempt, worker_id, started_at, finished_at, outcome)
    SELECT id, 1, 'w1', %(at)s + 1, %(at)s + 3, 'succeeded' FROM day),
logs AS (
    INSERT INTO corral_logs (task_id, attempt, at, level, message)
    SELECT id, 1, %(at)s + 2, 20, 'loaded ' || n FROM day, generate_series(1, 2) n)
INSERT INTO corral_events (task_id, at, kind, from_state, to_state, attempt)
SELECT id, %(at)s + e.n, e.kind, e.f, e.kind, 1 FROM day,
    (VALUES (1, 'admitted', 'ready'), (2, 'running', 'admitted'), (3, 'succeeded', 'running'))
    AS e(n, kind, f)
"""

V7 = types.ModuleType("retention_queries_v7")
"""Migration 7's prune statements: the same as now, the history deleted row by row."""
V7.__dict__.update({k: v for k, v in vars(rq).items() if k.isupper()})
V7.PRUNE_HISTORY = tuple(
    f"DELETE FROM {table} WHERE task_id = ANY(%(ids)s::bigint[])"
    for table in ("corral_logs", "corral_events", "corral_attempts")
)


def measure(layout: str, days: int, per_day: int) -> dict[str, float]:
    name = f"corral_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        _migrate(url, upto=7 if layout == "before" else None)
        store = open_store(url, migrate=False)
        assert isinstance(store, PostgresStore)
        now = time.time()
        first = day_of(now - DEFAULT_RETENTION) - days * DAY + 3600
        for n in range(days):
            at = first + n * DAY
            if layout == "after":  # the day exists before its rows, as the pruner makes it
                store.task_prune(plan(store.retention_get(), at))
            store.task_insert_many(InsertParams(backlog(per_day), at))
            _execute(url, FILL, {"at": at})
        store.task_insert_many(InsertParams(backlog(1), now))  # kept
        _execute(url, "ANALYZE")
        size_before = _execute(url, SIZE)[0][0]
        wal = _execute(url, "SELECT pg_current_wal_lsn()")[0][0]
        runs, started = 0, time.perf_counter()
        while True:
            runs += 1
            pruned = _prune(store, layout, now)
            if pruned == 0:
                break
        elapsed = time.perf_counter() - started
        size_after = _execute(url, SIZE)[0][0]
        wal_bytes = _execute(url, "SELECT pg_current_wal_lsn() - %s::pg_lsn", (wal,))[0][0]
        left = _execute(url, "SELECT count(*) FROM corral_events")[0][0]
        store.close()
        assert left == 1, left  # the kept task's submission
        return {
            "seconds": elapsed,
            "runs": runs,
            "before": float(size_before),
            "after": float(size_after),
            "wal": float(wal_bytes),
        }
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _prune(store: PostgresStore, layout: str, now: float) -> int:
    cutoffs = plan(store.retention_get(), now, BATCH)
    if layout == "after":
        return store.task_prune(cutoffs)
    with store._tx() as tx:  # migration 7's prune run: the same batch, every row deleted
        slowest = tx.execute(rq.SLOWEST_CURSOR).fetchone()
        common = {"has_consumer": slowest is not None, "cursor_xid": 0, "cursor_id": 0}
        return prune_batch(tx, V7, cutoffs, common, list)


def _migrate(url: str, upto: int | None) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(q.CREATE_MIGRATIONS)
        for version, script in migrations():
            if upto is None or version <= upto:
                conn.execute(script.encode())
                conn.execute(q.RECORD_MIGRATION, (version, time.time()))


def _execute(url: str, statement: str, params: Any = None) -> list[Any]:
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(statement.encode() if params is None else statement, params)
        return cur.fetchall() if cur.description is not None else []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--per-day", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    for _ in range(args.rounds):
        for layout in ("before", "after"):
            r = measure(layout, args.days, args.per_day)
            results[layout].append(r)
            print(
                f"{layout}: pruned {args.days} days x {args.per_day:,} tasks in "
                f"{r['seconds']:.2f} s ({r['runs']:.0f} runs); history tables "
                f"{r['before'] / 2**20:.1f} MiB -> {r['after'] / 2**20:.1f} MiB; "
                f"WAL written {r['wal'] / 2**20:.1f} MiB"
            )
    b = statistics.median(r["seconds"] for r in results["before"])
    a = statistics.median(r["seconds"] for r in results["after"])
    print(f"median prune time: before {b:.2f} s, after {a:.2f} s: after/before {a / b:.3f}")


if __name__ == "__main__":
    main()
