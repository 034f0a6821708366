"""Time slices on both backends: a long task runs across slices from its own checkpoint; slices
are not retries and keep the task's place; a task whose checkpoint stops moving is flagged, then
failed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from conftest import T0, Services, register_worker, start, submit

import corral
from corral.lifecycle import State
from corral.model import AttemptReport, LevelChange
from corral.store import Store
from corral.store.contract import CompleteParams, LevelParams
from corral.worker.worker import WorkerConfig

STEPS = 24
STEP = 0.05


def resumable_sync(ctx: corral.Context, total: int) -> int:
    done = ctx.checkpoint or 0
    ctx.logger.info("resume at %d", done)
    while done < total:
        time.sleep(STEP)
        done += 1
        ctx.save_checkpoint(done)
    return done


async def resumable_async(ctx: corral.Context, total: int) -> int:
    done = ctx.checkpoint or 0
    ctx.logger.info("resume at %d", done)
    while done < total:
        await asyncio.sleep(STEP)
        done += 1
        ctx.save_checkpoint(done)
    return done


@pytest.mark.parametrize("executor", ["async", "process"])
def test_a_long_task_finishes_across_slices_from_its_checkpoint(
    app: corral.App, services: Callable[..., Services], executor: str
) -> None:
    handler: Any = resumable_async if executor == "async" else resumable_sync
    task = app.task(
        handler, name="long_load", max_runtime=0.25, on_timeout="continue", executor=executor
    )
    task_id = task.submit(STEPS)
    ready_at = app.get(task_id).ready_at
    services(app, worker=WorkerConfig(concurrency=2, heartbeat=0.1))
    record = app.wait(task_id, timeout=60)

    assert (record.state, record.result) == (State.SUCCEEDED, str(STEPS))
    attempts = app.store.attempt_list(task_id)
    outcomes = [a.outcome for a in attempts]
    assert len(attempts) >= 6, outcomes  # at least 5 slices, then the end
    assert outcomes == ["sliced"] * (len(attempts) - 1) + ["succeeded"]
    # Slices are not retries: the task has no retry budget, and none was used.
    assert (record.failures, record.max_retries) == (0, 0)
    # Each slice resumed where the previous one saved its checkpoint, never from the start.
    starts = [
        int(line.message.split()[-1])
        for line in app.store.log_list(task_id)
        if line.message.startswith("resume at")
    ]
    assert len(starts) == len(attempts)
    assert starts[0] == 0 and starts == sorted(starts) and len(set(starts)) == len(starts)
    # It kept its place: still ready since its first release, never sent to the back.
    assert record.ready_at == ready_at
    kinds = [e.kind for e in app.store.event_list(task_id)]
    assert "stalled" not in kinds and "retry_wait" not in kinds


def test_a_slice_keeps_the_level_and_ready_time(store: Store) -> None:
    register_worker(store)
    task_id = submit(store, max_runtime=1.0, on_timeout="continue")
    store.task_set_levels(LevelParams([LevelChange(task_id, 7, None)]))  # aged while it waited
    claim = start(store, task_id)
    report = AttemptReport(task_id, claim.attempt, "sliced", State.READY, worker_id="w1")
    assert store.task_complete_many(CompleteParams([report], T0 + 5)) == [task_id]
    record = store.task_get(task_id)
    assert record is not None
    assert (record.state, record.level, record.ready_at) == (State.READY, 7, T0)
    assert (record.failures, record.attempt) == (0, 1)


async def stuck(ctx: corral.Context) -> None:
    ctx.logger.info("no progress")
    await asyncio.sleep(30)


def test_a_task_whose_checkpoint_stops_moving_is_flagged_then_failed(
    app: corral.App, services: Callable[..., Services]
) -> None:
    task = app.task(
        stuck,
        max_runtime=0.15,
        on_timeout="continue",
        flag_stalled_after=2,
        fail_stalled_after=4,
    )
    task_id = task.submit()
    services(app, worker=WorkerConfig(concurrency=2, heartbeat=0.1))
    record = app.wait(task_id, timeout=30)

    assert record.state == State.DEAD
    assert record.error is not None
    assert "checkpoint did not change over 4 time slices" in record.error
    assert [a.outcome for a in app.store.attempt_list(task_id)] == ["sliced"] * 3 + ["stalled"]
    events = app.store.event_list(task_id)
    flags = [e for e in events if e.kind == "stalled"]
    assert [e.attempt for e in flags] == [2, 4]  # flagged at 2, and as it failed at 4
    assert events[-1].to_state == "dead"
    warnings = [ln.message for ln in app.store.log_list(task_id) if "no progress:" in ln.message]
    assert len(warnings) == 2 and "fails after 4" in warnings[0]
    assert record.stalled_slices == 4


def test_stall_options_are_checked(app: corral.App) -> None:
    with pytest.raises(corral.ConfigError, match="flag_stalled_after must be a whole number"):
        app.task(stuck, name="a", flag_stalled_after=0)
    with pytest.raises(corral.ConfigError, match="fail_stalled_after must be a whole number"):
        app.task(stuck, name="b", fail_stalled_after=-1)
    assert app.task(stuck, name="c", fail_stalled_after=None).fail_stalled_after is None
