"""What metrics and tracing cost.

1. A scrape's cost (the cluster read and its metric families, uncached) must not grow with
   history or with the number of groups: a database with 10,000 then 2,000,000 finished tasks
   (the same backlog: 2,000 ready tasks in 20 groups, 80 admitted or running), then a backlog of
   20,000 ready tasks in 10, then in 10,000 groups. Medians of repeated reads; the figures that
   matter are the ratios.
2. The drain (`corral run`, no-op tasks) with metrics and tracing off, then on (--metrics-bind,
   scraped every second, and the OpenTelemetry SDK set up with spans batched and dropped, the
   submit traced too), alternated in one sitting.
3. The submit with tracing off and on (`--only submit`): `submit_many` in batches of 5,000,
   and one-task submits, in-process.

    python benchmarks/metrics.py --backend sqlite --backend postgres
    python benchmarks/metrics.py --backend sqlite --only drain --tasks 10000 --rounds 3
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import fresh_database
from drain import submit_noops, unfinished
from read_side import execute, fill, median_ms, task

from corral import App
from corral.metrics.cluster import families, read_figures
from corral.store import open_store
from corral.store.contract import InsertParams


def scrape_ms(url: str, rounds: int) -> float:
    store = open_store(url)
    now = time.time()
    cost = median_ms(lambda: families(read_figures(store, now, 20)), rounds)
    store.close()
    return cost


def scrape_by_history(backend: str, finished: int, rounds: int) -> float:
    with fresh_database(backend) as url:
        store = open_store(url)
        fill(url, store, backend, finished, time.time())
        store.close()
        return scrape_ms(url, rounds)


def scrape_by_groups(backend: str, groups: int, rounds: int, ready: int = 20_000) -> float:
    with fresh_database(backend) as url:
        store = open_store(url)
        tasks = [task(f"g{i % groups:05d}") for i in range(ready)]
        for first in range(0, ready, 5000):
            store.task_insert_many(InsertParams(tasks[first : first + 5000], time.time() - 60))
        store.ready_groups_refresh(groups + 10)
        store.close()
        execute(url, "ANALYZE")
        return scrape_ms(url, rounds)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def drain(backend: str, count: int, observe: str, concurrency: int) -> float:
    """Tasks per second from start-up to the last success; `observe`: off, metrics, tracing or
    both."""
    metered, traced = observe in ("metrics", "both"), observe in ("tracing", "both")
    with fresh_database(backend) as url:
        if traced:
            from opentelemetry import trace
            from traced_app import provider

            original = trace.get_tracer
            trace.get_tracer = lambda name, *a, **k: provider.get_tracer(name)  # type: ignore[assignment]
            try:
                submit_noops(url, count, "noop")
            finally:
                trace.get_tracer = original  # type: ignore[assignment]
        else:
            submit_noops(url, count, "noop")
        port = free_port()
        app_spec = "traced_app:app" if traced else "noop_app:app"
        command = [sys.executable, "-m", "corral", "--app", app_spec, "run", "--concurrency",
                   str(concurrency)]  # fmt: skip
        if metered:
            command += ["--metrics-bind", f"127.0.0.1:{port}"]
        env = dict(os.environ, CORRAL_DATABASE_URL=url, PYTHONPATH=str(HERE))
        app = App(url)
        stop = threading.Event()

        def scrape() -> None:
            while not stop.wait(1.0):
                with contextlib.suppress(OSError):
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()

        scraper = threading.Thread(target=scrape, daemon=True)
        started = time.perf_counter()
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)  # fmt: skip
        if metered:
            scraper.start()
        try:
            while unfinished(app) > 0:
                if proc.poll() is not None:
                    raise SystemExit(f"corral run exited early: {proc.stderr.read()[-2000:]!r}")  # type: ignore[union-attr]
                time.sleep(0.2)
            elapsed = time.perf_counter() - started
        finally:
            stop.set()
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
            app.close()
        return count / elapsed


def hook_cost_us(kind: str, runs: int = 20_000) -> float:
    """Microseconds per attempt of the metrics or the tracing middleware's hooks, in-process
    (the tracing one with the SDK set up, spans batched and dropped)."""
    from prometheus_client import CollectorRegistry

    from corral.clock import SystemClock
    from corral.metrics.worker import WorkerMetrics
    from corral.model import ClaimedTask
    from corral.worker.middleware import Middleware, Run
    from corral.worker.tracing import Tracing

    middleware: Middleware
    if kind == "metrics":
        middleware = WorkerMetrics(CollectorRegistry(auto_describe=False), SystemClock())
        context = None
    else:
        from opentelemetry import trace
        from traced_app import provider

        trace.get_tracer = lambda name, *a, **k: provider.get_tracer(name)  # type: ignore[assignment]
        middleware = Tracing()
        with trace.get_tracer("bench").start_as_current_span("send"):
            from corral.tracing import sending

            with sending(["noop"], ["default"]) as send:
                context = send.context
    task = ClaimedTask(1, "noop", "default", 1, 0, 0, "{}", None, "retry", "[]", "{}", None, None,
                       None, ready_at=time.time(), trace_context=context)  # fmt: skip
    ctx: Any = None  # neither middleware reads the handler's context
    started = time.perf_counter()
    for _ in range(runs):
        run = Run(task, ctx, "w1")
        middleware.before_run(run)
        run.outcome, run.duration = "succeeded", 0.001
        middleware.after_run(run)
    return (time.perf_counter() - started) / runs * 1e6


def submit_rates(backend: str, count: int, traced: bool) -> tuple[float, float]:
    """Tasks per second of `submit_many` (batches of 5,000) and microseconds per one-task
    `submit` (a tenth as many), in-process, with tracing on (the SDK set up, spans batched and
    dropped) or off (the API's no-op provider)."""
    from noop_app import app
    from opentelemetry import trace
    from traced_app import provider

    original = trace.get_tracer, trace.get_tracer_provider
    if traced:
        trace.get_tracer = lambda name, *a, **k: provider.get_tracer(name)  # type: ignore[assignment]
        trace.get_tracer_provider = lambda: provider  # type: ignore[assignment]
    else:
        trace.get_tracer_provider = trace.NoOpTracerProvider  # type: ignore[assignment]
    try:
        with fresh_database(backend) as url:
            app.url = url
            task_type = app.task_type("noop")
            started = time.perf_counter()
            for first in range(0, count, 5000):
                app.submit_many(
                    [task_type.prepare(i) for i in range(first, min(first + 5000, count))]
                )
            many = count / (time.perf_counter() - started)
            started = time.perf_counter()
            for i in range(count // 10):
                task_type.submit(i)
            one = (time.perf_counter() - started) / (count // 10) * 1e6
            app.close()
    finally:
        trace.get_tracer, trace.get_tracer_provider = original  # type: ignore[assignment]
    return many, one


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", action="append", choices=["sqlite", "postgres"])
    parser.add_argument("--only", choices=["scrape", "drain", "hooks", "submit"])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--big", type=int, default=2_000_000)
    parser.add_argument("--reads", type=int, default=20, help="reads per scrape figure")
    parser.add_argument("--tasks", type=int, default=10_000, help="tasks per drain")
    parser.add_argument("--rounds", type=int, default=3, help="drains of each kind")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument(
        "--observe",
        action="append",
        choices=["metrics", "tracing", "both"],
        help="what the drains compared with `off` turn on [default: both]",
    )
    args = parser.parse_args()
    if args.only in (None, "hooks"):
        for kind in ("metrics", "tracing"):
            print(f"{kind} middleware: {hook_cost_us(kind):.1f} us per attempt")
        if args.only == "hooks":
            return
    for backend in args.backend or ["sqlite"]:
        if args.only in (None, "submit"):
            figures: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
            for _ in range(args.rounds):
                for traced in (False, True):
                    figures[traced].append(submit_rates(backend, args.tasks, traced))
            for traced in (False, True):
                many = [round(m) for m, _ in figures[traced]]
                one = [round(o) for _, o in figures[traced]]
                print(f"{backend}: submit, tracing {'on ' if traced else 'off'}: submit_many "
                      f"{statistics.median(many):.0f} tasks/s {many}, submit "
                      f"{statistics.median(one):.0f} us each {one}")  # fmt: skip
            if args.only == "submit":
                continue
        if args.only in (None, "scrape"):
            small = scrape_by_history(backend, args.small, args.reads)
            big = scrape_by_history(backend, args.big, args.reads)
            print(f"{backend}: scrape, median ms: {args.small:,} finished {small:.2f}, "
                  f"{args.big:,} finished {big:.2f}, ratio {big / small:.2f}")  # fmt: skip
            few = scrape_by_groups(backend, 10, args.reads)
            many = scrape_by_groups(backend, 10_000, args.reads)
            print(f"{backend}: scrape, median ms, 20,000 ready tasks: 10 groups {few:.2f}, "
                  f"10,000 groups {many:.2f}, ratio {many / few:.2f}")  # fmt: skip
        if args.only in (None, "drain"):
            kinds = ["off", *(args.observe or ["both"])]
            rates: dict[str, list[float]] = {k: [] for k in kinds}
            for _ in range(args.rounds):
                for kind in kinds:
                    rates[kind].append(drain(backend, args.tasks, kind, args.concurrency))
            off = statistics.median(rates["off"])
            print(f"{backend}: drain of {args.tasks:,}, median tasks/s over {args.rounds}: "
                  f"off {off:.0f} {[round(r) for r in rates['off']]}")  # fmt: skip
            for kind in kinds[1:]:
                on = statistics.median(rates[kind])
                print(f"  {kind:<8} {on:.0f} {[round(r) for r in rates[kind]]}, "
                      f"cost {100 * (1 - on / off):.1f}%")  # fmt: skip


if __name__ == "__main__":
    main()
