"""A worker's lease renewal (the heartbeat): the lease primitive for kind `worker`, then the
cancel requests of its running tasks, which the worker carries out."""

from __future__ import annotations

from ..store import Store
from ..store.contract import Lease, LeaseKind


def worker_lease(worker_id: str, until: float) -> Lease:
    """A worker's own lease (it is both the name and the holder)."""
    return Lease(LeaseKind.WORKER, worker_id, worker_id, until)


def renew_worker(store: Store, worker_id: str, until: float, now: float) -> list[int]:
    """Extend the worker's lease and its running tasks' until `until`; the ids of its running
    tasks asked to cancel."""
    store.lease_renew(worker_lease(worker_id, until), now)
    return store.task_fetch_cancel_requests(worker_id)
