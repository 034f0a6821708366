"""Schedules: the clock's cost per tick, fire lateness, and a backfill beside live work.

tick       the schedule clock's run (ScheduleClock.run, store-level, a moved clock) with 10
           schedules due per tick among 10 and among 10,000 stored ones: its cost must follow
           the schedules due, not how many exist (ratio <= 2).
lateness   a real scheduler (its own thread, the store's clock) firing 5 schedules every
           second for 20 s: logical time -> the fire and its task committed (ready), p50/p99.
backfill   the reference workload's shape with time compressed 1000 times (fairness.py's
           app, one worker process of 16 slots): small pipelines of 3-9 jobs of 5-60 ms
           arriving for 20 s, with and without a backfill of 10,000 fires (one 20 ms job
           each, weight 1) started just before them: the small pipelines' wait, and the
           backfill's throughput in the capacity they leave idle. Prefetch 0, as fairness.py.

  python benchmarks/schedules.py --backend sqlite --backend postgres
  python benchmarks/schedules.py --backend sqlite --only tick

The worker process it spawns is given the PYTHONPATH it was given: with
`PYTHONPATH=<an older checkout>/src`, both sides run that code.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import fresh_database, percentile
from fairness_app import make_app

import corral
from corral.clock import ManualClock
from corral.model import TaskQuery
from corral.scheduler.service import Scheduler, SchedulerConfig
from corral.schedules.service import ScheduleClock

SLOTS = 16


def tick_cost(backend: str, stored: int, due: int = 10, ticks: int = 40) -> float:
    """Mean seconds of one run of the schedule clock making `due` fires, among `stored`."""
    start = 1_800_000_000
    clock = ManualClock(start)
    with fresh_database(backend) as url:
        app = corral.App(url, clock=clock)

        @app.task
        def noop(ctx: corral.Context) -> None:
            return None

        for i in range(due):
            app.schedules.add(f"fast-{i}", noop, every="1m", overlap="allow")
        for i in range(stored - due):  # daily at 03:00: not due in the measured hour
            app.schedules.add(f"slow-{i}", noop, cron="0 3 * * *", overlap="allow")
        service = app.schedules.services()[0]
        assert isinstance(service, ScheduleClock)
        service.run(start)  # the first run syncs them all
        times = []
        for k in range(1, ticks + 1):
            now = start + 60 * k
            began = time.perf_counter()
            made = service.run(now)
            times.append(time.perf_counter() - began)
            assert made == due, made
        app.close()
    return statistics.fmean(times[5:])


def lateness(backend: str, seconds: float = 20.0) -> list[float]:
    """Seconds from each fire's logical time to its task committed (ready)."""
    with fresh_database(backend) as url:
        app = corral.App(url)

        @app.task
        def noop(ctx: corral.Context) -> None:
            return None

        for i in range(5):
            app.schedules.add(f"every-second-{i}", noop, every="1s", overlap="allow")
        scheduler = Scheduler(app.store, clock=app.clock, services=app.schedules.services())
        thread = threading.Thread(target=scheduler.run, daemon=True)
        thread.start()
        time.sleep(seconds)
        scheduler.stop()
        thread.join(10)
        late = [
            fire.made_at - fire.logical_time
            for info in app.schedules.list()
            for fire in app.schedules.fires(info.name, 10_000)
        ]
        app.close()
    return late[5:]


def backfill_beside_live(backend: str, beside: str, seed: int = 7) -> dict[str, float]:
    """The small pipelines' waits beside nothing ("alone"), a backfill of 10,000 fires
    ("backfill") or a live group of 10,000 jobs of the same length and weight ("live"): what fair
    share predicts for them; and the backfill's fires done per second."""
    rng = random.Random(seed)
    with fresh_database(backend) as url:
        app = make_app(url)
        app.schedules.add("history", app.task_type("job"), every="1h", args=[20.0],
                          overlap="allow")  # fmt: skip
        path = os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(HERE)) if p)
        env = dict(os.environ, CORRAL_DATABASE_URL=url, PYTHONPATH=path)
        command = [sys.executable, "-m", "corral", "--app", "fairness_app:app", "worker",
                   "--concurrency", str(SLOTS)]  # fmt: skip
        worker = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
        try:
            return _backfill_run(app, worker, beside, rng)
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait(10)
            app.close()


def _span(began: float, began_at: float, ended: list[float], total: int) -> float:
    """Seconds the work ran: until its last task ended if all `total` ended, else until now."""
    span = time.monotonic() - began
    if len(ended) >= total:
        span = min(span, max(ended) - began_at)
    return span


