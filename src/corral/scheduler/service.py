"""The scheduler process: one leader at a time runs the maintenance services in a loop.

Any number of schedulers may run; they compete for a leadership lease in the store, and a stand-by
takes over within `lease` seconds of the leader's death. All state is in the store, so a new leader
simply carries on from the rows.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from ..admission import POLICIES
from ..clock import Clock
from ..errors import ConfigError, DatabaseError, LeadershipLost
from ..store import Store
from ..store.contract import SCHEDULER_CHANNEL, Lease, LeaseKind
from .dispatcher import Dispatcher
from .pruner import DEFAULT_INTERVAL as PRUNE_EVERY
from .services import LeaderService, leader_services
from .upkeep import DEFAULT_INTERVAL as UPKEEP_EVERY

log = logging.getLogger("corral.scheduler")
LEADERSHIP = "scheduler"


@dataclass
class SchedulerConfig:
    tick: float = 0.02
    """Seconds between rounds when the last round found nothing to do."""
    lease: float = 5.0
    """Leadership lease; a stand-by takes over this long after the leader died."""
    prefetch: int = 16
    """Tasks admitted to a pool beyond its live capacity, so workers never wait for a round..."""
    prefetch_ratio: float = 1.0
    """...or this share of the capacity, if more: a busy pool holds one round of work ahead."""
    reap_every: float = 1.0
    promote_every: float = 0.5
    prune_every: float = PRUNE_EVERY
    """Seconds between two prune batches (corral.retention decides what goes)."""
    prune_batch: int = 1000
    """Finished tasks deleted at most per prune run: a bounded transaction."""
    idle_wait: float = 0.5
    """With notifications (both backends; SQLite: wake.py): the longest idle wait; a notice ends
    it at once."""
    standby_poll: float = 0.5
    """How often a stand-by tries to take the leadership."""
    policy: str = "fair"
    """The admission order: "fair" (corral's), or the baselines "priority" and "fifo" that the
    benchmarks compare it with (caps and rate limits hold under each)."""
    upkeep_every: float = UPKEEP_EVERY
    """Seconds between two table upkeeps (corral.upkeep: VACUUM and ANALYZE where the server's
    autovacuum is off); 0: none."""
    fast_lane: bool = True
    """Open fast lanes (corral.lanes): in a pool with free slots and nothing ready, a single
    submit is admitted in its own write, without waiting for a round. False: every admission
    is the leader's round's."""


class Scheduler:
    """`clock`: where "now" comes from; by default the store's (see corral.clock). `services`:
    leader services beyond the maintenance ones, e.g. the app's schedule clock
    (`app.schedules.services()`)."""

    def __init__(
        self,
        store: Store,
        config: SchedulerConfig | None = None,
        *,
        clock: Clock | None = None,
        services: Sequence[LeaderService] = (),
    ) -> None:
        self.store = store
        self.clock = clock if clock is not None else store.clock()
        self.config = config or SchedulerConfig()
        if self.config.policy not in POLICIES:
            raise ConfigError(
                f"unknown admission policy {self.config.policy!r} (one of {sorted(POLICIES)})"
            )
        self._ordering = POLICIES[self.config.policy]
        config = self.config
        self.services: list[LeaderService] = leader_services(
            store,
            promote_every=config.promote_every,
            reap_every=config.reap_every,
            prune_every=config.prune_every,
            prune_batch=config.prune_batch,
            prefetch=config.prefetch,
            prefetch_ratio=config.prefetch_ratio,
            ordering=self._ordering,
            fast_lane=config.fast_lane,
            upkeep_every=config.upkeep_every,
        )
        # More services (the app's schedule clock): after the dispatcher, so the tasks a fire
        # made are dispatched at the next round.
        self.services.extend(services)
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.is_leader = False
        self._stop = threading.Event()
        self._last: dict[str, float] = {}
        self.work: dict[str, int] = {}
        """The work each service did in this process (tasks moved, rows pruned; `reap`: lost
        attempts): what corral.metrics.scheduler exports."""

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        """Lead or stand by until `stop()`; gives up the leadership on the way out."""
        listener = self.store.listen([SCHEDULER_CHANNEL]) if self.store.notifies else None
        try:
            while not self._stop.is_set():
                try:
                    if not self._hold_leadership():
                        if listener is not None:
                            # a stand-by reads no notices: the server would queue them for it
                            listener.close()
                        self._stop.wait(self.config.standby_poll)
                        continue
                    if self.run_once(self.clock.now()) > 0:
                        continue
                except LeadershipLost as exc:  # its session died: take the leadership again
                    log.info("scheduler %s: %s", self.id, exc)
                    self._last["lease"] = 0.0
                    continue
                except DatabaseError as exc:  # keep going: the store may come back
                    log.warning("scheduler round failed: %s", exc)
                    self._last["lease"] = 0.0  # the leadership may be lost too: check it first
                    self._stop.wait(1.0)
                    continue
                if listener is not None:
                    listener.wait(self._idle_wait())
                else:
                    self._stop.wait(self.config.tick)
        finally:
            if listener is not None:
                listener.close()
            if self.is_leader:
                self.store.lease_release(Lease(LeaseKind.LEADER, LEADERSHIP, self.id, 0.0))
                self.is_leader = False

    def _hold_leadership(self) -> bool:
        now = self.clock.now()
        if now - self._last.get("lease", 0.0) >= self.config.lease / 3:
            was = self.is_leader
            lease = Lease(LeaseKind.LEADER, LEADERSHIP, self.id, now + self.config.lease)
            self.is_leader = self.store.lease_acquire(lease, now)
            self._last["lease"] = now
            if self.is_leader != was:
                log.info("scheduler %s %s", self.id, "leads" if self.is_leader else "stands by")
            if self.is_leader and not was:  # another leader may have left lanes open
                for service in self.services:
                    if isinstance(service, Dispatcher):
                        service.leadership_taken()
        return self.is_leader

    def _idle_wait(self) -> float:
        """Sleep until a notice, the next delayed or backed-off task, or idle_wait at most."""
        next_due = self.store.task_next_due()
        if next_due is None:
            return self.config.idle_wait
        return min(self.config.idle_wait, max(0.0, next_due - self.clock.now()))

    def run_once(self, now: float) -> int:
        """One round of every service that is due (corral.scheduler.services); returns the work
        they did: tasks moved, and tasks pruned."""
        done = 0
        for service in self.services:
            if service.interval <= 0 or self._due(service.name, now, service.interval):
                work = service.run(now)
                self.work[service.name] = self.work.get(service.name, 0) + work
                done += work
        return done

    def _due(self, service: str, now: float, every: float) -> bool:
        if now - self._last.get(service, 0.0) >= every:
            self._last[service] = now
            return True
        return False
