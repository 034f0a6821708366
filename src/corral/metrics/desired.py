"""The autoscaling signal, `corral_desired_workers{pool}`: the worker slots the admission policy
could use now. It comes from the policy itself (`admission.admissible`, the predicates of
`decide`), asked what it would admit if every pool had unlimited slots, on a snapshot read the
way the dispatcher reads its own: the slots held, the best groups' first ready tasks, the
settings and token buckets they draw on. So a backlog that one group's cap, a rate limit or an
exclusive step holds back asks for no more workers than can take it.

Cost: the dispatcher's reads for HEADS_GROUPS groups per pool, the ready counts of the groups
something bounds (the rest summed per pool) and the buckets of the rate-limited ones; never the
backlog's tasks."""

from __future__ import annotations

from collections.abc import Mapping

from ..admission import admissible
from ..model import DEFAULTS_GROUP, DispatchSnapshot, GroupConfig, HeadsWanted
from ..ratelimit import group_bucket
from ..scheduler.dispatcher import NO_HEADS, blocked_groups, snapshot_of
from ..store import Store

HEADS_GROUPS = 200
"""Groups per pool whose first ready tasks are read (two each): their named rate limits and
exclusive steps count exactly; the other groups' tasks are taken to be plain (caps and group
rate limits still hold)."""


def desired_slots(
    store: Store,
    now: float,
    ready: Mapping[str, int],
    configs: Mapping[str, GroupConfig],
) -> dict[str, int]:
    """Per pool: slots held now plus what the policy could admit with unlimited slots. `ready`:
    ready tasks per pool (the read side's counts); `configs`: the configured groups.

    The policy needs a group's own ready count only where something bounds it: its cap or rate
    limit, an exclusive task holding it, or its first tasks read (their named rate limits and
    exclusive steps). The rest of a pool's ready tasks belong to groups nothing bounds, which
    `admissible` counts in full, so they are passed as one sum per pool: the counts read follow
    the bounded groups, not every group with ready tasks (unless the defaults bound every
    group: a default cap or rate limit)."""
    load = store.dispatch_load(now)
    pools = sorted(pool for pool, n in ready.items() if n > 0)
    wants = [HeadsWanted(pool, groups=HEADS_GROUPS, tasks=2 * HEADS_GROUPS) for pool in pools]
    heads = store.dispatch_heads(wants, blocked_groups(load), now) if wants else NO_HEADS
    configured = {n: c for n, c in configs.items() if n != DEFAULTS_GROUP}
    # capacity: its order only (the pools' slots are taken as unlimited by admissible)
    snapshot = snapshot_of(load, heads, configured)
    by_group = _ready_by_group(store, snapshot, ready) if pools else {}
    keys = sorted(
        {
            group_bucket(g)
            for _, g in by_group
            if (snapshot.groups.get(g) or load.defaults).rate_limit is not None
        }
        - set(snapshot.buckets)
    )
    if keys:
        snapshot = snapshot_of(load, heads, configured, store.bucket_get_many(keys))
    extra = admissible(snapshot, by_group, now)
    names = set(pools) | set(load.active_by_pool) | set(load.capacity)
    return {p: load.active_by_pool.get(p, 0) + extra.get(p, 0) for p in sorted(names)}


PLAIN = "\x00plain"
"""The group name the ready tasks of unbounded groups are summed under (no group has it)."""


def _ready_by_group(
    store: Store, snapshot: DispatchSnapshot, ready: Mapping[str, int]
) -> dict[tuple[str, str], int]:
    """Ready tasks per (pool, group) as `admissible` needs them: the bounded groups' own, and
    each pool's rest under PLAIN."""
    defaults = snapshot.defaults
    if defaults.max_parallel is not None or defaults.rate_limit is not None:
        return store.task_ready_counts(None)  # every group is bounded
    bounded = {
        name
        for name, c in snapshot.groups.items()
        if c.max_parallel is not None or c.rate_limit is not None
    }
    bounded |= snapshot.exclusive_groups | set(snapshot.active_by_group)
    bounded |= {task.group for task in snapshot.ready}
    counts = store.task_ready_counts(sorted(bounded))
    for pool, total in ready.items():
        rest = total - sum(n for (p, _), n in counts.items() if p == pool)
        if rest > 0:
            counts[(pool, PLAIN)] = rest
    return counts