def _backfill_run(
    app: corral.App, worker: subprocess.Popen[bytes], beside: str, rng: random.Random
) -> dict[str, float]:
    config = SchedulerConfig(prefetch=0, prefetch_ratio=0.0)
    scheduler = Scheduler(app.store, config, services=app.schedules.services(interval=0.1))
    thread = threading.Thread(target=scheduler.run, daemon=True)
    while not app.store.worker_list(time.time()):
        time.sleep(0.05)
    thread.start()
    made = None
    if beside == "live":
        app.groups.configure("big", max_parallel=SLOTS, weight=1.0)
        app.submit_many([app.task_type("job").prepare(20.0, group="big") for _ in range(10_000)])
    if beside == "backfill":
        last = int(time.time()) // 3600 * 3600 - 7200
        end = datetime.fromtimestamp(last, UTC)
        start = datetime.fromtimestamp(last - 9_999 * 3600, UTC)
        made = app.backfill("history", start=start, end=end, weight=1.0, max_parallel=SLOTS)
        assert made.total == 10_000, made.total
    began, began_at = time.monotonic(), time.time()
    small = 0
    while time.monotonic() - began < 20.0:
        jobs = [app.task_type("job").prepare(rng.uniform(5, 60), group=f"small-{small}")
                for _ in range(rng.randint(3, 9))]  # fmt: skip
        app.submit_many(jobs)
        small += 1
        time.sleep(0.2)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the small pipelines end
        tasks = app.store.task_list(TaskQuery(limit=1_000_000))
        if all(t.finished_at is not None for t in tasks if t.group.startswith("small-")):
            break
        time.sleep(0.2)
    result: dict[str, float] = {}
    if beside == "live":  # what a live group of the same weight and cap gets done beside them
        ended = [t.finished_at for t in app.store.task_list(TaskQuery(limit=1_000_000))
                 if t.group == "big" and t.finished_at is not None]  # fmt: skip
        result["live_per_second"] = len(ended) / _span(began, began_at, ended, 10_000)
    if made is not None:
        status = app.backfills.status(made.id)
        result["backfill_done"] = status.done
        ended = [t.finished_at for t in app.store.task_list(TaskQuery(limit=1_000_000))
                 if t.group == made.group and t.finished_at is not None]  # fmt: skip
        result["backfill_per_second"] = status.done / _span(began, began_at, ended, made.total)
    scheduler.stop()
    thread.join(10)
    worker.send_signal(signal.SIGTERM)
    worker.wait(30)
    waits = [t.wait_seconds for t in app.store.task_list(TaskQuery(limit=1_000_000))
             if t.group.startswith("small-") and t.wait_seconds is not None]  # fmt: skip
    result.update(mean=statistics.fmean(waits), p95=percentile(waits, 95), n=len(waits))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", action="append", choices=["sqlite", "postgres"])
    parser.add_argument("--only", choices=["tick", "lateness", "backfill"])
    options = parser.parse_args()
    for backend in options.backend or ["sqlite"]:
        if options.only in (None, "tick"):
            few, many = tick_cost(backend, 10), tick_cost(backend, 10_000)
            print(f"{backend} tick, 10 due: 10 stored {few * 1000:.2f} ms, 10,000 stored "
                  f"{many * 1000:.2f} ms, ratio {many / few:.2f}")  # fmt: skip
        if options.only in (None, "lateness"):
            late = lateness(backend)
            p50, p99 = percentile(late, 50) * 1000, percentile(late, 99) * 1000
            print(f"{backend} lateness over {len(late)} fires: p50 {p50:.0f} ms, p99 {p99:.0f} ms")
        if options.only in (None, "backfill"):
            alone = backfill_beside_live(backend, "alone")
            live = backfill_beside_live(backend, "live")
            beside = backfill_beside_live(backend, "backfill")
            print(f"{backend} small pipelines' wait alone: mean {alone['mean'] * 1000:.0f} ms, "
                  f"p95 {alone['p95'] * 1000:.0f} ms ({alone['n']:.0f} jobs)")  # fmt: skip
            print(f"{backend} beside a live group of 10,000 jobs (their fair share): mean "
                  f"{live['mean'] * 1000:.0f} ms, p95 {live['p95'] * 1000:.0f} ms; the live "
                  f"group's jobs done {live['live_per_second']:.0f}/s")  # fmt: skip
            print(f"{backend} beside the backfill: mean {beside['mean'] * 1000:.0f} ms, p95 "
                  f"{beside['p95'] * 1000:.0f} ms; ratio of means "
                  f"{beside['mean'] / alone['mean']:.2f} (against the live group: "
                  f"{beside['mean'] / live['mean']:.2f}); backfill {beside['backfill_done']:.0f} "
                  f"fires done, {beside['backfill_per_second']:.0f}/s "
                  f"({beside['backfill_per_second'] / live['live_per_second']:.2f} of the live "
                  "group's)")  # fmt: skip


if __name__ == "__main__":
    main()
