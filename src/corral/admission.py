"""The admission policy: which ready tasks enter their pool now. Pure: a snapshot in, decisions
out, so it is property-tested on its own.

Per pool, while it has a free slot: take the highest level that has an eligible task; among the
groups with a task at that level, the one holding the fewest slots per unit of weight (ties: the
one whose head waited longest); that group's oldest task at that level. A group at its cap is not
eligible. Each admission counts at once against the group, so shares stay within one slot.
"""

from __future__ import annotations

import math
from collections import defaultdict, deque
from dataclasses import dataclass

from .model import DispatchSnapshot, GroupConfig, ReadyTask


@dataclass(frozen=True)
class Decision:
    task_id: int
    pool: str
    group: str
    level: int


def free_slots(
    snapshot: DispatchSnapshot, prefetch: int, prefetch_ratio: float = 0.0
) -> dict[str, int]:
    """Slots each pool can take now: live capacity plus a prefetch (`prefetch` tasks, or
    `prefetch_ratio` times the capacity if more), less what it holds. The prefetch keeps
    workers from idling between rounds; it is bounded, since an admitted task has its place."""
    return {
        pool: max(
            0,
            capacity
            + max(prefetch, math.ceil(capacity * prefetch_ratio))
            - snapshot.active_by_pool.get(pool, 0),
        )
        for pool, capacity in snapshot.capacity.items()
    }


def decide(
    snapshot: DispatchSnapshot, prefetch: int = 0, prefetch_ratio: float = 0.0
) -> list[Decision]:
    """The tasks to admit, in admission (= claim) order."""
    held = dict(snapshot.active_by_group)
    decisions: list[Decision] = []
    by_pool: dict[str, list[ReadyTask]] = defaultdict(list)
    for task in snapshot.ready:
        by_pool[task.pool].append(task)
    for pool, slots in free_slots(snapshot, prefetch, prefetch_ratio).items():
        if slots and by_pool.get(pool):
            decisions.extend(_fill_pool(pool, slots, by_pool[pool], snapshot.groups, held))
    return decisions


def _fill_pool(
    pool: str,
    slots: int,
    ready: list[ReadyTask],
    groups: dict[str, GroupConfig],
    held: dict[str, int],
) -> list[Decision]:
    queues: dict[str, deque[ReadyTask]] = defaultdict(deque)
    for task in sorted(ready, key=lambda t: (-t.level, t.ready_at, t.id)):
        queues[task.group].append(task)
    decisions: list[Decision] = []
    while len(decisions) < slots:
        group = _next_group(queues, groups, held)
        if group is None:
            break
        task = queues[group].popleft()
        held[group] = held.get(group, 0) + 1
        decisions.append(Decision(task.id, pool, group, task.level))
    return decisions


def _next_group(
    queues: dict[str, deque[ReadyTask]], groups: dict[str, GroupConfig], held: dict[str, int]
) -> str | None:
    eligible = [
        g for g, queue in queues.items() if queue and not at_cap(groups.get(g), held.get(g, 0))
    ]
    if not eligible:
        return None
    top = max(queues[g][0].level for g in eligible)
    contenders = [g for g in eligible if queues[g][0].level == top]
    return min(
        contenders,
        key=lambda g: (
            held.get(g, 0) / _weight(groups.get(g)),
            queues[g][0].ready_at,
            queues[g][0].id,
        ),
    )


def at_cap(config: GroupConfig | None, held: int) -> bool:
    return config is not None and config.max_parallel is not None and held >= config.max_parallel


def _weight(config: GroupConfig | None) -> float:
    return config.weight if config is not None else 1.0


__all__ = ["Decision", "at_cap", "decide", "free_slots"]
