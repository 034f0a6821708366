"""Leader services: the maintenance the scheduler's leader runs, each behind one small interface.

A service has a name, an interval and `run(now) -> int` (the work it did: tasks moved, rows
pruned). The leader loops over its list each round and runs those that are due; an interval of 0
means every round. A new service (a clock for schedules, say) is one more entry in the list built
by `leader_services`, never a branch in the loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ..admission import Ordering
from ..store import Store
from .dispatcher import Dispatcher
from .promoter import promote_due
from .pruner import Pruner
from .reaper import Reaper
from .resolver import resolve_due
from .upkeep import Upkeep


class LeaderService(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def interval(self) -> float:
        """Seconds between runs; 0: every round. Read at every round, so a service may change it
        (the backfill maker paces itself so)."""
        ...

    def run(self, now: float) -> int:
        """One run at `now`; returns the work done (0: nothing was due)."""
        ...


@dataclass(frozen=True)
class StoreService:
    """A service that is one function of the store and the time."""

    name: str
    interval: float
    job: Callable[[float], int]

    def run(self, now: float) -> int:
        return self.job(now)


def leader_services(
    store: Store,
    *,
    promote_every: float,
    reap_every: float,
    prune_every: float,
    prune_batch: int,
    prefetch: int,
    prefetch_ratio: float,
    ordering: Ordering,
    fast_lane: bool = True,
    upkeep_every: float = 0.0,
) -> list[LeaderService]:
    """The leader's services in the order a round runs them: the resolver first (what it releases
    is dispatched in the same round), the dispatcher after the services that free or move tasks;
    the table upkeep last, if `upkeep_every` > 0."""
    services: list[LeaderService] = [
        StoreService("resolve", 0.0, lambda now: resolve_due(store, now)),
        StoreService("promote", promote_every, lambda now: promote_due(store, now)),
        Reaper(store, reap_every),
        Dispatcher(
            store,
            prefetch=prefetch,
            prefetch_ratio=prefetch_ratio,
            ordering=ordering,
            fast_lane=fast_lane,
        ),
        Pruner(store, interval=prune_every, batch=prune_batch),
    ]
    if upkeep_every > 0:
        services.append(Upkeep(store, interval=upkeep_every))
    return services
