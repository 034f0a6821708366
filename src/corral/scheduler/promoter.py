"""Promoter: raises the level of ready tasks whose promote_at has come, per their ageing."""

from __future__ import annotations

from ..aging import from_json
from ..codec import loads
from ..model import LevelChange
from ..store import Store
from ..store.contract import LevelParams


def promote_due(store: Store, now: float, batch: int = 1000) -> int:
    """Recompute the level of up to `batch` due tasks; return how many changed. Cost follows the
    promotions due, never the backlog."""
    due = store.task_fetch_promotable(now, batch)
    if not due:
        return 0
    changes = []
    for task in due:
        aging = from_json(loads(task.aging))
        waited = now - task.ready_at
        level = max(task.level, aging.level(task.priority, waited))
        next_wait = aging.next_change(task.priority, waited)
        changes.append(
            LevelChange(task.id, level, None if next_wait is None else task.ready_at + next_wait)
        )
    store.task_set_levels(LevelParams(changes))
    return len(changes)
