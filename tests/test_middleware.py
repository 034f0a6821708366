"""Worker middleware on both backends: the hooks' order around a run (the app's outside the
worker config's), what a middleware sees of every run (task, timing, outcome) for success, error,
timeout, time slice, stall and cancel, and a raising middleware that neither loses the task nor
stops the worker. corral's own on_cancel clean-up and stall check run as middleware inside."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import Services, wait_until

import corral
from corral.errors import ConfigError
from corral.lifecycle import State
from corral.worker.middleware import Middleware, Run
from corral.worker.worker import Worker, WorkerConfig

FAST = {"concurrency": 2, "heartbeat": 0.1, "kill_grace": 0.3}


class Recorder(Middleware):
    """Writes down every hook it gets, with what the run said at that moment."""

    def __init__(self, name: str, log: list[tuple[Any, ...]]) -> None:
        self.name = name
        self.log = log
        self._lock = threading.Lock()

    def _note(self, hook: str, run: Run) -> None:
        with self._lock:
            self.log.append((self.name, hook, run.task_id, run.ended_by, run.outcome))

    def before_run(self, run: Run) -> None:
        assert run.started_at is None and run.outcome is None
        self._note("before_run", run)

    def on_error(self, run: Run) -> None:
        self._note("on_error", run)

    async def on_timeout(self, run: Run) -> None:  # an async hook is awaited
        await asyncio.sleep(0)
        self._note("on_timeout", run)

    def on_slice_end(self, run: Run) -> None:
        self._note("on_slice_end", run)

    def on_cancel(self, run: Run) -> None:
        self._note("on_cancel", run)

    def after_run(self, run: Run) -> None:
        self._note("after_run", run)


class Seen(Middleware):
    """Keeps each run it saw end, by task id."""

    def __init__(self) -> None:
        self.runs: dict[int, list[Run]] = {}

    def after_run(self, run: Run) -> None:
        self.runs.setdefault(run.task_id, []).append(run)


@pytest.fixture
def make_app(app_url: str) -> Iterator[Callable[..., corral.App]]:
    made: list[corral.App] = []

    def make(*middleware: Middleware) -> corral.App:
        made.append(corral.App(app_url, middleware=middleware))
        return made[-1]

    yield make
    for application in made:
        application.close()


def _hooks(log: list[tuple[Any, ...]], task_id: int) -> list[tuple[str, str]]:
    return [(name, hook) for name, hook, tid, *_ in log if tid == task_id]


def test_hooks_wrap_a_run_in_order(
    make_app: Callable[..., corral.App], services: Callable[..., Services]
) -> None:
    log: list[tuple[Any, ...]] = []
    seen = Seen()
    app = make_app(Recorder("outer", log), seen)
    task = app.task(lambda ctx, n: n * 2, name="double")
    task_id = task.submit(21, group="g1")
    services(app, worker=WorkerConfig(middleware=[Recorder("inner", log)], **FAST))
    assert app.wait(task_id, timeout=20).state == State.SUCCEEDED
    wait_until(lambda: task_id in seen.runs)

    assert _hooks(log, task_id) == [
        ("outer", "before_run"),
        ("inner", "before_run"),
        ("inner", "after_run"),
        ("outer", "after_run"),
    ]
    [run] = seen.runs[task_id]
    assert (run.task_id, run.name, run.group, run.attempt) == (task_id, "double", "g1", 1)
    assert (run.ended_by, run.outcome, run.encoded, run.error) == ("succeeded",) * 2 + ("42", None)
    assert run.started_at is not None and abs(run.started_at - app.clock.now()) < 30
    assert run.duration is not None and 0 <= run.duration < 10
    assert run.context.task_id == task_id and run.worker_id


def test_a_middleware_sees_error_timeout_slice_stall_and_cancel(
    make_app: Callable[..., corral.App], services: Callable[..., Services]
) -> None:
    log: list[tuple[Any, ...]] = []
    seen = Seen()
    app = make_app(Recorder("m", log), seen)
    released: list[int] = []

    def boom(ctx: corral.Context) -> None:
        raise RuntimeError("the source is down")

    async def slow(ctx: corral.Context) -> None:
        await asyncio.sleep(30)

    async def stuck(ctx: corral.Context) -> None:
        await asyncio.sleep(30)  # never saves a checkpoint: no progress

    async def query(ctx: corral.Context) -> None:
        ctx.set_shared("query_id", "q-1")
        await asyncio.sleep(60)

    failing = app.task(boom, name="boom").submit()
    timing_out = app.task(slow, name="slow", max_runtime=0.2, on_timeout="fail").submit()
    stalling = app.task(
        stuck, name="stuck", max_runtime=0.2, on_timeout="continue",
        flag_stalled_after=1, fail_stalled_after=2,
    ).submit()  # fmt: skip
    cancelled = app.task(
        query, name="query", on_cancel=lambda ctx: released.append(ctx.task_id)
    ).submit()
    services(app, worker=WorkerConfig(**{**FAST, "concurrency": 4}))

    assert app.wait(failing, timeout=20).state == State.DEAD
    assert app.wait(timing_out, timeout=20).state == State.DEAD
    assert app.wait(stalling, timeout=20).state == State.DEAD
    wait_until(lambda: app.get(cancelled).shared, timeout=20)
    app.cancel(cancelled)
    assert app.wait(cancelled, timeout=20).state == State.CANCELLED
    wait_until(lambda: all(t in seen.runs for t in (failing, timing_out, cancelled)))
    wait_until(lambda: len(seen.runs.get(stalling, [])) == 2)

    assert _hooks(log, failing) == [("m", "before_run"), ("m", "on_error"), ("m", "after_run")]
    assert "RuntimeError: the source is down" in (seen.runs[failing][0].error or "")
    assert _hooks(log, timing_out)[1] == ("m", "on_timeout")
    assert seen.runs[timing_out][0].outcome == "timed_out"
    # Each slice passes on_slice_end; corral's stall check (inside) has decided by then: the
    # first slice is flagged and requeued, the second fails the task.
    slices = [(hook, ended_by, outcome) for _, hook, t, ended_by, outcome in log if t == stalling]
    assert [s for s in slices if s[0] != "before_run"] == [
        ("on_slice_end", "sliced", "sliced"),
        ("after_run", "sliced", "sliced"),
        ("on_slice_end", "sliced", "stalled"),
        ("after_run", "sliced", "stalled"),
    ]
    assert [r.stall for r in seen.runs[stalling]] == [(1, "stalled"), (2, "stalled")]
    # The task type's on_cancel ran (corral's own middleware) before the user's on_cancel hook.
    assert _hooks(log, cancelled)[1:] == [("m", "on_cancel"), ("m", "after_run")]
    assert released == [cancelled]
    assert seen.runs[cancelled][0].context.shared == {"query_id": "q-1"}


class Raising(Middleware):
    """Raises in every hook, from a `def` and an `async def` alike."""

    def before_run(self, run: Run) -> None:
        raise RuntimeError("before")

    async def on_error(self, run: Run) -> None:
        raise RuntimeError("on_error")

    async def after_run(self, run: Run) -> None:
        raise ValueError("after")


def test_a_raising_middleware_loses_no_task_and_keeps_the_worker(
    make_app: Callable[..., corral.App],
    services: Callable[..., Services],
    caplog: pytest.LogCaptureFixture,
) -> None:
    log: list[tuple[Any, ...]] = []
    app = make_app(Recorder("outer", log), Raising(), Recorder("inner", log))
    attempts: list[int] = []

    def flaky(ctx: corral.Context, n: int) -> int:
        attempts.append(ctx.attempt)
        if ctx.attempt == 1:
            raise RuntimeError("first try fails")
        return n

    task = app.task(flaky, name="flaky", max_retries=1, backoff=corral.Backoff(base=0.01))
    plain = app.task(lambda ctx: "ok", name="plain")
    with caplog.at_level(logging.ERROR, logger="corral.worker"):
        first = task.submit(7)
        svc = services(app, worker=WorkerConfig(**FAST))
        record = app.wait(first, timeout=20)
        assert (record.state, record.result, record.attempt) == (State.SUCCEEDED, "7", 2)
        second = plain.submit()  # the same worker goes on
        assert app.wait(second, timeout=20).state == State.SUCCEEDED
        wait_until(lambda: len(_hooks(log, second)) == 4)

    assert svc.worker is not None and svc.worker.completed == 3
    # The other middleware got every hook, on both sides of the raising one.
    before = [("outer", "before_run"), ("inner", "before_run")]
    after = [("inner", "after_run"), ("outer", "after_run")]
    errors = [("inner", "on_error"), ("outer", "on_error")]
    assert _hooks(log, first) == before + errors + after + before + after
    failed = [r.getMessage() for r in caplog.records if "middleware Raising" in r.getMessage()]
    assert any(f"Raising.before_run failed on task {first} (flaky, attempt 1)" in m for m in failed)
    assert any(f"Raising.on_error failed on task {first}" in m for m in failed)
    assert any(f"Raising.after_run failed on task {second}" in m for m in failed)


def test_middleware_must_be_middleware(app: corral.App) -> None:
    with pytest.raises(ConfigError, match="middleware must be Middleware objects"):
        corral.App(app.url, middleware=[object()])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match="middleware must be a list"):
        corral.App(app.url, middleware=Seen())  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="middleware must be Middleware objects"):
        Worker.of(app, WorkerConfig(middleware=[print]))  # type: ignore[list-item]


def test_a_hook_left_alone_costs_nothing() -> None:
    """Only the hooks a middleware overrides are called: the base class's no-ops are skipped."""
    from corral.worker.middleware import Chain

    chain = Chain([Seen(), Middleware()])
    assert {hook: len(fns) for hook, fns in chain._hooks.items() if fns} == {"after_run": 1}
