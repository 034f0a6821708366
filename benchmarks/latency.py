"""Submit-to-start latency on an idle system, and submit throughput.

Latency: with a scheduler and one worker running and nothing else queued, submit one no-op task,
wait for it to finish, repeat; the latency of a task is its first start minus its submission
(both stamped by the store's callers on this one host). Throughput: tasks submitted one call at a
time, and in bulk (`submit_many`, one transaction per 5,000). The baseline, measured in the same
sitting, is a bare INSERT of one row per transaction on the same backend.

    python benchmarks/latency.py --backend sqlite --backend postgres --samples 300
    python benchmarks/latency.py --backend sqlite --backend postgres --fast-lane-ab 4

`--fast-lane-ab N`: N rounds alternating the scheduler with and without its fast lane
(`corral scheduler --no-fast-lane`), the latency of each, in one sitting. The processes import
corral as this one does (a PYTHONPATH given to it is passed on).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import fresh_database, percentile

from corral.lifecycle import TERMINAL


def latency(url: str, samples: int, fast_lane: bool = True) -> list[float]:
    path = os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(HERE)) if p)
    env = dict(os.environ, CORRAL_DATABASE_URL=url, PYTHONPATH=path)
    base = [sys.executable, "-m", "corral", "--app", "noop_app:app"]
    lane = [] if fast_lane else ["--no-fast-lane"]
    procs = [
        subprocess.Popen([*base, "scheduler", *lane], env=env, stderr=subprocess.DEVNULL),
        subprocess.Popen(
            [*base, "worker", "--concurrency", "8"], env=env, stderr=subprocess.DEVNULL
        ),
    ]
    os.environ["CORRAL_DATABASE_URL"] = url
    from noop_app import anoop, app

    app.url = url
    try:
        warm = anoop.submit(-1)
        app.wait(warm, timeout=30, poll=0.01)
        waits = []
        for i in range(samples):
            task_id = anoop.submit(i)
            while (record := app.get(task_id)).state not in TERMINAL:
                time.sleep(0.002)
            assert record.wait_seconds is not None
            waits.append(record.wait_seconds)
            time.sleep(0.01)  # idle between samples
        return waits
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=30)
        app.close()


def submit_rates(url: str, count: int) -> tuple[float, float]:
    from noop_app import anoop, app

    app.url = url
    app.close()
    started = time.perf_counter()
    for i in range(count):
        anoop.submit(i)
    one_by_one = count / (time.perf_counter() - started)
    bulk_count = count * 10
    started = time.perf_counter()
    for first in range(0, bulk_count, 5000):
        app.submit_many([anoop.prepare(i) for i in range(first, min(first + 5000, bulk_count))])
    bulk = bulk_count / (time.perf_counter() - started)
    app.close()
    return one_by_one, bulk


def bare_insert_rate(url: str, count: int) -> float:
    if url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(url.split("sqlite:///", 1)[1] + ".bare", isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        marker = "?"
    else:
        import psycopg

        conn = psycopg.connect(url, autocommit=True)  # type: ignore[assignment]
        marker = "%s"
    conn.execute("CREATE TABLE bare_jobs (id SERIAL PRIMARY KEY, payload TEXT)")
    started = time.perf_counter()
    for i in range(count):
        conn.execute(f"INSERT INTO bare_jobs (payload) VALUES ({marker})", (f"[{i}]",))
    rate = count / (time.perf_counter() - started)
    conn.close()
    return rate


def fast_lane_ab(backends: list[str], samples: int, rounds: int) -> None:
    """Rounds alternating the fast lane off and on; p50 and p99 of each round, in ms."""
    for backend in backends:
        figures: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
        for round_ in range(rounds):
            for lane in (False, True) if round_ % 2 == 0 else (True, False):
                with fresh_database(backend) as url:
                    waits = latency(url, samples, fast_lane=lane)
                figures[lane].append((percentile(waits, 50) * 1000, percentile(waits, 99) * 1000))
        for lane in (False, True):
            runs = ", ".join(f"{p50:.2f}/{p99:.1f}" for p50, p99 in figures[lane])
            p50 = statistics.median(f[0] for f in figures[lane])
            p99 = statistics.median(f[1] for f in figures[lane])
            label = "fast lane" if lane else "no fast lane"
            print(f"{backend} {label:12s}: p50 {p50:.2f} ms, p99 {p99:.1f} ms")
            print(f"  p50/p99 by round: {runs}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", action="append", choices=["sqlite", "postgres"])
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--submits", type=int, default=2000)
    parser.add_argument("--fast-lane-ab", type=int, default=0, metavar="ROUNDS")
    args = parser.parse_args()
    if args.fast_lane_ab:
        fast_lane_ab(args.backend or ["sqlite", "postgres"], args.samples, args.fast_lane_ab)
        return
    for backend in args.backend or ["sqlite", "postgres"]:
        with fresh_database(backend) as url:
            waits = latency(url, args.samples)
            one, bulk = submit_rates(url, args.submits)
            bare = bare_insert_rate(url, args.submits)
        print(
            f"{backend}: idle submit-to-start over {len(waits)} tasks: "
            f"p50 {percentile(waits, 50) * 1000:.1f} ms, p99 {percentile(waits, 99) * 1000:.1f} ms"
        )
        print(
            f"  submit one at a time {one:10,.0f} tasks/s  (ratio to a bare INSERT per "
            f"transaction, {bare:,.0f}/s: {one / bare:.2f})"
        )
        print(f"  submit_many          {bulk:10,.0f} tasks/s  (ratio {bulk / bare:.2f})")


if __name__ == "__main__":
    main()
