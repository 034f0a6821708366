"""Lost PostgreSQL connections: checked before they are lent, classified when they die, and the
store call run again when that is safe.

The server may end any session at any time (`pg_terminate_backend`, a restart, a failover). A
connection is checked as the pool lends it (`ConnectionPool.check_connection`, an empty query)
only where a session that died in the pool would leave the call unsure of what it did: a
statement autocommitted alone (`one`) for a call that may not simply run again (rule ONCE). A
transaction on a dead session fails before its COMMIT is sent, so it wrote nothing and runs
again; a call that is safe to repeat (AGAIN, OWN) runs again whatever happened. Checking every
lend would cost every store call a round trip. A dead session, found either way, means the server
dropped sessions, so every idle one is checked at once (`ConnectionPool.check`) before the next
try. A session can still die while a call uses it; what the call did then depends on how far it
got:

- it never got a connection, or its transaction had not sent COMMIT: nothing was written (the
  server rolls back the open transaction of a dead session). Running it again is safe.
- it had sent COMMIT, or its one autocommitted statement, and the reply was lost: it may have
  committed. Running it again is safe only when doing it twice is doing it once: a read, an
  idempotent or compare-and-set write (rule AGAIN), or a write that first looks up what a lost
  try wrote (OWN: a submit finds its submit ids, a claim the tasks it took at its `now`).

Every store call runs through `Retrier.run`: at most ATTEMPTS tries, BACKOFF between them, each
waiting up to POOL_TIMEOUT for a working connection; then `ConnectionLost` says whether the write
may have committed. A call made inside another store call runs once: the outer call retries the
whole. A caller's own transaction (`conn=`) is never retried: the caller owns it.
"""

from __future__ import annotations

import functools
import inspect
import logging
import select
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg_pool import ConnectionPool, PoolClosed

from ...backoff import Backoff
from ...errors import ConnectionLost, DatabaseError
from ..readside_contract import READ_SIDE_METHODS
from .connections import restore_or_close

log = logging.getLogger("corral.store.postgres")
T = TypeVar("T")
S = TypeVar("S", bound=type)

ATTEMPTS = 5
"""Tries of one store call, the first included, before ConnectionLost is raised."""
BACKOFF = Backoff(base=0.1, factor=2.0, cap=2.0, jitter=0.5)
"""The wait before try n+1: about 0.1 s, 0.2 s, 0.4 s, 0.8 s (jittered down by up to half)."""
POOL_TIMEOUT = 10.0
"""Seconds one try waits for a working connection (the pool reconnects meanwhile); a restart or
failover shorter than that is bridged by the first try's wait."""

