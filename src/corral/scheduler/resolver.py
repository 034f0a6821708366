"""Resolver: releases waiting tasks whose delay is over and dependencies succeeded, ends those
whose dependency failed, and returns backed-off retries to the queue."""

from __future__ import annotations

from ..store import Store
from ..store.contract import DueParams


def resolve_due(store: Store, now: float, batch: int = 1000) -> int:
    """Move what is due; return how many tasks changed state. One index lookup when nothing is
    (the common case while a queue drains), instead of two writes."""
    next_due = store.task_next_due()
    if next_due is None or next_due > now:
        return 0
    due = DueParams(now, batch)
    return store.task_fail_upstream(due) + store.task_release_due(due)
