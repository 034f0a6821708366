"""Running the demo: a scheduler in this process, worker processes started as
`corral worker --app corral.demo:app`, the pipelines submitted on their schedule, the query
cancelled once it runs, progress shown until every task has ended."""

from __future__ import annotations

import contextlib
import random
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

from rich.console import Console

from ..errors import ConfigError, CorralError
from ..lifecycle import State
from ..processes import WorkerProcesses, worker_command
from ..readside import ReadSide
from ..scheduler.service import Scheduler
from .database import reset_database
from .display import Display
from .summary import DemoSummary, summarise
from .tasks import APP_SPEC, DEFAULT_URL, app
from .workload import Pipeline, Specials, pipeline_tasks, plan, refresh_task, submit_specials


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM stops the demo like Ctrl-C does, so its worker processes are stopped too."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(*_: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_demo(
    database_url: str = DEFAULT_URL,
    scale: float = 1.0,
    workers: int = 2,
    *,
    concurrency: int = 8,
    time_scale: float = 1.0,
    console: Console | None = None,
    timeout: float = 120.0,
) -> DemoSummary:
    """Run the demo on a fresh database and return what happened. `console`: where the live
    progress goes (None: nowhere). Raises CorralError if it can't run (a worker died, timeout)."""
    if scale <= 0 or workers < 1 or concurrency < 1 or time_scale <= 0:
        raise ConfigError("scale and time_scale must be > 0, workers and concurrency >= 1")
    url = reset_database(database_url)
    app.close()
    app.url = url
    rng = random.Random(11)
    pipelines = plan(scale, time_scale)
    for p in pipelines:
        app.groups.configure(p.group, max_parallel=p.cap)
    size = sum(p.size for p in pipelines) + 4
    if console is not None:
        console.print(
            f"[bold]corral demo[/]: {size} tasks in {len(pipelines) + 1} groups on {url}, "
            f"{workers} worker processes x {concurrency}. Time is compressed: run times of 5 ms "
            "to 1 s stand for seconds to an hour, arrivals come within seconds."
        )
    scheduler = Scheduler(app.store)
    thread = threading.Thread(target=scheduler.run, name="corral-demo-scheduler", daemon=True)
    display = Display(console, pipelines)
    pool: WorkerProcesses | None = None
    try:
        with _sigterm_interrupts():
            thread.start()
            command = [*worker_command(url, APP_SPEC), "--concurrency", str(concurrency)]
            pool = WorkerProcesses([*command, "--grace", "5"], workers)
            _wait_for_workers(pool, workers)
            start = time.monotonic()
            specials = submit_specials(time_scale)
            refreshes = _drive(pipelines, rng, time_scale, specials, display, pool, start,
                               timeout)  # fmt: skip
            seconds = time.monotonic() - start
    finally:
        scheduler.stop()
        if pool is not None:
            pool.stop()
        thread.join(timeout=10)
    summary = summarise(url, seconds, workers, concurrency, pipelines, refreshes, specials)
    app.close()
    return summary


def _wait_for_workers(pool: WorkerProcesses, count: int) -> None:
    deadline = time.monotonic() + 30
    while len(ReadSide(app.store, app.clock).workers()) < count:
        pool.check()
        if time.monotonic() > deadline:
            raise CorralError(f"the {count} demo worker processes did not start within 30s")
        time.sleep(0.05)


def _drive(pipelines: list[Pipeline], rng: random.Random, time_scale: float,
           specials: Specials, display: Display, pool: WorkerProcesses, start: float,
           timeout: float) -> list[int]:  # fmt: skip
    """Submit the pipelines on their schedule, cancel the query once it runs, show progress;
    return when every task has ended. Returns the ids of the dependent (refresh) tasks."""
    pending = list(pipelines)
    refreshes: list[int] = []
    submitted = dict(specials.submitted)
    reads = ReadSide(app.store, app.clock)
    with display:
        while True:
            elapsed = time.monotonic() - start
            while pending and pending[0].at <= elapsed:
                p = pending.pop(0)
                upstream = app.submit_many(pipeline_tasks(p, rng, time_scale))
                if p.size >= 3:
                    refreshes += app.submit_many([refresh_task(p, rng, time_scale, upstream)])
                submitted[p.group] = len(upstream) + (p.size >= 3)
            _cancel_query_once_running(specials)
            unfinished = {g.group: g.counts for g in reads.groups()}
            display.update(unfinished, submitted, elapsed)
            if not pending and not any(n for c in unfinished.values() for n in c.values()):
                return refreshes
            if elapsed > timeout:
                raise CorralError(f"the demo did not finish within {timeout:.0f}s")
            pool.check()
            time.sleep(0.1)


def _cancel_query_once_running(specials: Specials) -> None:
    if specials.cancelled_at is not None:
        return
    record = app.get(specials.query)
    if record.state == State.RUNNING and record.shared:  # it has recorded its query id
        app.cancel(specials.query)
        specials.cancelled_at = app.clock.now()  # the store's clock, as the tasks' times
