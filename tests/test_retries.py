"""Retries, backoff, time limits, cancellation and draining, end to end: an App with a scheduler
and a worker running in this process (see `services` in conftest)."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from conftest import Services, wait_until

import corral
from corral import Backoff, ConfigError
from corral.lifecycle import ACTIVE, State
from corral.model import Event, TaskRecord
from corral.worker.worker import WorkerConfig

FAST = Backoff(base=0.05, jitter=0)
Run = Callable[..., Services]


def outcomes(app: corral.App, task_id: int) -> list[str | None]:
    return [a.outcome for a in app.store.attempt_list(task_id)]


def transitions(app: corral.App, task_id: int) -> list[tuple[str | None, str | None]]:
    return [(e.from_state, e.to_state) for e in app.store.event_list(task_id)]


# -- retries -----------------------------------------------------------------------------------


def test_task_that_fails_twice_then_succeeds(app: corral.App, services: Run) -> None:
    @app.task(max_retries=3, backoff=FAST)
    def flaky(ctx: corral.Context, x: int) -> int:
        if ctx.attempt <= 2:
            raise ValueError(f"flaky on attempt {ctx.attempt}")
        return x * 2

    task_id = flaky.submit(21)
    services(app)
    record = app.wait(task_id, timeout=20)
    assert (record.state, record.result, record.error) == (State.SUCCEEDED, "42", None)
    assert (record.attempt, record.failures) == (3, 2)
    attempts = app.store.attempt_list(task_id)
    assert [a.outcome for a in attempts] == ["failed", "failed", "succeeded"]
    assert attempts[0].error == "ValueError: flaky on attempt 1"
    assert attempts[1].error == "ValueError: flaky on attempt 2"
    assert transitions(app, task_id).count(("running", "retry_wait")) == 2


def test_task_that_exhausts_its_retries_ends_dead_with_error_and_traceback(
    app: corral.App, services: Run
) -> None:
    @app.task(max_retries=1, backoff=FAST)
    def broken(ctx: corral.Context) -> None:
        raise RuntimeError(f"broken on attempt {ctx.attempt}")

    task_id = broken.submit()
    services(app)
    record = app.wait(task_id, timeout=20)
    assert (record.state, record.attempt, record.failures) == (State.DEAD, 2, 2)
    assert record.error == "RuntimeError: broken on attempt 2"
    for n, attempt in enumerate(app.store.attempt_list(task_id), start=1):
        assert (attempt.outcome, attempt.error) == (
            "failed",
            f"RuntimeError: broken on attempt {n}",
        )
        assert attempt.traceback is not None
        assert "Traceback" in attempt.traceback and "in broken" in attempt.traceback


def test_handler_logs_are_stored_with_their_attempt(app: corral.App, services: Run) -> None:
    @app.task(max_retries=1, backoff=FAST)
    def chatty(ctx: corral.Context) -> None:
        ctx.logger.warning("attempt %d starts", ctx.attempt)
        if ctx.attempt == 1:
            raise ValueError("again")

    task_id = chatty.submit()
    services(app)
    assert app.wait(task_id, timeout=20).state == State.SUCCEEDED
    wait_until(lambda: len(app.store.log_list(task_id)) == 2)
    assert [line.message for line in app.store.log_list(task_id, 2)] == ["attempt 2 starts"]


# -- backoff -----------------------------------------------------------------------------------


def first_event(events: list[Event], source: str, target: str, attempt: int) -> Event:
    return next(
        e for e in events if (e.from_state, e.to_state, e.attempt) == (source, target, attempt)
    )


def test_backoff_delays_grow_between_attempts(app: corral.App, services: Run) -> None:
    backoff = Backoff(base=0.2, factor=5, jitter=0)  # 0.2 s, then 1 s

    @app.task(max_retries=2, backoff=backoff)
    def stubborn(ctx: corral.Context) -> str:
        if ctx.attempt < 3:
            raise ValueError("not yet")
        return "done"

    task_id = stubborn.submit()
    services(app)
    assert app.wait(task_id, timeout=20).state == State.SUCCEEDED
    events = app.store.event_list(task_id)
    waits = []
    for n in (1, 2):
        started = first_event(events, "admitted", "running", n)
        released = first_event(events, "retry_wait", "ready", n)
        # The retry was due `delay(n)` after the report, which came after the start.
        assert released.at - started.at >= backoff.delay(n)
        waits.append(released.at - started.at)
    assert waits[1] > waits[0]


class FixedRandom(random.Random):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def random(self) -> float:
        return self.value


def test_backoff_delay_is_exponential() -> None:
    backoff = Backoff(base=1.5, factor=2, cap=1000, jitter=0)
    assert [backoff.delay(n) for n in range(1, 6)] == [1.5, 3.0, 6.0, 12.0, 24.0]
    assert backoff.delay(0) == 1.5


def test_backoff_delay_is_capped_even_for_huge_retry_numbers() -> None:
    backoff = Backoff(base=1, factor=3, cap=10, jitter=0)
    assert [backoff.delay(n) for n in range(1, 5)] == [1, 3, 9, 10]
    assert backoff.delay(10_000) == 10


def test_backoff_jitter_stays_within_its_bounds() -> None:
    backoff = Backoff(base=4, factor=2, cap=100, jitter=0.25)
    assert backoff.delay(2, FixedRandom(0.0)) == 8.0
    assert backoff.delay(2, FixedRandom(0.999999)) == pytest.approx(6.0, abs=1e-4)
    rng = random.Random(7)
    draws = [backoff.delay(3, rng) for _ in range(500)]
    assert all(12.0 <= d <= 16.0 for d in draws)
    assert max(draws) - min(draws) > 2.0  # it does spread the retries


@pytest.mark.parametrize(
    "options", [{"base": -1}, {"cap": -1}, {"factor": 0.5}, {"jitter": 1.5}, {"jitter": -0.1}]
)
def test_backoff_rejects_bad_settings(options: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        Backoff(**options)


def test_backoff_round_trips_through_json() -> None:
    backoff = Backoff(base=0.5, factor=3, cap=60, jitter=0.1)
    assert Backoff.from_json(backoff.to_json()) == backoff


# -- time limits, per executor -------------------------------------------------------------------

EXECUTORS = ["thread", "async", "process"]
LIMIT = 0.3


def register_slow(
    app: corral.App, executor: str, finish: Callable[[corral.Context], Any], **options: Any
) -> Any:
    """A task that returns `finish(ctx)` unless that is None, in which case it overruns its time
    limit (the way that each executor kind can be stopped)."""
    if executor == "async":

        async def slow_async(ctx: corral.Context) -> Any:
            result = finish(ctx)
            if result is None:
                await asyncio.sleep(60)
            return result

        return app.task(slow_async, name="slow", max_runtime=LIMIT, **options)

    def slow(ctx: corral.Context) -> Any:
        result = finish(ctx)
        deadline = time.monotonic() + 60
        while result is None and time.monotonic() < deadline:
            time.sleep(0.01)  # a thread gets TaskTimeout here; a process is killed
        return result

    return app.task(slow, max_runtime=LIMIT, executor=executor, **options)


@pytest.mark.parametrize("executor", EXECUTORS)
def test_timeout_with_on_timeout_retry_retries(
    app: corral.App, services: Run, executor: str
) -> None:
    slow = register_slow(
        app,
        executor,
        lambda ctx: "second time lucky" if ctx.attempt > 1 else None,
        on_timeout="retry",
        max_retries=1,
        backoff=FAST,
    )
    task_id = slow.submit()
    services(app)
    record = app.wait(task_id, timeout=20)
    assert (record.state, record.attempt, record.failures) == (State.SUCCEEDED, 2, 1)
    assert record.result == '"second time lucky"'
    attempts = app.store.attempt_list(task_id)
    assert [a.outcome for a in attempts] == ["timed_out", "succeeded"]
    assert "TaskTimeout" in (attempts[0].error or "")


@pytest.mark.parametrize("executor", EXECUTORS)
def test_timeout_with_on_timeout_fail_ends_dead(
    app: corral.App, services: Run, executor: str
) -> None:
    slow = register_slow(app, executor, lambda ctx: None, on_timeout="fail", max_retries=3)
    task_id = slow.submit()
    services(app)
    record = app.wait(task_id, timeout=20)
    assert (record.state, record.attempt) == (State.DEAD, 1)
    assert "TaskTimeout" in (record.error or "")
    assert outcomes(app, task_id) == ["timed_out"]


@pytest.mark.parametrize("executor", EXECUTORS)
def test_timeout_with_on_timeout_continue_resumes_from_the_checkpoint(
    app: corral.App, services: Run, executor: str
) -> None:
    def one_slice(ctx: corral.Context) -> int | None:
        done = (ctx.checkpoint or 0) + 1
        ctx.save_checkpoint(done)
        return done if done == 3 else None  # two slices overrun, the third finishes

    slow = register_slow(app, executor, one_slice, on_timeout="continue", max_retries=0)
    task_id = slow.submit()
    services(app)
    record = app.wait(task_id, timeout=20)
    assert (record.state, record.result, record.checkpoint) == (State.SUCCEEDED, "3", "3")
    assert (record.attempt, record.failures) == (3, 0)
    assert outcomes(app, task_id)[-1] == "succeeded"
    assert all(o in ("sliced", "timed_out") for o in outcomes(app, task_id)[:2])
    steps = transitions(app, task_id)
    assert steps.count(("running", "ready")) == 2
    assert ("running", "retry_wait") not in steps


# -- cancellation --------------------------------------------------------------------------------


@pytest.mark.parametrize("executor", ["thread", "async"])
def test_cancel_of_a_running_task_ends_cancelled_and_runs_on_cancel(
    app: corral.App, services: Run, executor: str
) -> None:
    cleaned: list[tuple[int, dict[str, Any], bool]] = []

    def on_cancel(ctx: corral.Context) -> None:
        cleaned.append((ctx.task_id, dict(ctx.shared), ctx.cancelled))

    if executor == "thread":

        @app.task(name="query", on_cancel=on_cancel, max_retries=2)
        def query(ctx: corral.Context) -> None:
            ctx.set_shared("query_id", f"q-{ctx.task_id}")
            ctx.wait_cancelled(60)
            ctx.raise_if_cancelled()

        task_type: Any = query
    else:

        @app.task(name="query", on_cancel=on_cancel, max_retries=2)
        async def query_async(ctx: corral.Context) -> None:
            ctx.set_shared("query_id", f"q-{ctx.task_id}")
            await asyncio.sleep(60)

        task_type = query_async

    task_id = task_type.submit()
    services(app)
    wait_until(lambda: app.get(task_id).shared is not None, timeout=10)
    assert app.get(task_id).state == State.RUNNING
    assert app.cancel(task_id) is None  # requested: the worker interrupts it
    record = app.wait(task_id, timeout=20)
    assert (record.state, record.attempt, record.failures) == (State.CANCELLED, 1, 0)
    assert outcomes(app, task_id) == ["cancelled"]
    assert cleaned == [(task_id, {"query_id": f"q-{task_id}"}, True)]
    with pytest.raises(corral.TransitionRefused, match="already ended"):
        app.cancel(task_id)


def test_cancel_of_a_task_that_has_not_started_ends_it_at_once(app: corral.App) -> None:
    @app.task
    def idle(ctx: corral.Context) -> None: ...

    task_id = idle.submit(delay=60)
    assert app.cancel(task_id) == State.CANCELLED
    assert app.get(task_id).state == State.CANCELLED
    app.retry(task_id)
    assert app.get(task_id).state == State.READY


# -- draining --------------------------------------------------------------------------------------


def test_stop_drains_finished_work_and_releases_the_rest(app: corral.App, services: Run) -> None:
    @app.task(max_retries=0)
    def quick(ctx: corral.Context) -> str:
        time.sleep(0.5)
        return "quick"

    @app.task(max_retries=0)
    def long(ctx: corral.Context) -> None:
        ctx.save_checkpoint({"step": 1})
        ctx.wait_cancelled(60)
        ctx.raise_if_cancelled()

    @app.task(max_retries=0)
    async def long_async(ctx: corral.Context) -> None:
        await asyncio.sleep(60)

    ids = [quick.submit(), long.submit(), long_async.submit()]
    svc = services(app, worker=WorkerConfig(concurrency=4, heartbeat=0.1, grace=1.5))
    wait_until(lambda: all(app.get(i).state == State.RUNNING for i in ids), timeout=10)
    svc.stop_scheduler()  # so that nothing admits the released tasks again
    svc.stop_worker()
    done, *released = (app.get(i) for i in ids)
    assert (done.state, done.result) == (State.SUCCEEDED, '"quick"')
    for record in released:
        assert_released(app, record)
    assert released[0].checkpoint == '{"step":1}'


def assert_released(app: corral.App, record: TaskRecord) -> None:
    assert (record.state, record.attempt, record.failures) == (State.READY, 1, 0)
    assert record.worker_id is None
    assert outcomes(app, record.id) == ["released"]
    assert transitions(app, record.id)[-1] == ("running", "ready")


def test_released_task_runs_again_on_the_next_worker(app: corral.App, services: Run) -> None:
    @app.task(max_retries=0)
    def resumable(ctx: corral.Context) -> int:
        step = (ctx.checkpoint or 0) + 1
        ctx.save_checkpoint(step)
        if step == 1:
            ctx.wait_cancelled(60)
            ctx.raise_if_cancelled()
        return step

    task_id = resumable.submit()
    first = services(app, worker=WorkerConfig(heartbeat=0.1, grace=0.2))
    wait_until(lambda: app.get(task_id).checkpoint is not None, timeout=10)
    first.stop_scheduler()
    first.stop_worker()
    assert app.get(task_id).state not in ACTIVE
    services(app)
    record = app.wait(task_id, timeout=20)
    assert (record.state, record.result, record.attempt, record.failures) == (
        State.SUCCEEDED,
        "2",
        2,
        0,
    )


# -- worker capacity -------------------------------------------------------------------------------


def test_worker_never_runs_more_tasks_than_its_concurrency(app: corral.App, services: Run) -> None:
    lock = threading.Lock()
    running = [0]
    peak = [0]

    @app.task
    def busy(ctx: corral.Context) -> None:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.2)
        with lock:
            running[0] -= 1

    ids = [busy.submit() for _ in range(8)]
    services(app, worker=WorkerConfig(concurrency=2, heartbeat=0.1))
    for task_id in ids:
        assert app.wait(task_id, timeout=20).state == State.SUCCEEDED
    assert peak[0] == 2
