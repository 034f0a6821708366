"""The autoscaling signal, `corral_desired_workers{pool}`: the worker slots the admission policy
could use now. It comes from the policy itself (`admission.admissible`, the predicates of
`decide`), asked what it would admit if every pool had unlimited slots, on a snapshot read the
way the dispatcher reads its own: the slots held, the best groups' first ready tasks, the
settings and token buckets they draw on. So a backlog that one group's cap, a rate limit or an
exclusive step holds back asks for no more workers than can take it.

Cost: the dispatcher's reads for HEADS_GROUPS groups per pool, plus the configured groups and the
buckets of the rate-limited groups with ready tasks; never the backlog's tasks."""

from __future__ import annotations

from collections.abc import Mapping

from ..admission import admissible
from ..model import DEFAULTS_GROUP, GroupConfig, HeadsWanted
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
    ready: Mapping[tuple[str, str], int],
    configs: Mapping[str, GroupConfig],
) -> dict[str, int]:
    """Per pool: slots held now plus what the policy could admit with unlimited slots. `ready`:
    ready tasks per (pool, group) (the read side's counts); `configs`: the configured groups."""
    load = store.dispatch_load(now)
    pools = sorted({pool for pool, _ in ready})
    wants = [HeadsWanted(pool, groups=HEADS_GROUPS, tasks=2 * HEADS_GROUPS) for pool in pools]
    heads = store.dispatch_heads(wants, blocked_groups(load), now) if wants else NO_HEADS
    configured = {n: c for n, c in configs.items() if n != DEFAULTS_GROUP}
    # capacity: its order only (the pools' slots are taken as unlimited by admissible)
    snapshot = snapshot_of(load, heads, configured)
    keys = sorted(
        {
            group_bucket(g)
            for _, g in ready
            if (snapshot.groups.get(g) or load.defaults).rate_limit is not None
        }
        - set(snapshot.buckets)
    )
    if keys:
        snapshot = snapshot_of(load, heads, configured, store.bucket_get_many(keys))
    extra = admissible(snapshot, ready, now)
    names = set(pools) | set(load.active_by_pool) | set(load.capacity)
    return {p: load.active_by_pool.get(p, 0) + extra.get(p, 0) for p in sorted(names)}
