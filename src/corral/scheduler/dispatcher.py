"""Dispatcher: admits ready tasks into their pools by the admission policy."""

from __future__ import annotations

from ..admission import decide
from ..store import Store


def dispatch(
    store: Store, now: float, prefetch: int, window: int = 500, prefetch_ratio: float = 0.0
) -> int:
    """Admit what the policy decides from a fresh snapshot; return how many were admitted."""
    snapshot = store.dispatch_snapshot(now, per_pool=window)
    decisions = decide(snapshot, prefetch, prefetch_ratio)
    if not decisions:
        return 0
    return len(store.task_admit_many([d.task_id for d in decisions], now))
