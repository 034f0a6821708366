"""Schedules, fires and backfills (the contract: store/contract/schedules.py), once for both
backends: each method runs its backend's named statement (`schedule_queries.X`) and shapes the
rows the same way. A backend adds a few hooks: its schedule write transaction, how a list
parameter is passed, how a workflow's links are inserted, and its batch insert of tasks.

A batch of fires is one transaction (durable on PostgreSQL, immediate on SQLite): the fire rows,
their tasks, the schedule's cursor. Two leaders racing for one logical time meet on the fires'
unique key: the second waits for the first to commit, then writes nothing."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from types import ModuleType
from typing import Any, Generic, Protocol, TypeVar

from ..codec import dumps
from ..model import NewTask, NewWorkflow, Submitted
from .contract.schedules import (
    BackfillRow,
    Fire,
    FireBatch,
    FireResult,
    FireRow,
    NewBackfill,
    ScheduleRow,
    ScheduleSave,
)
from .schedule_rows import (
    backfill_row,
    counts,
    fire_params,
    fire_row,
    fires_param,
    schedule_row,
)


class Cursor(Protocol):
    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def executemany(self, query: str, params_seq: Any, /) -> object: ...


class Connection(Protocol):
    """What the schedule code asks of a backend's connection (sqlite3 and psycopg alike)."""

    def execute(self, query: str, params: Any = ..., /) -> Cursor: ...

    def cursor(self) -> Cursor: ...


C = TypeVar("C", bound=Connection)


