"""Where a SQLite drain's time goes, statement by statement.

Bulk-submits N no-op tasks to a fresh SQLite file, runs `corral run` on it with every SQLite
connection of the process timed (a connection factory around `execute` / `executemany`), and
prints each kind of statement (its first words) with its count, its total time and its time per
call, and the statements per task. The time of `BEGIN IMMEDIATE` is the wait for the write lock;
the time of a statement includes the wait for the GIL when it ends, so compare kinds within one
run and runs within one sitting (these machines are noisy).

    python benchmarks/sql_profile.py --tasks 10000
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def _kind(sql: str) -> str:
    return re.sub(r"\s+", " ", sql).strip()[:72]


def child(out: str, args: list[str]) -> None:
    """Run the corral command line with its SQLite statements timed; write them at exit."""
    totals: dict[str, list[float]] = {}
    lock = threading.Lock()

    def note(kind: str, began: float) -> None:
        spent = time.perf_counter() - began
        with lock:
            entry = totals.setdefault(kind, [0, 0.0])
            entry[0] += 1
            entry[1] += spent

    class Timed(sqlite3.Connection):
        def execute(self, sql: str, *params: Any) -> sqlite3.Cursor:  # type: ignore[override]
            began = time.perf_counter()
            try:
                return super().execute(sql, *params)
            finally:
                note(_kind(sql), began)

        def executemany(self, sql: str, *params: Any) -> sqlite3.Cursor:  # type: ignore[override]
            began = time.perf_counter()
            try:
                return super().executemany(sql, *params)
            finally:
                note("(many) " + _kind(sql), began)

    connect = sqlite3.connect

    def timed_connect(*a: Any, **k: Any) -> sqlite3.Connection:
        return connect(*a, **{**k, "factory": Timed})

    sqlite3.connect = timed_connect  # type: ignore[assignment]

    def dump() -> None:
        with open(out, "w") as f:
            json.dump(totals, f)

    atexit.register(dump)
    sys.argv = ["corral", *args]
    from corral.cli import main

    main()


def run(tasks: int, concurrency: int) -> tuple[float, dict[str, list[float]]]:
    import tempfile

    from common import fresh_database
    from drain import unfinished

    from corral import App

    with fresh_database("sqlite") as url, tempfile.TemporaryDirectory() as folder:
        os.environ["CORRAL_DATABASE_URL"] = url
        from noop_app import app

        app.url = url
        task_type = app.task_type("anoop")
        for first in range(0, tasks, 5000):
            app.submit_many([task_type.prepare(i) for i in range(first, min(first + 5000, tasks))])
        app.close()
        out = f"{folder}/statements.json"
        env = dict(os.environ, PYTHONPATH=str(HERE))
        command = [sys.executable, __file__, "--child", out, "--", "--app", "noop_app:app",
                   "run", "--concurrency", str(concurrency)]  # fmt: skip
        quiet = subprocess.DEVNULL
        proc = subprocess.Popen(command, env=env, stdout=quiet, stderr=quiet)
        watcher = App(url)
        started = time.perf_counter()
        try:
            while unfinished(watcher):  # (works on the code before the read side too)
                if proc.poll() is not None:
                    raise SystemExit("corral run exited early")
                time.sleep(0.05)
            elapsed = time.perf_counter() - started
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
            watcher.close()
        with open(out) as f:
            return elapsed, json.load(f)


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[4:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--top", type=int, default=16, help="statement kinds shown")
    args = parser.parse_args()
    elapsed, totals = run(args.tasks, args.concurrency)
    calls = sum(int(c) for c, _ in totals.values())
    spent = sum(t for _, t in totals.values())
    print(f"sqlite: {args.tasks:,} no-op tasks drained by `corral run` in {elapsed:.2f} s")
    print(f"  {calls:,} statements ({calls / args.tasks:.1f} a task), {spent:.2f} s in SQLite")
    print(f"  {'calls':>8} {'total s':>8} {'us/call':>8}  statement")
    ranked = sorted(totals.items(), key=lambda kv: -kv[1][1])[: args.top]
    for kind, (count, seconds) in ranked:
        print(f"  {int(count):8,} {seconds:8.3f} {seconds / count * 1e6:8.0f}  {kind}")


if __name__ == "__main__":
    main()
