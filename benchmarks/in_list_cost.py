"""What a partial index's predicate costs SQLite's writes, by how it is worded.

An in-memory table shaped like corral_attempts, N rows, then each row's update as a completion
writes it (finished_at, outcome), one execution a row in one transaction, microseconds a row. The
index on finished_at is partial on the failed outcomes, worded as an IN list of four constants
(migration 0017), as four equalities joined by OR (migration 0023), as an IN list of two, or
absent. SQLite evaluates the predicate of each partial index an update may change, and builds a
constant IN list of more than two values into a lookup table once per execution of the statement.

    python benchmarks/in_list_cost.py --rows 20000
"""

from __future__ import annotations

import argparse
import sqlite3
import time

PREDICATES = {
    "IN list of 4": "outcome IN ('failed', 'lost', 'timed_out', 'stalled')",
    "4 equalities, OR": (
        "outcome = 'failed' OR outcome = 'lost' OR outcome = 'timed_out' OR outcome = 'stalled'"
    ),
    "IN list of 2": "outcome IN ('failed', 'lost')",
    "no index": None,
}


def per_row(predicate: str | None, rows: int) -> float:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute(
        "CREATE TABLE a (task_id INTEGER, attempt INTEGER, started_at REAL, finished_at REAL, "
        "outcome TEXT, error TEXT, PRIMARY KEY (task_id, attempt)) WITHOUT ROWID"
    )
    if predicate is not None:
        conn.execute(f"CREATE INDEX a_failed ON a (finished_at) WHERE {predicate}")
    conn.executemany(
        "INSERT INTO a VALUES (?, 1, 1.0, NULL, NULL, NULL)", [(i,) for i in range(rows)]
    )
    conn.execute("BEGIN")
    began = time.perf_counter()
    conn.executemany(
        "UPDATE a SET finished_at = ?, outcome = ?, error = NULL WHERE task_id = ? AND attempt = 1",
        [(2.0, "succeeded", i) for i in range(rows)],
    )
    spent = time.perf_counter() - began
    conn.execute("COMMIT")
    conn.close()
    return spent / rows * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3, help="the best is shown")
    args = parser.parse_args()
    version = sqlite3.sqlite_version
    print(f"sqlite {version}: {args.rows:,} updates, us a row, best of {args.rounds}")
    for name, predicate in PREDICATES.items():
        best = min(per_row(predicate, args.rows) for _ in range(args.rounds))
        print(f"  {name:18} {best:6.2f}")


if __name__ == "__main__":
    main()