class NamedSchedules(Generic[C]):
    """The ScheduleStore methods, mixed into each backend's store through its schedules.py,
    which gives the hooks below (C: the backend's connection)."""

    queries: ModuleType
    """The backend's module of named statements (INSERT_WORKFLOW)."""
    schedule_queries: ModuleType
    """The backend's module of the schedules' named statements."""

    def _read(self, query: str, params: Any = None) -> list[Any]:
        raise NotImplementedError

    def _insert(self, tx: C, tasks: Sequence[NewTask], now: float) -> list[Submitted]:
        """The backend's batch insert of tasks (the store's own)."""
        raise NotImplementedError

    def _schedule_tx(self, durable: bool = False) -> AbstractContextManager[C]:
        """A write transaction; `durable`: flushed before its commit returns (PostgreSQL)."""
        raise NotImplementedError

    def _list_param(self, values: Sequence[str]) -> Any:
        """A list parameter, as the backend's statements take it."""
        raise NotImplementedError

    def _link_workflow(self, tx: C, workflow_id: int, task_ids: list[int]) -> None:
        """Link a workflow to the tasks that a dedup key put in it from outside."""
        raise NotImplementedError

    def schedule_save(
        self, rows: Sequence[ScheduleSave], removed: Sequence[str], now: float
    ) -> None:
        sq = self.schedule_queries
        with self._schedule_tx() as tx:
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
        sq = self.schedule_queries
        if names is None:
            return [schedule_row(r) for r in self._read(sq.LIST_SCHEDULES)]
        rows = self._read(sq.NAMED_SCHEDULES, {"names": self._list_param(names)})
        return [schedule_row(r) for r in rows]

    def schedule_due(self, now: float, limit: int) -> list[ScheduleRow]:
        sq = self.schedule_queries
        due = self._read(sq.DUE_SCHEDULES, {"now": now, "limit": limit})
        pending = self._read(sq.PENDING_SCHEDULES, {"limit": limit})
        seen = {r[0] for r in due}
        return [schedule_row(r) for r in [*due, *(p for p in pending if p[0] not in seen)]]

    def schedule_set_paused(self, name: str, paused: bool, now: float) -> bool:
        with self._schedule_tx() as tx:
            params = {"name": name, "paused": paused, "now": now}
            return tx.execute(self.schedule_queries.SET_PAUSED, params).fetchone() is not None

    def schedule_trigger(self, name: str, now: float) -> bool:
        with self._schedule_tx() as tx:
            params = {"name": name, "now": now}
            return tx.execute(self.schedule_queries.TRIGGER, params).fetchone() is not None

    def schedule_fire(self, batch: FireBatch) -> list[FireResult]:
        sq = self.schedule_queries
        with self._schedule_tx(durable=True) as tx:
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

    def _fire_all(self, tx: C, batch: FireBatch) -> list[FireResult]:
        """The fire rows not stored yet in one insert (a rerun's row is updated), the tasks of
        the task fires in one insert (their rows name the schedule), then each fire's task ids:
        a batch of a backfill is one round of statements, not one per fire; a workflow fire
        makes its workflow on its own."""
        sq = self.schedule_queries
        fresh = [fire for fire in batch.fires if not fire.rerun]
        made: dict[float, int] = {}
        if fresh:
            params = {"schedule_name": batch.schedule_name, "now": batch.now,
                      "fires": fires_param(fresh)}  # fmt: skip
            rows = tx.execute(sq.INSERT_FIRES, params).fetchall()
            made = {float(logical): int(fire_id) for fire_id, logical in rows}
        results: list[FireResult | None] = []
        plain: list[tuple[int, int, Fire]] = []
        for index, fire in enumerate(batch.fires):
            if fire.rerun:
                row = tx.execute(sq.RERUN_FIRE, fire_params(batch, fire)).fetchone()
                fire_id = None if row is None else int(row[0])
            else:
                fire_id = made.pop(float(fire.logical_time), None)  # a time twice: once
            if fire_id is None:
                results.append(FireResult(fire.logical_time, created=False))
            elif fire.workflow is not None:
                results.append(self._fire_workflow(tx, batch, fire, fire.workflow, fire_id))
            else:
                results.append(None)
                plain.append((index, fire_id, fire))
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
        self._mark_given(tx, batch.schedule_name, submitted)
        return [r for r in results if r is not None]

    def _mark_given(self, tx: C, schedule_name: str, submitted: Sequence[Submitted]) -> None:
        """Name the schedule on the tasks a dedup key gave the fires from outside (none, mostly:
        the tasks a fire inserts carry it in their rows)."""
        given = [s.id for s in submitted if not s.created]
        if given:
            params = {"schedule_name": schedule_name, "task_ids": dumps(given)}
            tx.execute(self.schedule_queries.MARK_FIRE_TASKS, params)

    def _fire_workflow(
        self, tx: C, batch: FireBatch, fire: Fire, workflow: NewWorkflow, fire_id: int
    ) -> FireResult:
        wf = {"name": workflow.name, "group_name": workflow.group, "now": batch.now}
        made = tx.execute(self.queries.INSERT_WORKFLOW, wf).fetchone()
        assert made is not None
        workflow_id = int(made[0])
        tasks = [replace(t, workflow_id=workflow_id) for t in fire.tasks]
        submitted = self._insert(tx, tasks, batch.now) if tasks else []
        self._link_workflow(tx, workflow_id, [s.id for s in submitted if not s.created])
        ids = [s.id for s in submitted]
        params = {"id": fire_id, "task_ids": dumps(ids), "workflow_id": workflow_id}
        tx.execute(self.schedule_queries.SET_FIRE_TASKS, params)
        self._mark_given(tx, batch.schedule_name, submitted)
        return FireResult(fire.logical_time, True, ids, workflow_id)

    def fire_list(self, schedule_name: str, before: float | None, limit: int) -> list[FireRow]:
        params = {"name": schedule_name, "before": before, "limit": limit}
        return [fire_row(r) for r in self._read(self.schedule_queries.LIST_FIRES, params)]

    def fire_get(self, schedule_name: str, logical_time: float) -> FireRow | None:
        params = {"name": schedule_name, "logical_time": logical_time}
        rows = self._read(self.schedule_queries.GET_FIRE, params)
        return fire_row(rows[0]) if rows else None

    def fire_last_run(self, schedule_name: str) -> FireRow | None:
        rows = self._read(self.schedule_queries.LAST_RUN, {"name": schedule_name})
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
        with self._schedule_tx() as tx:
            row = tx.execute(self.schedule_queries.INSERT_BACKFILL, params).fetchone()
            assert row is not None
            return int(row[0])

    def backfill_get(self, backfill_id: int) -> BackfillRow | None:
        rows = self._read(self.schedule_queries.GET_BACKFILL, {"id": backfill_id})
        return backfill_row(rows[0]) if rows else None

    def backfill_list(self, running_only: bool) -> list[BackfillRow]:
        params = {"running_only": running_only}
        return [backfill_row(r) for r in self._read(self.schedule_queries.LIST_BACKFILLS, params)]

    def backfill_set_state(
        self, backfill_id: int, from_states: Sequence[str], state: str, now: float
    ) -> bool:
        params = {
            "id": backfill_id,
            "from_states": self._list_param(from_states),
            "state": state,
            "now": now,
        }
        with self._schedule_tx() as tx:
            return (
                tx.execute(self.schedule_queries.SET_BACKFILL_STATE, params).fetchone() is not None
            )

    def backfill_fires(self, backfill_id: int) -> list[FireRow]:
        rows = self._read(self.schedule_queries.BACKFILL_FIRES, {"id": backfill_id})
        return [fire_row(r) for r in rows]
