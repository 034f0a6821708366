"""Submit ids on PostgreSQL: what a submit call stored, recorded in its own transaction, so a
retried call returns it instead of storing it again (see corral.submit_ids)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg

from ...model import Submitted
from . import queries as q


def recorded(conn: psycopg.Connection[Any], submit_id: str | None) -> tuple[Any, ...] | None:
    """What a submit call recorded under `submit_id` (its task ids, its workflow's), if any."""
    return None if submit_id is None else conn.execute(q.FIND_SUBMIT, (submit_id,)).fetchone()


def record(
    conn: psycopg.Connection[Any],
    submit_id: str | None,
    results: list[Submitted],
    workflow_id: int | None,
    now: float,
) -> list[Submitted]:
    """Record a submit call's tasks under its submit id, in its transaction."""
    if submit_id is not None:
        params = {"submit_id": submit_id, "task_ids": array_text(r.id for r in results),
                  "workflow_id": workflow_id, "now": now}  # fmt: skip
        conn.execute(q.RECORD_SUBMIT, params)
    return results


def array_text(items: Iterable[int | str]) -> str:
    """An array of ids, or of words that need no quoting (states), as PostgreSQL reads it from
    text (`{1,2,3}`): psycopg dumps a list an element at a time, five times slower for a bulk
    submit's thousands."""
    return "{" + ",".join(map(str, items)) + "}"