AGAIN = "again"
"""Safe to run again whatever the lost try did: a read, or an idempotent / compare-and-set write."""
ONCE = "once"
"""Run again only if the lost try certainly wrote nothing; else raise, saying it may have."""
READS = (
    "schema_version", "check_schema", "task_get", "task_list", "task_states", "task_next_due",
    "task_fetch_promotable", "task_fetch_expired", "task_fetch_cancel_requests",
    "task_count_ahead", "dispatch_load", "dispatch_heads", "bucket_get_many", "rate_limit_list",
    "group_get", "worker_list", "event_list", "event_fetch_after",
    "event_fetch_unseen", "consumer_list", "attempt_list", "log_list", "workflow_get",
    "schedule_list", "schedule_due", "fire_list", "fire_get", "fire_last_run", "backfill_get",
    "backfill_list", "backfill_fires",
    *READ_SIDE_METHODS,
)  # fmt: skip
RULES: dict[str, str] = {
    **dict.fromkeys(READS, AGAIN),
    "migrate": AGAIN,  # under its lock, applies only the migrations not recorded as applied
    "task_release_due": AGAIN,  # moves only what is due; a second run finds it moved
    "task_fail_upstream": AGAIN,
    "task_set_levels": AGAIN,  # sets values, for tasks still ready
    "ready_groups_refresh": AGAIN,  # recomputes heads from the rows
    # compare-and-set on (id, attempt, running): a second run records nothing more (and its
    # result lists only what it recorded itself; the worker does not rely on it)
    "task_complete_many": AGAIN,
    "task_save_checkpoint": AGAIN,  # the same value, if the attempt still runs
    "task_save_shared": AGAIN,
    "worker_register": AGAIN,  # upserts and deletes
    "group_configure": AGAIN,
    "rate_limit_configure": AGAIN,
    "consumer_acquire": AGAIN,  # take or extend: the same lease (a wrapper of lease_acquire)
    "consumer_advance": AGAIN,  # the same position, if still the holder
    "consumer_release": AGAIN,
    "consumer_create": AGAIN,  # only if it has no row: a second run finds the first's
    "consumer_retire": AGAIN,  # a delete (a second run finds nothing and says False)
    "task_drain_mark": AGAIN,  # take or renew: the same mark, if still free or this worker's
    "retention_get": AGAIN,
    "retention_set": AGAIN,  # sets a value
    "task_prune": AGAIN,  # deletes what the rule lets go; a second run takes the next batch
    "fire_prune": AGAIN,  # the same, for schedule fires and ended backfills
    "cleanup_end": AGAIN,  # compare-and-set on (holder, running): a second run records nothing
    "cleanup_list": AGAIN,
    "cleanup_unfinished": AGAIN,
    # a lost claim's clean-ups stay held until their lease lapses, then another claim takes them
    "cleanup_claim": ONCE,
    "task_admit_many": ONCE,  # a second run would find them admitted and report none
    "log_append_many": ONCE,  # the lines would be stored twice
    "task_cancel": ONCE,  # a second run would report another state, or refuse
    "task_retry": ONCE,
    "workflow_cancel": ONCE,
    "task_cancel_many": ONCE,  # a second run would find them moved and skip them
    "task_retry_many": ONCE,
    "schedule_save": AGAIN,  # upserts values
    "schedule_set_paused": AGAIN,
    "schedule_trigger": AGAIN,
    "backfill_set_state": ONCE,  # a second run would find it moved and say False
    # a fire's logical time is unique: a second run writes nothing, but reports it not created
    "schedule_fire": ONCE,
    "backfill_create": ONCE,
    # alerts: reads; compare-and-set changes whose second run changes nothing (a unique open
    # incident, unique notification keys, a delivery recorded only while pending)
    "alert_open": AGAIN,
    "alert_incidents": AGAIN,
    "alert_incident_get": AGAIN,
    "alert_seen": AGAIN,
    "alert_notifications": AGAIN,
    "alert_notifications_due": AGAIN,
    "alert_silences": AGAIN,
    "alert_flushes": AGAIN,
    "alert_failed_attempts": AGAIN,
    "alert_oldest_ready": AGAIN,
    "alert_apply": AGAIN,
    "alert_silence": AGAIN,
    "alert_notification_end": AGAIN,
    # corral web's access: reads; a revoke keeps its first time, a touch and an install secret
    # set values (the secret only if none); a token's prefix is unique, so a second insert
    # would fail on it (ONCE), and an audit entry would be written twice (ONCE)
    "token_by_prefix": AGAIN,
    "token_list": AGAIN,
    "token_revoke": AGAIN,
    "token_touch": AGAIN,
    "install_secret": AGAIN,
    "audit_page": AGAIN,
    "token_insert": ONCE,
    "audit_append": ONCE,
    # paused groups: a second run finds the group paused (or resumed) and says it changed nothing
    "group_pause": AGAIN,
    "group_resume": AGAIN,
    "group_paused_list": AGAIN,
}
OWN = frozenset({"task_insert_many", "workflow_insert", "task_claim"})
"""Calls that run `Retrier.run` themselves: after a lost reply they look up what they wrote."""
UNWRAPPED = frozenset({"close", "listen", "lease_acquire", "lease_renew", "lease_release"})
"""Calls on connections of their own (the leadership's, a listener's), not the pool's; the lease
calls run their pooled statements again themselves (take, extend and give up: AGAIN)."""
SUBMIT_INDEXES = ("corral_submits_pkey",)
"""The unique index on submit ids: a conflict on it means the submit was recorded already."""
SHUTDOWN_STATES = ("57P01", "57P02", "57P03")
"""admin_shutdown (pg_terminate_backend, a fast shutdown), crash_shutdown, cannot_connect_now."""


