"""Drain rate: how fast corral empties a queue of no-op tasks.

Bulk-submits N no-op tasks to a fresh database, then starts corral and times how long until every
task succeeded. `--mode run` is `corral run` (scheduler and worker in one process, plus
`--processes - 1` extra worker processes); `--mode split` is one `corral scheduler` and
`--processes` `corral worker` processes. The baseline, run in the same sitting on the same
backend, is the home-made queue corral replaces: one claim and one completion per task, a
transaction each. Figures are ratios against it, because these machines are noisy.

    python benchmarks/drain.py --backend sqlite --tasks 10000 --mode run
    python benchmarks/drain.py --backend postgres --tasks 20000 --mode split --processes 2
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import fresh_database

from corral import App
from corral.lifecycle import State
from corral.model import TaskQuery


def submit_noops(url: str, count: int, task: str) -> float:
    os.environ["CORRAL_DATABASE_URL"] = url
    from noop_app import app

    app.url = url
    task_type = app.task_type(task)
    started = time.perf_counter()
    for first in range(0, count, 5000):
        app.submit_many([task_type.prepare(i) for i in range(first, min(first + 5000, count))])
    elapsed = time.perf_counter() - started
    app.close()
    return elapsed


def unfinished(app: App) -> int:
    """Tasks not yet ended, counted from each unfinished state's partial index (the backlog),
    so the polling doesn't load the database it measures. (The code before the read side,
    measured with this script for a baseline in the same sitting, counts with a scan.)"""
    if hasattr(app.store, "task_count_unfinished"):
        return sum(c.count for c in app.store.task_count_unfinished())
    ended = {"succeeded", "dead", "cancelled", "upstream_failed"}
    stats = app.store.group_stats()  # type: ignore[attr-defined]
    return sum(n for g in stats for state, n in g.counts.items() if state not in ended)


def corral_commands(mode: str, processes: int, concurrency: int) -> list[list[str]]:
    base = [sys.executable, "-m", "corral", "--app", "noop_app:app"]
    if mode == "run":
        return [[*base, "run", "--concurrency", str(concurrency), "--processes", str(processes)]]
    workers = [[*base, "worker", "--concurrency", str(concurrency)] for _ in range(processes)]
    return [[*base, "scheduler"], *workers]


def drain_with_corral(
    url: str, count: int, mode: str, processes: int, concurrency: int
) -> tuple[float, float]:
    """Seconds from start-up to the last success, and the steady rate once tasks flow."""
    env = dict(os.environ, CORRAL_DATABASE_URL=url, PYTHONPATH=str(HERE))
    app = App(url)
    started = time.perf_counter()
    procs = [
        subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for cmd in corral_commands(mode, processes, concurrency)
    ]
    first: tuple[float, int] | None = None
    try:
        while (done := count - unfinished(app)) < count:
            if first is None and done > 0:
                first = (time.perf_counter(), done)
            for proc in procs:
                if proc.poll() is not None:
                    err = proc.stderr.read().decode()[-2000:] if proc.stderr else ""
                    raise SystemExit(f"a corral process exited early: {err}")
            time.sleep(0.05)
        end = time.perf_counter()
        flowing_since, flowed = first or (started, 0)
        return end - started, (count - flowed) / (end - flowing_since)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=60)
        left = app.store.task_list(TaskQuery(states=(State.READY,), limit=1))
        app.close()
        assert not left, "tasks left undrained"


def drain_home_made(url: str, count: int) -> float:
    """The naive queue on the same backend: one claim and one completion per task."""
    if url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(url.split("sqlite:///", 1)[1] + ".naive", isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        marker, begin = "?", "BEGIN IMMEDIATE"
    else:
        import psycopg

        conn = psycopg.connect(url, autocommit=True)  # type: ignore[assignment]
        marker, begin = "%s", "BEGIN"
    conn.execute(
        "CREATE TABLE naive_jobs (id INTEGER PRIMARY KEY, state TEXT, arg INTEGER, result INTEGER)"
    )
    conn.execute("CREATE INDEX naive_jobs_state ON naive_jobs (state, id)")
    for i in range(count):
        conn.execute(f"INSERT INTO naive_jobs VALUES ({marker}, 'ready', {marker}, NULL)", (i, i))
    lock = "" if marker == "?" else " FOR UPDATE SKIP LOCKED"
    started = time.perf_counter()
    while True:
        conn.execute(begin)
        row = conn.execute(
            "UPDATE naive_jobs SET state = 'running' WHERE id = (SELECT id FROM naive_jobs WHERE "
            f"state = 'ready' ORDER BY id LIMIT 1{lock}) RETURNING id, arg"
        ).fetchone()
        conn.execute("COMMIT")
        if row is None:
            break
        conn.execute(begin)
        conn.execute(
            f"UPDATE naive_jobs SET state = 'done', result = {marker} WHERE id = {marker}",
            (row[1], row[0]),
        )
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--mode", choices=["run", "split"], default="run")
    parser.add_argument("--processes", type=int, default=1, help="worker processes")
    parser.add_argument("--concurrency", type=int, default=64, help="tasks at once per worker")
    parser.add_argument(
        "--task",
        default="anoop",
        choices=["noop", "anoop"],
        help="noop: thread executor; anoop: async executor",
    )
    args = parser.parse_args()
    with fresh_database(args.backend) as url:
        baseline = drain_home_made(url, min(args.tasks, 5000))
        base_rate = min(args.tasks, 5000) / baseline
        submit_seconds = submit_noops(url, args.tasks, args.task)
        drain_seconds, steady = drain_with_corral(
            url, args.tasks, args.mode, args.processes, args.concurrency
        )
    rate = args.tasks / drain_seconds
    print(
        f"{args.backend}: {args.tasks:,} {args.task} tasks, mode {args.mode}, "
        f"{args.processes} worker process(es) x {args.concurrency}"
    )
    print(f"  bulk submit          {args.tasks / submit_seconds:10,.0f} tasks/s")
    print(f"  corral drain         {rate:10,.0f} tasks/s  ({drain_seconds:.2f} s incl. start-up)")
    print(f"  corral steady drain  {steady:10,.0f} tasks/s  (from the first success on)")
    print(f"  home-made baseline   {base_rate:10,.0f} tasks/s  (a claim + a completion per task)")
    print(f"  ratio corral/baseline {rate / base_rate:9.2f}  (steady: {steady / base_rate:.2f})")


if __name__ == "__main__":
    main()
