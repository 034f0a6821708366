"""The lease primitive on SQLite (store.contract.coordination): the scheduler's leadership, event
consumers and workers, each over its own rows, each a compare-and-set in an immediate write."""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager

from ...errors import ConfigError
from ..contract import Lease, LeaseKind
from . import queries as q

LOCK_WAIT_CREDIT = 0.25
"""Seconds of waiting for the write lock past which a renewal's times are moved on by the wait.

SQLite has one write lock for the file. A worker whose handler holds the GIL in C code while one
of its own store calls is inside a write transaction keeps that lock for the whole hold, and
every process waits: the heartbeat companion's renewal too, with the expiry it computed before
it waited. Committed as computed, that expiry may already be past when the lock comes free, and
the reaper, waiting as well, would then recover attempts whose worker never stopped renewing.
So a renewal counts from the moment it got the lock: the holder was alive when it asked, and it
asked at every heartbeat. The recovery of a worker that died meanwhile is later by that wait."""


class SQLiteLeases:
    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def lease_acquire(self, lease: Lease, now: float) -> bool:
        params = _params(lease, now)
        with self._write() as tx:
            if lease.kind == LeaseKind.LEADER:
                tx.execute(q.ACQUIRE_LEADER, params)
                row = tx.execute(q.LEADER_HOLDER, (lease.name,)).fetchone()
                return row is not None and row[0] == lease.holder
            if lease.kind == LeaseKind.CONSUMER:
                tx.execute(q.ADD_CONSUMER, params)
                return tx.execute(q.ACQUIRE_CONSUMER, params).rowcount == 1
            return _renew_worker(tx, lease, now)

    def lease_renew(self, lease: Lease, now: float) -> bool:
        asked = time.monotonic()
        with self._write() as tx:
            waited = time.monotonic() - asked
            if waited > LOCK_WAIT_CREDIT:
                now += waited
                lease = dataclasses.replace(lease, until=lease.until + waited)
            params = _params(lease, now)
            if lease.kind == LeaseKind.LEADER:
                return tx.execute(q.RENEW_LEADER, params).rowcount == 1
            if lease.kind == LeaseKind.CONSUMER:
                return tx.execute(q.RENEW_CONSUMER, params).rowcount == 1
            return _renew_worker(tx, lease, now)

    def lease_release(self, lease: Lease) -> None:
        with self._write() as tx:
            for statement, args in _release(lease):
                tx.execute(statement, args)


def _params(lease: Lease, now: float) -> dict[str, object]:
    return {"name": lease.name, "holder": lease.holder, "lease": lease.until, "now": now}


def _renew_worker(tx: sqlite3.Connection, lease: Lease, now: float) -> bool:
    """A worker's lease and those of its running tasks; False if it is not registered."""
    if lease.name != lease.holder:
        raise ConfigError(f"a worker holds only its own lease: {lease.holder!r} != {lease.name!r}")
    params = {"id": lease.name, "now": now, "lease": lease.until}
    if tx.execute(q.WORKER_BEAT, params).rowcount != 1:
        return False
    tx.execute(q.TASK_LEASES_BEAT, params)
    return True


def _release(lease: Lease) -> Iterator[tuple[str, tuple[str, ...]]]:
    if lease.kind == LeaseKind.LEADER:
        yield q.RELEASE_LEADER, (lease.name, lease.holder)
    elif lease.kind == LeaseKind.CONSUMER:
        yield q.RELEASE_CONSUMER, (lease.name, lease.holder)
    elif lease.name == lease.holder:
        yield q.DELETE_WORKER, (lease.name,)
