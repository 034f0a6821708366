"""The measuring loop every driver of `benchmarks/peers.py` shares (no library imported here).

A driver describes its library with a `Library`: how to get a fresh, empty queue, submit one
no-op task, submit many, count the finished no-ops, submit the stamping task (its body notes
`time.time()` when it starts) and read that stamp back, and the commands that start the workers.
`measure` then takes, in this order, each on a fresh queue:

1. one-at-a-time submit: `submits` calls, no worker running, after one untimed call (every
   library's client opens its connection, and corral its store, on the first call: a producer
   pays that once, not per task);
2. bulk submit: `tasks` no-ops in the library's fastest bulk path, no worker running;
3. drain: the workers started on those `tasks`, timed from the spawn to the last completion
   (start-up included), and the steady rate from the first completion on;
4. start-up: one stamping task queued, then the workers spawned; the figure is the task body's
   stamp minus the wall time of the spawn;
5. idle latency: the same workers, idle; `samples` times, stamp the time, submit one stamping
   task, wait for its stamp; the latency is the body's stamp minus the submit's.

It prints one JSON line of figures.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Library:
    reset: Callable[[], None]
    submit_one: Callable[[int], None]
    submit_bulk: Callable[[int], None]
    done: Callable[[], int]
    submit_stamp: Callable[[int], object]
    stamp: Callable[[object], float | None]
    workers: Callable[[], list[list[str]]]
    env: Callable[[], dict[str, str]]
    close: Callable[[], None] = lambda: None


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def spawn(lib: Library) -> list[subprocess.Popen]:
    """The workers, their output to a temporary file (a pipe nobody reads would fill and block
    a library that logs every task)."""
    procs = []
    for cmd in lib.workers():
        log = tempfile.TemporaryFile()  # noqa: SIM115 (closed with the process)
        procs.append(subprocess.Popen(cmd, env=lib.env(), stdout=log, stderr=log))
        procs[-1].log = log  # type: ignore[attr-defined]
    return procs


def stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.log.close()  # type: ignore[attr-defined]


def check(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is not None:
            proc.log.seek(0)  # type: ignore[attr-defined]
            err = proc.log.read().decode()[-2000:]  # type: ignore[attr-defined]
            raise SystemExit(f"a worker exited early: {err}")


def wait_stamp(lib: Library, handle: object, procs: list[subprocess.Popen]) -> float:
    deadline = time.time() + 60
    while (stamp := lib.stamp(handle)) is None:
        if time.time() > deadline:
            check(procs)
            raise SystemExit("no stamp within 60 s")
        time.sleep(0.001)
    return stamp


def bulk(lib: Library, tasks: int) -> float:
    """Phase 2 alone (`benchmarks/bulk_submit.py`): a fresh queue, then `tasks` in bulk."""
    lib.reset()
    began = time.perf_counter()
    lib.submit_bulk(tasks)
    return tasks / (time.perf_counter() - began)


def measure(lib: Library, tasks: int, submits: int, samples: int) -> dict[str, float]:
    figures: dict[str, float] = {}
    lib.reset()
    lib.submit_one(-1)  # connections opened, as in a producer that has been running
    began = time.perf_counter()
    for i in range(submits):
        lib.submit_one(i)
    figures["one_at_a_time"] = submits / (time.perf_counter() - began)

    lib.reset()
    began = time.perf_counter()
    lib.submit_bulk(tasks)
    figures["bulk"] = tasks / (time.perf_counter() - began)
    began = time.perf_counter()
    procs = spawn(lib)
    first: tuple[float, int] | None = None
    try:
        while (done := lib.done()) < tasks:
            if time.perf_counter() - began > 900:
                raise SystemExit(f"drain: {done} of {tasks} done after 900 s")
            if first is None and done > 0:
                first = (time.perf_counter(), done)
            check(procs)
            time.sleep(0.02)
        end = time.perf_counter()
    finally:
        stop(procs)
    since, flowed = first or (began, 0)
    figures["drain"] = tasks / (end - began)
    figures["drain_steady"] = (tasks - flowed) / (end - since)

    lib.reset()
    handle = lib.submit_stamp(-1)
    spawned = time.time()
    procs = spawn(lib)
    try:
        figures["startup_s"] = wait_stamp(lib, handle, procs) - spawned
        time.sleep(1.0)  # every worker process up and idle
        waits = []
        for i in range(samples):
            submitted = time.time()
            handle = lib.submit_stamp(i)
            waits.append(wait_stamp(lib, handle, procs) - submitted)
            time.sleep(0.01)  # idle between samples
    finally:
        stop(procs)
    figures["p50_ms"] = percentile(waits, 50) * 1000
    figures["p99_ms"] = percentile(waits, 99) * 1000
    print(json.dumps(figures))
    return figures


def main(make: Callable[[argparse.Namespace], Library], doc: str | None) -> None:
    """Parse the flags `peers.py` passes, build the library, measure it."""

    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--submits", type=int, default=2000)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8, help="tasks at once per process")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--backend", default="postgres", help="corral only: sqlite or postgres")
    parser.add_argument("--bulk-only", action="store_true", help="phase 2 alone, `--repeat` times")
    parser.add_argument("--repeat", type=int, default=1, help="with --bulk-only")
    args = parser.parse_args()
    lib = make(args)
    try:
        if args.bulk_only:
            print(json.dumps({"bulk": [bulk(lib, args.tasks) for _ in range(args.repeat)]}))
        else:
            measure(lib, args.tasks, args.submits, args.samples)
    finally:
        lib.close()
