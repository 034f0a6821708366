"""What one change of state costs SQLite, by the indexes it touches.

Bulk-submits N no-op tasks to a fresh SQLite file made by this checkout's corral, then times the
three UPDATEs of a task's happy path, one row per statement, all N in one transaction each: admit
(ready -> admitted), claim (-> running) and complete (-> succeeded), in microseconds per row.
`--drop INDEX` (repeatable) drops an index first, to see what it costs. An UPDATE looks at every
index whose columns or partial predicate it writes, so an index partial on `state` costs every
change of state, not only the ones that write it an entry.

    python benchmarks/transition_sql.py --tasks 20000
    python benchmarks/transition_sql.py --drop corral_tasks_ended_state --drop corral_tasks_started
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import fresh_database

ADMIT = "UPDATE {t} SET state = 'admitted', admitted_at = ? WHERE id = ? AND state = 'ready'"
CLAIM = (
    "UPDATE {t} SET state = 'running', attempt = attempt + 1, worker_id = 'w', "
    "lease_expires_at = ?, started_at = ?, first_started_at = coalesce(first_started_at, ?) "
    "WHERE id = ?"
)
COMPLETE = (
    "UPDATE {t} SET state = 'succeeded', result = '1', worker_id = NULL, "
    "lease_expires_at = NULL, finished_at = ? WHERE id = ? AND state = 'running'"
)


def per_row(conn: sqlite3.Connection, sql: str, rows: list[tuple[float | int, ...]]) -> float:
    conn.execute("BEGIN IMMEDIATE")
    began = time.perf_counter()
    for row in rows:
        conn.execute(sql, row)
    spent = time.perf_counter() - began
    conn.execute("COMMIT")
    return spent / len(rows) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3, help="fresh files; the best is shown")
    parser.add_argument("--drop", action="append", default=[], metavar="INDEX")
    args = parser.parse_args()
    best = [float("inf")] * 3
    for _ in range(args.rounds):
        with fresh_database("sqlite") as url:
            os.environ["CORRAL_DATABASE_URL"] = url
            from noop_app import app

            app.url = url
            task_type = app.task_type("anoop")
            for first in range(0, args.tasks, 5000):
                count = min(5000, args.tasks - first)
                app.submit_many([task_type.prepare(i) for i in range(count)])
            app.close()
            conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
            names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            table = "corral_tasks" if "corral_tasks" in names else "tasks"
            for index in args.drop:
                conn.execute(f"DROP INDEX {index}")
            ids = [r[0] for r in conn.execute(f"SELECT id FROM {table} ORDER BY id")]
            figures = (
                per_row(conn, ADMIT.format(t=table), [(1.0, i) for i in ids]),
                per_row(conn, CLAIM.format(t=table), [(9.0, 2.0, 2.0, i) for i in ids]),
                per_row(conn, COMPLETE.format(t=table), [(3.0, i) for i in ids]),
            )
            conn.close()
            best = [min(b, f) for b, f in zip(best, figures, strict=True)]
    dropped = f", without {', '.join(args.drop)}" if args.drop else ""
    print(f"sqlite: {args.tasks:,} tasks, us per row, best of {args.rounds}{dropped}")
    print(f"  admit {best[0]:6.1f}   claim {best[1]:6.1f}   complete {best[2]:6.1f}")


if __name__ == "__main__":
    main()
