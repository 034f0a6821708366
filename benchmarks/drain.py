"""Drain rate: how fast `corral run` empties a queue of no-op tasks on SQLite.

Bulk-submits N no-op tasks to a fresh database, then starts `corral run` (scheduler and worker in
one process; `--processes` adds worker processes) and times how long until every task succeeded.
The baseline, run in the same sitting, is the home-made queue that corral replaces: one
`UPDATE ... RETURNING` claim and one completion per task, a transaction each, on the same SQLite
file settings. Figures are ratios against it, because these machines are noisy.

    python benchmarks/drain.py --tasks 10000 --processes 1
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def submit_noops(url: str, count: int, task: str) -> float:
    os.environ["CORRAL_DATABASE_URL"] = url
    import corral
    from noop_app import app

    started = time.perf_counter()
    batch = 5000
    for first in range(0, count, batch):
        type_ = app.task_type(task)
        app.submit_many([type_.prepare(i) for i in range(first, min(first + batch, count))])
    elapsed = time.perf_counter() - started
    app.close()
    del corral
    return elapsed


def count_done(path: str) -> int:
    conn = sqlite3.connect(path, timeout=30)
    try:
        return int(conn.execute("SELECT count(*) FROM tasks WHERE state = 'succeeded'").fetchone()[0])
    finally:
        conn.close()


def drain_with_corral(path: str, count: int, processes: int, concurrency: int) -> float:
    env = dict(os.environ, CORRAL_DATABASE_URL=f"sqlite:///{path}", PYTHONPATH=str(HERE))
    command = [sys.executable, "-m", "corral", "--app", "noop_app:app", "run",
               "--concurrency", str(concurrency), "--processes", str(processes)]
    started = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while count_done(path) < count:
            if proc.poll() is not None:
                raise SystemExit(f"corral run exited early: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.05)
        return time.perf_counter() - started
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def drain_home_made(path: str, count: int) -> float:
    """The naive queue: a row per task, claimed and completed one transaction at a time."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("CREATE TABLE jobs (id INTEGER PRIMARY KEY, state TEXT, arg INTEGER, result INTEGER)")
    conn.execute("CREATE INDEX jobs_state ON jobs (state, id)")
    conn.executemany("INSERT INTO jobs (state, arg) VALUES ('ready', ?)", [(i,) for i in range(count)])
    started = time.perf_counter()
    while True:
        conn.execute("BEGIN IMMEDIATE")
        row = conn.execute(
            "UPDATE jobs SET state = 'running' WHERE id = (SELECT id FROM jobs WHERE state = 'ready' "
            "ORDER BY id LIMIT 1) RETURNING id, arg"
        ).fetchone()
        conn.execute("COMMIT")
        if row is None:
            break
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE jobs SET state = 'done', result = ? WHERE id = ?", (row[1], row[0]))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--processes", type=int, default=1, help="worker processes of corral run")
    parser.add_argument("--concurrency", type=int, default=64, help="tasks at once per process")
    parser.add_argument("--task", default="anoop", choices=["noop", "anoop"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base_path = f"{tmp}/baseline.db"
        baseline = drain_home_made(base_path, args.tasks)
        path = f"{tmp}/corral.db"
        submit_seconds = submit_noops(f"sqlite:///{path}", args.tasks, args.task)
        drain_seconds = drain_with_corral(path, args.tasks, args.processes, args.concurrency)
    rate = args.tasks / drain_seconds
    base_rate = args.tasks / baseline
    print(f"tasks: {args.tasks} {args.task} no-ops, corral run --processes {args.processes} "
          f"--concurrency {args.concurrency}")
    print(f"bulk submit:          {args.tasks / submit_seconds:10,.0f} tasks/s")
    print(f"corral drain:         {rate:10,.0f} tasks/s  ({drain_seconds:.2f} s, incl. start-up)")
    print(f"home-made baseline:   {base_rate:10,.0f} tasks/s  (claim+complete per task, 1 thread)")
    print(f"ratio corral/baseline: {rate / base_rate:.2f}")


if __name__ == "__main__":
    main()