class Connections:
    """The pool's connections, with their failures classified (see the module's docstring)."""

    def __init__(self, pool: ConnectionPool[Any], where: str, retrier: Retrier) -> None:
        self._pool = pool
        self.where = where
        self._retrier = retrier

    @contextmanager
    def connection(self, check: bool = True) -> Iterator[psycopg.Connection[Any]]:
        """A connection (checked to work first if `check`), or ConnectionLost (nothing sent)."""
        conn = self._checked() if check else self._lent()
        try:
            with conn:
                try:
                    yield conn
                except BaseException:
                    restore_or_close(conn)  # never back to the pool mid-command
                    raise
        finally:
            self._pool.putconn(conn)

    def _lent(self) -> psycopg.Connection[Any]:
        try:
            conn: psycopg.Connection[Any] = self._pool.getconn(timeout=POOL_TIMEOUT)
        except PoolClosed:
            raise DatabaseError(f"{self.where}: the store was closed") from None
        except psycopg.Error as exc:  # PoolTimeout: no working connection within the timeout
            message = f"{self.where}: {_line(exc)}"
            raise ConnectionLost(message, may_have_committed=False) from None
        return conn

    def _checked(self) -> psycopg.Connection[Any]:
        """A connection of the pool's that answered an empty query. On a dead one, every idle
        connection is checked at once, not one by one as they are lent: the pool's own `check=`
        backs off 1, 2, 4 s... between dead connections (13 s to get past eight after a cut)."""
        for attempt in range(3):
            conn = self._lent()
            try:
                ConnectionPool.check_connection(conn)
                return conn
            except psycopg.Error as exc:
                self._pool.putconn(conn)  # broken: the pool drops it and opens another
                log.info("%s: a pooled connection was dead (%s)", self.where, _line(exc))
                if attempt == 0:
                    self._pool.check()  # the others idle in the pool, at once
        raise ConnectionLost(
            f"{self.where}: the connections lent were dead, {attempt + 1} in a row",
            may_have_committed=False,
        )

    @contextmanager
    def transaction(self, first: str | None = None) -> Iterator[psycopg.Connection[Any]]:
        """A connection in a transaction (opened with the statement `first`, if given). Not
        checked as it is lent: on a dead session the transaction fails before COMMIT is sent."""
        with self.connection(check=False) as conn:
            commit_sent = False
            try:
                with conn.transaction():
                    if first is not None:
                        conn.execute(first)
                    yield conn
                    commit_sent = True  # the transaction's exit sends COMMIT
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                raise self.failure(conn, exc, may_have_committed=commit_sent) from None

    @contextmanager
    def autocommitted(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection whose statements commit themselves: no BEGIN or COMMIT round trip, for a
        write that is one statement. Not checked as it is lent; a session lost under the
        statement may have committed it, so a session the server has closed is found before
        the statement is sent: an idle session the server spoke to (its end, most likely) is
        checked with a round trip; a quiet one costs a poll of its socket."""
        with self.connection(check=False) as conn:
            if select.select([conn.pgconn.socket], [], [], 0)[0]:
                try:
                    ConnectionPool.check_connection(conn)
                except psycopg.Error as exc:
                    raise self.failure(conn, exc, may_have_committed=False) from None
            try:
                yield conn
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                raise self.failure(conn, exc, may_have_committed=True) from None

    def one(self, query: str, params: Any = None) -> tuple[list[Any], int]:
        """One autocommitted statement: its rows (if it returns any) and its row count. Its
        connection is checked as it is lent unless the call running it may simply run again."""
        with self.connection(check=not self._retrier.repeatable()) as conn:
            try:
                cursor = conn.execute(query, params)
                rows = cursor.fetchall() if cursor.description is not None else []
                return rows, cursor.rowcount
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                raise self.failure(conn, exc, may_have_committed=True) from None

    def failure(
        self, conn: psycopg.Connection[Any], exc: psycopg.Error, *, may_have_committed: bool
    ) -> DatabaseError:
        """ConnectionLost if the session died; a plain DatabaseError if the server refused the
        statement on a live session (a deadlock, a timeout: the transaction rolled back)."""
        if conn.broken or conn.closed or getattr(exc, "sqlstate", None) in SHUTDOWN_STATES:
            self._pool.check()  # the server dropped sessions: the idle ones too, at once
            return ConnectionLost(
                f"{self.where}: the connection was lost ({_line(exc)})",
                may_have_committed=may_have_committed,
            )
        return DatabaseError(f"{self.where}: {exc}")


class Retrier:
    """Runs store calls again after a lost connection, as far as their rule allows."""

    def __init__(self) -> None:
        self._local = threading.local()

    def run(self, fn: Callable[[bool], T], *, again_after_commit: bool, what: str) -> T:
        """`fn(maybe_committed)`, tried up to ATTEMPTS times. `maybe_committed` is True once a
        lost try may have committed: an OWN call then looks up what it wrote. Without
        `again_after_commit`, such a loss is raised at once rather than tried again."""
        if getattr(self._local, "busy", False):
            return fn(False)  # inside another store call: that one retries the whole
        self._local.busy = True
        self._local.repeatable = again_after_commit
        try:
            return self._tries(fn, again_after_commit, what)
        finally:
            self._local.busy = False
            self._local.repeatable = False

    def repeatable(self) -> bool:
        """Whether the store call this thread is in may run again even after a lost commit
        (False outside any: a caller's own statement is never repeated)."""
        return bool(getattr(self._local, "repeatable", False))

    @staticmethod
    def _tries(fn: Callable[[bool], T], again_after_commit: bool, what: str) -> T:
        maybe_committed = False
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return fn(maybe_committed)
            except ConnectionLost as exc:
                maybe_committed = maybe_committed or exc.may_have_committed
                if maybe_committed and not again_after_commit:
                    raise ConnectionLost(
                        f"{exc}, after {what} was sent: it may have been done; it was not run "
                        "again (check its effect before repeating it)",
                        may_have_committed=True,
                    ) from None
                if attempt == ATTEMPTS:
                    done = "it may have committed" if maybe_committed else "nothing was written"
                    raise ConnectionLost(
                        f"{exc}; {what} failed {ATTEMPTS} times in a row: {done}",
                        may_have_committed=maybe_committed,
                    ) from None
                delay = BACKOFF.delay(attempt)
                log.info("%s: %s; trying again in %.2fs", what, exc, delay)
                time.sleep(delay)
        raise AssertionError("unreachable")


def submission(
    retrier: Retrier,
    transaction: Callable[[], AbstractContextManager[psycopg.Connection[Any]]],
    write: Callable[[psycopg.Connection[Any], bool], T],
    submit_id: str | None,
) -> T:
    """Run `write(conn, look)` in a transaction. With a submit id it runs again even after a lost
    reply: a try that may follow a committed one, or whose submit id turns out to be known (a
    unique index says so), first looks up what that id wrote (`look`), so no task is added twice.
    A try that the server aborted to break a deadlock wrote nothing and runs again (a submit with
    dependencies locks its upstream rows, which a heartbeat may update in another order)."""

    def attempt(maybe_committed: bool) -> T:
        look = maybe_committed
        for again in (True, True, False):
            try:
                with transaction() as conn:
                    return write(conn, look)
            except psycopg.errors.UniqueViolation as exc:
                if submit_id is None or exc.diag.constraint_name not in SUBMIT_INDEXES:
                    raise
                if not again:
                    raise DatabaseError(f"submit id {submit_id!r} is being written") from None
                look = True
            except DatabaseError as exc:
                if not again or not isinstance(exc.__context__, psycopg.errors.DeadlockDetected):
                    raise
                log.info("submission chosen to break a deadlock; running it again")
        raise AssertionError("unreachable")

    return retrier.run(attempt, again_after_commit=submit_id is not None, what="submit")


def retried(cls: S) -> S:
    """Wrap each public method of a store class in `Retrier.run` (the instance's `_retrier`)
    by its rule in RULES (ONCE if it has none), except OWN and UNWRAPPED."""
    unknown = sorted(set(RULES) - set(dir(cls)))
    if unknown:
        raise TypeError(f"{cls.__name__} has no methods {unknown} named in reconnect.RULES")
    for name in dir(cls):
        method = getattr(cls, name)
        if name.startswith("_") or name in OWN or name in UNWRAPPED:
            continue
        if inspect.isfunction(method):
            setattr(cls, name, _wrap(method, RULES.get(name, ONCE) == AGAIN))
    return cls


def _wrap(method: Callable[..., T], again_after_commit: bool) -> Callable[..., T]:
    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> T:
        retrier: Retrier = self._retrier
        return retrier.run(
            lambda _: method(self, *args, **kwargs),
            again_after_commit=again_after_commit,
            what=method.__name__,
        )

    return call


def _line(exc: BaseException) -> str:
    """An error's message on one line."""
    return " ".join(str(exc).split()) or type(exc).__name__
