"""The lease primitive on PostgreSQL (store.contract.coordination). The scheduler's leadership is
a session advisory lock on a connection of its own: held while that connection lives, freed by
PostgreSQL the moment it dies (so a leader's `until` is not used). Consumers' and workers'
leases are rows, each taken with a compare-and-set on a pooled connection, run again after a lost
connection (take, extend and give up are safe to repeat)."""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg

from ...errors import ConfigError, DatabaseError
from ..contract import Lease, LeaseKind
from . import queries as q
from .reconnect import Retrier

T = TypeVar("T")


class PostgresLeases:
    url: str
    _leader_conns: dict[tuple[str, str], psycopg.Connection[Any]]
    _leader_lock: threading.Lock
    _retrier: Retrier

    def _one(self, query: str, params: Any = None) -> list[Any]:
        raise NotImplementedError

    def _again(self, what: str, fn: Callable[[], T]) -> T:
        return self._retrier.run(lambda _: fn(), again_after_commit=True, what=what)

    def lease_acquire(self, lease: Lease, now: float) -> bool:
        if lease.kind == LeaseKind.LEADER:
            return self._leader_acquire(lease.name, lease.holder)
        params = _params(lease, now)
        if lease.kind == LeaseKind.CONSUMER:
            return self._again("lease_acquire", lambda: self._consumer_acquire(params))
        return self.lease_renew(lease, now)

    def lease_renew(self, lease: Lease, now: float) -> bool:
        if lease.kind == LeaseKind.LEADER:
            return self._leader_alive(lease.name, lease.holder)
        if lease.kind == LeaseKind.CONSUMER:
            params = _params(lease, now)
            return self._again("lease_renew", lambda: bool(self._one(q.RENEW_CONSUMER, params)))
        if lease.name != lease.holder:
            raise ConfigError(
                f"a worker holds only its own lease: {lease.holder!r} != {lease.name!r}"
            )
        beat = {"id": lease.name, "now": now, "lease": lease.until}
        return self._again("lease_renew", lambda: int(self._one(q.RENEW_WORKER, beat)[0][0]) == 1)

    def lease_release(self, lease: Lease) -> None:
        if lease.kind == LeaseKind.LEADER:
            with self._leader_lock:
                conn = self._leader_conns.pop((lease.name, lease.holder), None)
                if conn is not None:
                    conn.close()  # closing the session frees the lock
        elif lease.kind == LeaseKind.CONSUMER:
            args = (lease.name, lease.holder)
            self._again("lease_release", lambda: self._one(q.RELEASE_CONSUMER, args))
        elif lease.name == lease.holder:
            self._again("lease_release", lambda: self._one(q.DELETE_WORKER, (lease.name,)))

    def _consumer_acquire(self, params: dict[str, Any]) -> bool:
        self._one(q.ADD_CONSUMER, params)
        return bool(self._one(q.ACQUIRE_CONSUMER, params))

    def _leader_alive(self, name: str, holder: str) -> bool:
        with self._leader_lock:
            return self._leader_held(name, holder)

    def _leader_held(self, name: str, holder: str) -> bool:
        """Whether the leadership's own session still lives (a lost one is forgotten). Called
        under the leader lock."""
        held = self._leader_conns.get((name, holder))
        if held is None:
            return False
        try:
            held.execute("SELECT 1")
            return True
        except psycopg.Error:
            held.close()
            del self._leader_conns[(name, holder)]
            return False

    def _leader_acquire(self, name: str, holder: str) -> bool:
        """Held if its session lives; else tried at once on a new connection (a new leadership,
        which starts from fresh reads)."""
        with self._leader_lock:
            if self._leader_held(name, holder):
                return True
            try:
                conn = psycopg.connect(self.url, autocommit=True, connect_timeout=5)
            except psycopg.Error as exc:
                raise DatabaseError(f"can't connect to {safe_url(self.url)}: {exc}") from None
            key = q.LEADER_LOCK_KEY + zlib.crc32(name.encode())
            try:
                configure_session(conn)
                got = conn.execute(q.TRY_LEADER_LOCK, (key,)).fetchone()
            except psycopg.Error as exc:  # the session died at once: a DatabaseError, retried
                conn.close()
                raise DatabaseError(f"PostgreSQL at {safe_url(self.url)}: {exc}") from None
            if got and got[0]:
                self._leader_conns[(name, holder)] = conn
                return True
            conn.close()
            return False


def _params(lease: Lease, now: float) -> dict[str, Any]:
    return {"name": lease.name, "holder": lease.holder, "lease": lease.until, "now": now}


IDLE_IN_TRANSACTION_TIMEOUT = "5s"
"""The server ends a corral session left idle inside a transaction this long: its process was
paused (SIGSTOP, a VM freeze) between two statements, holding row locks that would stall the
reaper and the claims of every other worker until it came back. corral's own transactions
never wait on the client."""


def configure_session(conn: psycopg.Connection[Any]) -> None:
    conn.execute(
        "SELECT set_config('idle_in_transaction_session_timeout', %s, false)",
        (IDLE_IN_TRANSACTION_TIMEOUT,),
    )


def safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.Error:
        return "the database"
    user, host = info.get("user", ""), info.get("host", "localhost")
    return f"postgresql://{user}@{host}:{info.get('port', 5432)}/{info.get('dbname', '')}"
