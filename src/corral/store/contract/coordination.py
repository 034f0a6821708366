"""The coordination part of the store contract: one lease primitive for the scheduler's
leadership, event consumers and workers.

A `Lease` names what is held (`kind`, `name`), by whom (`holder`) and until when. Acquire takes
or extends it if it is free, expired or already the holder's; renew only extends it while the
holder still has it; release gives it up. Over the existing rows: a leader's is a row on SQLite
and a session advisory lock on PostgreSQL (freed by the server when its connection dies, so
`until` is not used there); a consumer's is its cursor's row; a worker's is its row (made by
`worker_register`, which announces its pools and capacity) and renewing it renews the leases of
the tasks it runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from ...model import ConsumerRecord, WorkerInfo, WorkerRecord


class LeaseKind(StrEnum):
    LEADER = "leader"
    CONSUMER = "consumer"
    WORKER = "worker"


@dataclass(frozen=True, slots=True)
class Lease:
    kind: LeaseKind
    name: str
    holder: str
    until: float


class Coordination(Protocol):
    def lease_acquire(self, lease: Lease, now: float) -> bool:
        """Take or extend `lease` if it is free, expired (before `now`) or already its holder's.
        A consumer's lease is created at the feed's origin; a worker's needs its registration
        (a worker holds only its own: `name` == `holder`)."""
        ...

    def lease_renew(self, lease: Lease, now: float) -> bool:
        """Extend `lease` to `until` only if its holder still has it; a worker's renewal extends
        the leases of its running tasks too. False: the holder lost it."""
        ...

    def lease_release(self, lease: Lease) -> None:
        """Give up `lease` if its holder has it (a worker's: it stopped cleanly)."""
        ...

    def worker_register(self, worker: WorkerInfo, lease_until: float, now: float) -> None:
        """Announce a worker and its capacity per pool, its lease held until `lease_until`."""
        ...

    def worker_list(self, now: float) -> list[WorkerRecord]:
        """Workers whose lease hasn't expired."""
        ...

    def consumer_advance(
        self, name: str, holder: str, position: tuple[int, int], now: float
    ) -> bool:
        """Move the consumer's cursor to `position` (a FeedEvent's (xid, id)) if `holder` still
        holds its lease."""
        ...

    def consumer_acquire(self, name: str, holder: str, lease_until: float, now: float) -> bool:
        """Deprecated, for one release: `lease_acquire(Lease(CONSUMER, ...))`."""
        ...

    def consumer_release(self, name: str, holder: str) -> None:
        """Deprecated, for one release: `lease_release(Lease(CONSUMER, ...))`."""
        ...

    def consumer_create(self, name: str, at_head: bool) -> None:
        """Give event consumer `name` its row if it has none: its cursor at the head of the feed
        (past every event committed by now) if `at_head`, else at the feed's origin (the row
        '*'). A row it has is left as it is."""
        ...

    def consumer_list(self) -> list[ConsumerRecord]:
        """Every event consumer's row (lease and cursor), by name."""
        ...

    def consumer_retire(self, name: str, now: float) -> bool:
        """Delete consumer `name`'s row (its cursor no longer holds back retention) unless a
        process holds its lease at `now`; whether a row went."""
        ...


class ConsumerLeaseShims:
    """The consumer_acquire / consumer_release wrappers over the lease primitive, once for both
    backends. Kept for one release (event consumers written against them); use the lease
    methods."""

    def lease_acquire(self, lease: Lease, now: float) -> bool:
        raise NotImplementedError

    def lease_release(self, lease: Lease) -> None:
        raise NotImplementedError

    def consumer_acquire(self, name: str, holder: str, lease_until: float, now: float) -> bool:
        return self.lease_acquire(Lease(LeaseKind.CONSUMER, name, holder, lease_until), now)

    def consumer_release(self, name: str, holder: str) -> None:
        self.lease_release(Lease(LeaseKind.CONSUMER, name, holder, 0.0))
