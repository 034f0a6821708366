"""Dispatcher: admits ready tasks into their pools by the admission policy.

Each round reads only what a decision needs: the slots held (bounded by capacity), then for each
pool with room its best groups by head (one index read of the per-group heads) and their first
ready tasks. Its cost follows the free slots and the groups holding slots, never the backlog or
the number of groups waiting.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..admission import Ordering, at_cap, decide, fair, free_slots
from ..lanes import TTL, lanes_to_open
from ..model import Bucket, DispatchHeads, DispatchLoad, DispatchSnapshot, GroupConfig, HeadsWanted
from ..store import Store
from ..store.contract import AdmitParams

NO_HEADS = DispatchHeads([], frozenset(), {}, {}, {})
HINTS_PER_ROUND = 5000
"""Groups whose ready tasks changed, looked up again per round (the rest wait one round)."""


def dispatch(
    store: Store,
    now: float,
    prefetch: int = 0,
    prefetch_ratio: float = 0.0,
    ordering: Ordering = fair,
) -> int:
    """Admit what the policy decides from a fresh snapshot; return how many were admitted."""
    return _round(store, now, prefetch, prefetch_ratio, ordering, lanes=False)[0]


def _round(
    store: Store,
    now: float,
    prefetch: int,
    prefetch_ratio: float,
    ordering: Ordering,
    *,
    lanes: bool,
) -> tuple[int, dict[str, int]]:
    """One round: how many it admitted, and (with `lanes`) the lanes it would open
    (corral.lanes)."""
    snapshot, slots, wants = _read(store, now, prefetch, prefetch_ratio)
    admitted: list[int] = []
    if snapshot.ready:
        admission = decide(snapshot, now, prefetch, prefetch_ratio, ordering)
        if admission.decisions:
            admitted = store.task_admit_many(
                AdmitParams(admission.task_ids, now, admission.buckets)
            )
    return len(admitted), lanes_to_open(slots, wants, snapshot, admitted) if lanes else {}


class Dispatcher:
    """The leader's dispatch service: a round of `dispatch`, and the fast lanes (corral.lanes):
    closed before the round reads the load, opened after it where it left free slots and nothing
    ready. `fast_lane=False`: every admission waits for a round."""

    name = "dispatch"
    interval = 0.0

    def __init__(
        self,
        store: Store,
        *,
        prefetch: int = 0,
        prefetch_ratio: float = 0.0,
        ordering: Ordering = fair,
        fast_lane: bool = True,
    ) -> None:
        self.store = store
        self.prefetch = prefetch
        self.prefetch_ratio = prefetch_ratio
        self.ordering = ordering
        self.fast_lane = fast_lane
        self._maybe_open = True
        """Whether a lane may be open: at start, and after a leadership change, another leader's
        may be; after a round that opened none, none is."""

    def leadership_taken(self) -> None:
        """This process leads (again): another leader may have left lanes open."""
        self._maybe_open = True

    def run(self, now: float) -> int:
        if self._maybe_open:
            self.store.lane_close()
            self._maybe_open = False
        admitted, lanes = _round(
            self.store, now, self.prefetch, self.prefetch_ratio, self.ordering,
            lanes=self.fast_lane,
        )  # fmt: skip
        if lanes:
            self.store.lane_open(lanes, now + TTL)
            self._maybe_open = True
        return admitted


def read_snapshot(
    store: Store, now: float, prefetch: int = 0, prefetch_ratio: float = 0.0
) -> DispatchSnapshot:
    """What the policy needs for this round: the load, then the heads of the groups that could
    get one of the free slots (twice as many tasks as slots, spread over the best groups)."""
    return _read(store, now, prefetch, prefetch_ratio)[0]


def _read(
    store: Store, now: float, prefetch: int, prefetch_ratio: float
) -> tuple[DispatchSnapshot, dict[str, int], list[HeadsWanted]]:
    load = store.dispatch_load(now, fold_hints=HINTS_PER_ROUND)
    slots = free_slots(load.capacity, load.active_by_pool, prefetch, prefetch_ratio)
    wants = [
        HeadsWanted(pool, groups=free + len(load.active_by_group), tasks=2 * free)
        for pool, free in sorted(slots.items())
        if free > 0
    ]
    heads = store.dispatch_heads(wants, blocked_groups(load), now) if wants else NO_HEADS
    return snapshot_of(load, heads), slots, wants


def snapshot_of(
    load: DispatchLoad,
    heads: DispatchHeads,
    groups: Mapping[str, GroupConfig] | None = None,
    buckets: Mapping[str, Bucket] | None = None,
) -> DispatchSnapshot:
    """The policy's snapshot from a round's two reads, the one place it is assembled (the
    dispatcher's round, and corral.metrics.desired's). `groups` and `buckets`: settings and
    token buckets read besides (the desired-workers signal reads every configured group); the
    heads' win over them, and the load's settings (the groups holding slots) over both."""
    return DispatchSnapshot(
        capacity=load.capacity,
        active_by_pool=load.active_by_pool,
        active_by_group=load.active_by_group,
        groups={**(groups or {}), **heads.groups, **load.groups},
        ready=heads.ready,
        defaults=load.defaults,
        exclusive_groups=load.exclusive_groups,
        more=heads.more,
        buckets={**(buckets or {}), **heads.buckets},
        rate_limits=heads.rate_limits,
        paused_groups=load.paused_groups,
    )


def blocked_groups(load: DispatchLoad) -> list[str]:
    """Groups that can take no slot whatever their tasks: paused, at their cap, or running an
    exclusive task. Bounded by the slots held and the paused groups."""
    return sorted(
        {
            group
            for group, held in load.active_by_group.items()
            if group in load.exclusive_groups
            or at_cap(load.groups.get(group) or load.defaults, held)
        }
        | load.paused_groups
    )
