"""The executors: each kind returns results, reports failures, stops at its deadline and on cancel,
and carries checkpoints, shared values and log lines to the sink."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from corral.context import Context
from corral.errors import ConfigError
from corral.worker.executors import ExecutorKind, RunResult, execute

KINDS: list[ExecutorKind] = ["async", "thread", "process"]
SLACK = 3.0  # generous bound on how late a stop may come: never a tight timing assertion


class RecordingSink:
    def __init__(self) -> None:
        self.checkpoints: list[Any] = []
        self.shared: list[dict[str, Any]] = []
        self.logs: list[tuple[int, str]] = []

    def save_checkpoint(self, task_id: int, attempt: int, checkpoint: Any) -> None:
        self.checkpoints.append(checkpoint)

    def save_shared(self, task_id: int, attempt: int, shared: dict[str, Any]) -> None:
        self.shared.append(shared)

    def log(self, task_id: int, attempt: int, level: int, message: str) -> None:
        self.logs.append((level, message))


def make_ctx(sink: RecordingSink, task_id: int = 1, checkpoint: Any = None) -> Context:
    return Context(
        task_id=task_id, task_name="demo", attempt=1, group="default", args=[], kwargs={},
        checkpoint=checkpoint, shared={}, sink=sink,
    )  # fmt: skip


def run(
    kind: ExecutorKind,
    fn: Callable[..., Any],
    *args: Any,
    timeout: float | None = None,
    grace: float = 0.3,
    cancel_after: float | None = None,
    ctx: Context | None = None,
) -> tuple[RunResult, RecordingSink, Context, float]:
    """Execute `fn` in a fresh loop; cancel it from another thread after `cancel_after` s."""
    sink = RecordingSink()
    ctx = ctx or make_ctx(sink)
    if cancel_after is not None:
        timer = threading.Timer(cancel_after, ctx.request_cancel)
        timer.start()
    start = time.monotonic()
    result = asyncio.run(execute(kind, fn, ctx, list(args), {}, timeout=timeout, grace=grace))
    elapsed = time.monotonic() - start
    if cancel_after is not None:
        timer.cancel()
    return result, sink, ctx, elapsed


# --- handlers: a sync one for thread and process, an async one for async ----------------------


def add(ctx: Context, a: int, b: int) -> int:
    return a + b


async def add_async(ctx: Context, a: int, b: int) -> int:
    await asyncio.sleep(0)
    return a + b


def explode(ctx: Context) -> None:
    raise ValueError("boom")


async def explode_async(ctx: Context) -> None:
    await asyncio.sleep(0)
    raise ValueError("boom")


def spin(ctx: Context) -> None:
    """Ignores cancellation; short sleeps so an injected exception can land between them."""
    while True:
        time.sleep(0.01)


async def spin_async(ctx: Context) -> None:
    while True:
        await asyncio.sleep(0.01)


def cooperate(ctx: Context) -> None:
    while True:
        if ctx.wait_cancelled(0.01):
            ctx.save_checkpoint("stopping")
            ctx.raise_if_cancelled()


async def cooperate_async(ctx: Context) -> None:
    while True:
        ctx.raise_if_cancelled()
        await asyncio.sleep(0.01)


def record(ctx: Context) -> str:
    ctx.save_checkpoint({"step": 1})
    ctx.set_shared("query_id", "q-42")
    ctx.logger.info("hello %s", "there")
    return "ok"


async def record_async(ctx: Context) -> str:
    await asyncio.sleep(0)
    return record(ctx)


SYNC_OR_ASYNC: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
    "add": (add, add_async),
    "explode": (explode, explode_async),
    "spin": (spin, spin_async),
    "cooperate": (cooperate, cooperate_async),
    "record": (record, record_async),
}


def handler(kind: ExecutorKind, name: str) -> Callable[..., Any]:
    sync, coroutine = SYNC_OR_ASYNC[name]
    return coroutine if kind == "async" else sync


# --- every kind -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_success_returns_the_value(kind: ExecutorKind) -> None:
    result, *_ = run(kind, handler(kind, "add"), 2, 3)
    assert result == RunResult("succeeded", value=5)


@pytest.mark.parametrize("kind", KINDS)
def test_exception_fails_with_type_message_and_traceback(kind: ExecutorKind) -> None:
    result, *_ = run(kind, handler(kind, "explode"))
    assert result.outcome == "failed"
    assert result.error == "ValueError: boom"
    assert result.traceback is not None
    assert "ValueError: boom" in result.traceback
    assert "explode" in result.traceback


@pytest.mark.parametrize("kind", KINDS)
def test_timeout_stops_the_handler(kind: ExecutorKind) -> None:
    result, _, _, elapsed = run(kind, handler(kind, "spin"), timeout=0.3)
    assert result.outcome == "timed_out"
    assert result.error is not None
    assert result.error.startswith("TaskTimeout: ")
    assert elapsed < 0.3 + SLACK


@pytest.mark.parametrize("kind", KINDS)
def test_cooperative_cancel(kind: ExecutorKind) -> None:
    # A long grace: a cooperative handler must stop well before it runs out.
    result, sink, _, elapsed = run(kind, handler(kind, "cooperate"), grace=30, cancel_after=0.2)
    assert result.outcome == "cancelled"
    assert result.error is not None
    assert result.error.startswith("TaskCancelled: ")
    assert elapsed < 0.2 + SLACK
    if kind != "async":  # the async task is cancelled outright
        assert sink.checkpoints == ["stopping"]


@pytest.mark.parametrize("kind", KINDS)
def test_cancel_stops_a_handler_that_ignores_it(kind: ExecutorKind) -> None:
    result, _, _, elapsed = run(kind, handler(kind, "spin"), grace=0.3, cancel_after=0.2)
    assert result.outcome == "cancelled"
    assert elapsed < 0.5 + SLACK


@pytest.mark.parametrize("kind", KINDS)
def test_checkpoint_shared_and_log_reach_the_sink(kind: ExecutorKind) -> None:
    result, sink, ctx, _ = run(kind, handler(kind, "record"))
    assert result == RunResult("succeeded", value="ok")
    assert sink.checkpoints == [{"step": 1}]
    assert sink.shared == [{"query_id": "q-42"}]
    assert (logging.INFO, "hello there") in sink.logs
    assert ctx.checkpoint == {"step": 1}
    assert ctx.shared == {"query_id": "q-42"}


@pytest.mark.parametrize("kind", KINDS)
def test_cancel_requested_before_start_does_not_run(kind: ExecutorKind) -> None:
    sink = RecordingSink()
    ctx = make_ctx(sink)
    ctx.request_cancel()
    result, *_ = run(kind, handler(kind, "record"), ctx=ctx)
    assert result.outcome == "cancelled"
    assert sink.checkpoints == []


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ConfigError):
        run("fiber", add, 1, 2)  # type: ignore[arg-type]


def test_thread_and_async_tasks_run_concurrently() -> None:
    def nap(ctx: Context) -> int:
        time.sleep(0.5)
        return ctx.task_id

    async def nap_async(ctx: Context) -> int:
        await asyncio.sleep(0.5)
        return ctx.task_id

    async def main() -> list[RunResult]:
        sink = RecordingSink()
        runs = [execute("thread", nap, make_ctx(sink, i), [], {}, timeout=10) for i in range(20)]
        runs += [
            execute("async", nap_async, make_ctx(sink, i), [], {}, timeout=10)
            for i in range(20, 40)
        ]
        return await asyncio.gather(*runs)

    start = time.monotonic()
    results = asyncio.run(main())
    elapsed = time.monotonic() - start
    assert [r.value for r in results] == list(range(40))
    assert elapsed < 5  # one after the other would take 20 s


# --- thread -----------------------------------------------------------------------------------


def test_thread_cancel_raises_task_cancelled_inside_the_handler() -> None:
    seen: list[str] = []

    def stubborn(ctx: Context) -> None:
        try:
            spin(ctx)
        except BaseException as exc:
            seen.append(type(exc).__name__)
            raise

    result, *_ = run("thread", stubborn, grace=0.2, cancel_after=0.1)
    assert result.outcome == "cancelled"
    assert seen == ["TaskCancelled"]


def test_thread_timeout_raises_task_timeout_inside_the_handler() -> None:
    seen: list[str] = []

    def stubborn(ctx: Context) -> None:
        try:
            spin(ctx)
        except BaseException as exc:
            seen.append(type(exc).__name__)
            raise

    result, *_ = run("thread", stubborn, timeout=0.2)
    assert result.outcome == "timed_out"
    assert seen == ["TaskTimeout"]


def test_thread_stuck_in_c_code_is_abandoned_at_its_deadline() -> None:
    result, _, _, elapsed = run("thread", lambda ctx: time.sleep(3), timeout=0.2, grace=0.2)
    assert result.outcome == "timed_out"
    assert result.error is not None
    assert "abandoned" in result.error
    assert elapsed < 0.4 + SLACK


# --- process ----------------------------------------------------------------------------------


def checkpoint_then_hang(ctx: Context) -> None:
    ctx.save_checkpoint("before")
    time.sleep(60)


def many_checkpoints(ctx: Context) -> int:
    for i in range(200):
        ctx.save_checkpoint(i)
    return 200


def test_process_forwards_a_checkpoint_saved_right_before_the_kill() -> None:
    result, sink, ctx, elapsed = run("process", checkpoint_then_hang, timeout=0.5)
    assert result.outcome == "timed_out"
    assert sink.checkpoints == ["before"]
    assert ctx.checkpoint == "before"
    assert elapsed < 0.5 + SLACK


def test_process_forwards_messages_in_order() -> None:
    result, sink, *_ = run("process", many_checkpoints)
    assert result.value == 200
    assert sink.checkpoints == list(range(200))


def test_process_kills_a_handler_that_ignores_cancel() -> None:
    result, _, _, elapsed = run("process", lambda ctx: time.sleep(60), grace=0.3, cancel_after=0.2)
    assert result.outcome == "cancelled"
    assert result.error is not None
    assert "killed" in result.error
    assert elapsed < 0.5 + SLACK


def test_process_result_that_is_not_json_fails() -> None:
    result, *_ = run("process", lambda ctx: {1, 2})
    assert result.outcome == "failed"
    assert result.error is not None
    assert "JSON" in result.error


def test_process_result_is_json_round_tripped() -> None:
    result, *_ = run("process", lambda ctx: (1, {"a": None}))
    assert result == RunResult("succeeded", value=[1, {"a": None}])


def test_process_that_exits_without_a_result_fails() -> None:
    result, *_ = run("process", lambda ctx: os._exit(3))
    assert result.outcome == "failed"
    assert result.error is not None
    assert "exited with code 3" in result.error


def test_process_killed_by_a_signal_fails_naming_it() -> None:
    result, *_ = run("process", lambda ctx: os.kill(os.getpid(), signal.SIGKILL))
    assert result.outcome == "failed"
    assert result.error is not None
    assert "SIGKILL" in result.error


def test_process_runs_a_coroutine_handler() -> None:
    result, sink, *_ = run("process", record_async)
    assert result == RunResult("succeeded", value="ok")
    assert sink.checkpoints == [{"step": 1}]


def test_process_child_starts_from_the_parents_checkpoint() -> None:
    sink = RecordingSink()
    ctx = make_ctx(sink, checkpoint={"done": 7})
    result, *_ = run("process", lambda ctx: ctx.checkpoint, ctx=ctx)
    assert result == RunResult("succeeded", value={"done": 7})


def test_process_tasks_run_concurrently() -> None:
    def nap(ctx: Context) -> int:
        time.sleep(0.5)
        return ctx.task_id

    async def main() -> list[RunResult]:
        sink = RecordingSink()
        runs = [execute("process", nap, make_ctx(sink, i), [], {}, timeout=10) for i in range(4)]
        return await asyncio.gather(*runs)

    start = time.monotonic()
    results = asyncio.run(main())
    assert [r.value for r in results] == [0, 1, 2, 3]
    assert time.monotonic() - start < 0.5 * 4
