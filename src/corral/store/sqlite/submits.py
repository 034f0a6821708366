"""Submit ids on SQLite: what a submit call stored, recorded in its own transaction, so a
retried call returns it instead of storing it again (see corral.submit_ids)."""

from __future__ import annotations

import sqlite3
from typing import Any

from ...codec import dumps, loads
from ...model import Submitted
from . import queries as q


def recorded(tx: sqlite3.Connection, submit_id: str | None) -> tuple[Any, ...] | None:
    """What a submit call recorded under `submit_id` (its task ids, its workflow's), if any."""
    row = None if submit_id is None else tx.execute(q.FIND_SUBMIT, (submit_id,)).fetchone()
    return None if row is None else (loads(row[0]), row[1])


def record(
    tx: sqlite3.Connection,
    submit_id: str | None,
    results: list[Submitted],
    workflow_id: int | None,
    now: float,
) -> list[Submitted]:
    """Record a submit call's tasks under its submit id, in its transaction."""
    if submit_id is not None:
        params = {"submit_id": submit_id, "task_ids": dumps([r.id for r in results]),
                  "workflow_id": workflow_id, "now": now}  # fmt: skip
        tx.execute(q.RECORD_SUBMIT, params)
    return results
