"""One-at-a-time submit: what a producer that submits each task as it comes pays per call, beside
the floor on the same server in the same sitting: a bare loop of durable one-row INSERT commits
(PostgreSQL: autocommitted INSERTs with synchronous_commit on; SQLite: INSERT + COMMIT in WAL
mode, synchronous NORMAL, as corral opens it). The ratio corral/bare is the figure; rounds
alternate the two.

    python benchmarks/submit_one.py --backend postgres --tasks 2000 --rounds 3
    python benchmarks/submit_one.py --backend sqlite --tasks 5000
    python benchmarks/submit_one.py --backend postgres --dedup   # each task with its own key

Run it with an older checkout's code (PYTHONPATH=<checkout>/src) for that code's figure.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import fresh_database

import corral


def bare(url: str, count: int) -> float:
    """Submits a second of the floor: durable one-row INSERT commits."""
    if url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(url.split("sqlite:///", 1)[1] + ".bare", isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("CREATE TABLE IF NOT EXISTS bare (id INTEGER PRIMARY KEY, args TEXT)")
        began = time.perf_counter()
        for n in range(count):
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO bare (args) VALUES (?)", (f"[{n}]",))
            conn.execute("COMMIT")
        spent = time.perf_counter() - began
        conn.close()
        return count / spent
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = on")
        conn.execute("CREATE TABLE IF NOT EXISTS bare (id bigserial PRIMARY KEY, args text)")
        began = time.perf_counter()
        for n in range(count):
            conn.execute("INSERT INTO bare (args) VALUES (%s)", (f"[{n}]",))
        spent = time.perf_counter() - began
    return count / spent


def with_corral(url: str, count: int, dedup: bool = False) -> float:
    """Submits a second through `TaskType.submit`, one call a task (with `dedup`, each under a
    dedup key of its own, as a producer that must not submit a piece of work twice)."""
    app = corral.App(url)

    @app.task(name="noop")
    def noop(ctx: corral.Context, n: int) -> int:
        return n

    noop.submit(-1)  # the store is open and the schema checked
    run = uuid.uuid4().hex[:8]
    began = time.perf_counter()
    if dedup:
        for n in range(count):
            noop.submit(n, dedup_key=f"{run}-{n}")
    else:
        for n in range(count):
            noop.submit(n)
    spent = time.perf_counter() - began
    app.close()
    return count / spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dedup", action="store_true", help="each task with a dedup key")
    args = parser.parse_args()
    rates: dict[str, list[float]] = {"bare": [], "corral": []}
    with fresh_database(args.backend) as url:
        for round_ in range(args.rounds):
            order = ("bare", "corral") if round_ % 2 == 0 else ("corral", "bare")
            for kind in order:
                if kind == "bare":
                    rates[kind].append(bare(url, args.tasks))
                else:
                    rates[kind].append(with_corral(url, args.tasks, args.dedup))
    bare_rate, corral_rate = (statistics.median(rates[k]) for k in ("bare", "corral"))
    keys = " with dedup keys" if args.dedup else ""
    rounds = f"median of {args.rounds} rounds"
    print(f"{args.backend}: {args.tasks:,} one-at-a-time submits{keys}, {rounds}")
    print(f"  bare durable INSERT commits {bare_rate:10,.0f} /s")
    print(f"  corral submit               {corral_rate:10,.0f} /s")
    print(f"  ratio corral/bare           {corral_rate / bare_rate:10.2f}")


if __name__ == "__main__":
    main()
