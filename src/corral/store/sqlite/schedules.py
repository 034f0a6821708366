"""Schedules, fires and backfills on SQLite (the contract: store/contract/schedules.py). A batch
of fires is one immediate transaction: the fire rows, their tasks, the schedule's cursor."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import Any

from ...codec import dumps
from ...model import NewTask, NewWorkflow, Submitted
from ..contract.schedules import (
    BackfillRow,
    Fire,
    FireBatch,
    FireResult,
    FireRow,
    NewBackfill,
    ScheduleRow,
    ScheduleSave,
)
from ..schedule_rows import backfill_row, counts, fire_params, fire_row, schedule_row
from . import queries as q
from . import schedule_queries as sq


class SQLiteSchedules:
    """Mixed into SQLiteStore."""

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def _read(self, sql: str, params: Any = ()) -> list[Any]:
        raise NotImplementedError

    def _insert(
        self, tx: sqlite3.Connection, tasks: Sequence[NewTask], now: float
    ) -> list[Submitted]:
        raise NotImplementedError

    def schedule_save(
        self, rows: Sequence[ScheduleSave], removed: Sequence[str], now: float
    ) -> None:
        with self._write() as tx:
            for row in rows:
                params = {
                    "name": row.name,
                    "spec": row.spec,
                    "target": row.target,
                    "options": row.options,
                    "cursor_at": row.cursor_at,
                    "next_at": row.next_at,
                    "reset": row.reset,
                    "now": now,
                }
                tx.execute(sq.SAVE_SCHEDULE, params)
            for name in removed:
                tx.execute(sq.REMOVE_SCHEDULE, {"name": name, "now": now})

    def schedule_list(self, names: Sequence[str] | None = None) -> list[ScheduleRow]:
        if names is None:
            return [schedule_row(r) for r in self._read(sq.LIST_SCHEDULES)]
        rows = self._read(sq.NAMED_SCHEDULES, {"names": dumps(list(names))})
        return [schedule_row(r) for r in rows]

    def schedule_due(self, now: float, limit: int) -> list[ScheduleRow]:
        due = self._read(sq.DUE_SCHEDULES, {"now": now, "limit": limit})
        pending = self._read(sq.PENDING_SCHEDULES, {"limit": limit})
        seen = {r[0] for r in due}
        return [schedule_row(r) for r in [*due, *(p for p in pending if p[0] not in seen)]]

    def schedule_set_paused(self, name: str, paused: bool, now: float) -> bool:
        with self._write() as tx:
            params = {"name": name, "paused": paused, "now": now}
            return tx.execute(sq.SET_PAUSED, params).fetchone() is not None

    def schedule_trigger(self, name: str, now: float) -> bool:
        with self._write() as tx:
            return tx.execute(sq.TRIGGER, {"name": name, "now": now}).fetchone() is not None

    def schedule_fire(self, batch: FireBatch) -> list[FireResult]:
        with self._write() as tx:
            results = self._fire_all(tx, batch)
            tx.execute(sq.COUNT_FIRES, counts(batch, results))
            name, now, move = batch.schedule_name, batch.now, batch.move
            if move is not None:
                if move.cursor_at is not None:
                    tx.execute(
                        sq.MOVE_CURSOR,
                        {
                            "name": name,
                            "cursor_at": move.cursor_at,
                            "next_at": move.next_at,
                            "now": now,
                        },
                    )
                if move.set_buffered:
                    tx.execute(sq.SET_BUFFERED, {"name": name, "buffered_at": move.buffered_at})
                if move.trigger_done is not None:
                    tx.execute(sq.TRIGGER_DONE, {"name": name, "trigger_at": move.trigger_done})
            if (fill := batch.backfill) is not None:
                tx.execute(
                    sq.MOVE_BACKFILL,
                    {
                        "id": fill.backfill_id,
                        "cursor_at": fill.cursor_at,
                        "made": fill.made,
                        "done": fill.done,
                        "now": now,
                    },
                )
            return results

    def _fire_all(self, tx: sqlite3.Connection, batch: FireBatch) -> list[FireResult]:
        """Each fire's row unless stored; the tasks of the task fires in one insert (a batch of
        a backfill is one round of statements, not one per fire); a workflow fire's its own."""
        results: list[FireResult | None] = []
        plain: list[tuple[int, int, Fire]] = []
        for index, fire in enumerate(batch.fires):
            params = fire_params(batch, fire)
            row = tx.execute(sq.RERUN_FIRE if fire.rerun else sq.INSERT_FIRE, params).fetchone()
            if row is None:
                results.append(FireResult(fire.logical_time, created=False))
            elif fire.workflow is not None:
                results.append(self._fire_workflow(tx, batch, fire, fire.workflow, int(row[0])))
            else:
                results.append(None)
                plain.append((index, int(row[0]), fire))
        tasks = [task for _, _, fire in plain for task in fire.tasks]
        submitted = self._insert(tx, tasks, batch.now) if tasks else []
        offset, updates = 0, []
        for index, fire_id, fire in plain:
            ids = [s.id for s in submitted[offset : offset + len(fire.tasks)]]
            offset += len(fire.tasks)
            results[index] = FireResult(fire.logical_time, True, ids, None)
            updates.append({"id": fire_id, "task_ids": dumps(ids), "workflow_id": None})
        if updates:
            tx.cursor().executemany(sq.SET_FIRE_TASKS, updates)
        return [r for r in results if r is not None]

    def _fire_workflow(
        self,
        tx: sqlite3.Connection,
        batch: FireBatch,
        fire: Fire,
        workflow: NewWorkflow,
        fire_id: int,
    ) -> FireResult:
        wf = {"name": workflow.name, "group_name": workflow.group, "now": batch.now}
        workflow_id = int(tx.execute(q.INSERT_WORKFLOW, wf).fetchone()[0])
        tasks = [replace(t, workflow_id=workflow_id) for t in fire.tasks]
        submitted = self._insert(tx, tasks, batch.now) if tasks else []
        links = [(workflow_id, s.id) for s in submitted if not s.created]
        tx.executemany(q.INSERT_WORKFLOW_LINK, links)
        ids = [s.id for s in submitted]
        params = {"id": fire_id, "task_ids": dumps(ids), "workflow_id": workflow_id}
        tx.execute(sq.SET_FIRE_TASKS, params)
        return FireResult(fire.logical_time, True, ids, workflow_id)

    def fire_list(self, schedule_name: str, before: float | None, limit: int) -> list[FireRow]:
        params = {"name": schedule_name, "before": before, "limit": limit}
        return [fire_row(r) for r in self._read(sq.LIST_FIRES, params)]

    def fire_get(self, schedule_name: str, logical_time: float) -> FireRow | None:
        rows = self._read(sq.GET_FIRE, {"name": schedule_name, "logical_time": logical_time})
        return fire_row(rows[0]) if rows else None

    def fire_last_run(self, schedule_name: str) -> FireRow | None:
        rows = self._read(sq.LAST_RUN, {"name": schedule_name})
        return fire_row(rows[0]) if rows else None

    def backfill_create(self, backfill: NewBackfill) -> int:
        params = {
            "schedule_name": backfill.schedule_name,
            "start_at": backfill.start_at,
            "end_at": backfill.end_at,
            "reprocess": backfill.reprocess,
            "forward": backfill.forward,
            "group_name": backfill.group,
            "total": backfill.total,
            "now": backfill.now,
        }
        with self._write() as tx:
            return int(tx.execute(sq.INSERT_BACKFILL, params).fetchone()[0])

    def backfill_get(self, backfill_id: int) -> BackfillRow | None:
        rows = self._read(sq.GET_BACKFILL, {"id": backfill_id})
        return backfill_row(rows[0]) if rows else None

    def backfill_list(self, running_only: bool) -> list[BackfillRow]:
        return [
            backfill_row(r) for r in self._read(sq.LIST_BACKFILLS, {"running_only": running_only})
        ]

    def backfill_set_state(
        self, backfill_id: int, from_states: Sequence[str], state: str, now: float
    ) -> bool:
        params = {
            "id": backfill_id,
            "from_states": dumps(list(from_states)),
            "state": state,
            "now": now,
        }
        with self._write() as tx:
            return tx.execute(sq.SET_BACKFILL_STATE, params).fetchone() is not None

    def backfill_fires(self, backfill_id: int) -> list[FireRow]:
        return [fire_row(r) for r in self._read(sq.BACKFILL_FIRES, {"id": backfill_id})]
