"""The reads the SQLite and PostgreSQL stores share: the same named statement (each backend's
`queries.X`) and the same row shape, so the code lives once."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from ..model import (
    AttemptRecord,
    Event,
    ExpiredTask,
    GroupConfig,
    LogLine,
    Promotable,
    TaskRecord,
)
from ..ratelimit import RateLimit
from .rows import group_config, rate_limits_from_rows, task_record


class NamedReads:
    queries: ModuleType
    """The backend's module of named statements."""

    def _read(self, query: str, params: Any = None) -> list[Any]:
        raise NotImplementedError

    def task_get(self, task_id: int) -> TaskRecord | None:
        rows = self._read(self.queries.GET_TASK, (task_id,))
        if not rows:
            return None
        deps = tuple(r[0] for r in self._read(self.queries.GET_DEPS, (task_id,)))
        return task_record(rows[0], deps)

    def task_next_due(self) -> float | None:
        value = self._read(self.queries.NEXT_DUE)[0][0]
        return None if value is None else float(value)

    def task_fetch_promotable(self, now: float, limit: int) -> list[Promotable]:
        rows = self._read(self.queries.FETCH_PROMOTABLE, {"now": now, "limit": limit})
        return [Promotable(*row) for row in rows]

    def task_fetch_expired(self, now: float, limit: int) -> list[ExpiredTask]:
        rows = self._read(self.queries.FETCH_EXPIRED, {"now": now, "limit": limit})
        return [
            ExpiredTask(
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                bool(r[5]),
                r[6],
                bool(r[7]),
                r[8],
                r[9],
                bool(r[10]),
                r[11],
            )
            for r in rows
        ]

    def task_fetch_cancel_requests(self, worker_id: str) -> list[int]:
        return [
            row[0] for row in self._read(self.queries.WORKER_CANCEL_REQUESTS, {"id": worker_id})
        ]

    def rate_limit_list(self) -> dict[str, RateLimit]:
        return rate_limits_from_rows(self._read(self.queries.ALL_RATE_LIMITS))

    def task_count_ahead(self, pool: str, level: int) -> int:
        return int(self._read(self.queries.COUNT_AHEAD, {"pool": pool, "level": level})[0][0])

    def group_get(self, name: str) -> GroupConfig | None:
        rows = self._read(self.queries.GET_GROUP, (name,))
        return group_config(rows[0]) if rows else None

    def event_list(self, task_id: int) -> list[Event]:
        return [Event(*row) for row in self._read(self.queries.TASK_EVENTS, (task_id,))]

    def event_fetch_after(self, after_id: int, limit: int) -> list[Event]:
        return [Event(*row) for row in self._read(self.queries.EVENTS_AFTER, (after_id, limit))]

    def attempt_list(self, task_id: int) -> list[AttemptRecord]:
        rows = self._read(self.queries.TASK_ATTEMPTS, (task_id,))
        return [AttemptRecord(*(*row[:-1], bool(row[-1]))) for row in rows]

    def log_list(self, task_id: int, attempt: int | None = None) -> list[LogLine]:
        rows = self._read(self.queries.TASK_LOGS, {"id": task_id, "attempt": attempt})
        return [LogLine(*row) for row in rows]
