"""Rows of schedules, fires and backfills, as both backends read and write them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..codec import dumps, loads
from .contract.schedules import (
    FIRED,
    MISSED,
    SKIPPED,
    BackfillRow,
    Fire,
    FireBatch,
    FireResult,
    FireRow,
    ScheduleRow,
)

# The columns each read of schedules, fires and backfills takes, in the order of the rows'
# fields (both backends' schedule_queries.py).
SCHEDULE_FIELDS = """name, spec, target, options, paused, removed_at, cursor_at, next_at,
buffered_at, trigger_at, fired, skipped, missed, last_logical, last_outcome, created_at,
updated_at"""
FIRE_FIELDS = """schedule_name, logical_time, data_start, kind, outcome, reason, task_ids,
workflow_id, backfill_id, runs, made_at"""
BACKFILL_FIELDS = """id, schedule_name, start_at, end_at, reprocess, forward, group_name, state,
cursor_at, total, made, created_at, updated_at"""


def schedule_row(row: Sequence[Any]) -> ScheduleRow:
    values = list(row)
    values[4] = bool(values[4])
    return ScheduleRow(*values)


def fire_row(row: Sequence[Any]) -> FireRow:
    values = list(row)
    values[6] = [int(i) for i in loads(values[6])]
    return FireRow(*values)


def backfill_row(row: Sequence[Any]) -> BackfillRow:
    values = list(row)
    values[5] = bool(values[5])
    return BackfillRow(*values)


def fire_params(batch: FireBatch, fire: Fire) -> dict[str, Any]:
    return {
        "schedule_name": batch.schedule_name,
        "logical_time": fire.logical_time,
        "data_start": fire.data_start,
        "kind": fire.kind,
        "outcome": fire.outcome,
        "reason": fire.reason,
        "backfill_id": fire.backfill_id,
        "runs": 1 if fire.outcome == FIRED else 0,
        "now": batch.now,
    }


def fires_param(fires: Sequence[Fire]) -> str:
    """The fires as the backends' INSERT_FIRES takes them: a JSON array of rows, in logical time
    order."""
    return dumps(
        [
            [f.logical_time, f.data_start, f.kind, f.outcome, f.reason, f.backfill_id,
             1 if f.outcome == FIRED else 0]
            for f in sorted(fires, key=lambda f: f.logical_time)
        ]
    )  # fmt: skip


def counts(batch: FireBatch, results: Sequence[FireResult]) -> dict[str, Any]:
    """The schedule's counters after a batch: the fires written, by outcome, and the latest."""
    made = [f for f, r in zip(batch.fires, results, strict=True) if r.created]
    last = max(made, key=lambda f: f.logical_time, default=None)
    return {
        "name": batch.schedule_name,
        "fired": sum(f.outcome == FIRED for f in made),
        "skipped": sum(f.outcome == SKIPPED for f in made),
        "missed": sum(f.outcome == MISSED for f in made),
        "last": None if last is None else last.logical_time,
        "last_outcome": None if last is None else last.outcome,
        "now": batch.now,
    }
