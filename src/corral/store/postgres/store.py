"""The PostgreSQL store: many worker hosts around one database.

A psycopg 3 connection pool; every transition one statement (data-modifying CTEs write the event
rows beside the state change); claims with `FOR UPDATE SKIP LOCKED`; bulk submits with COPY;
wake-ups with LISTEN/NOTIFY; the scheduler's leadership is a session advisory lock, which
PostgreSQL itself frees when its holder's connection dies. A lost connection is replaced, and the
call run again where that is safe (reconnect.py).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from importlib import resources
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
from psycopg_pool import ConnectionPool

from ...clock import DatabaseClock
from ...errors import ConfigError, DatabaseError, LeadershipLost, TaskNotFound, TransitionRefused
from ...failures import end_detail
from ...interrupts import shield_calls
from ...lanes import takes_lane
from ...lifecycle import State
from ...model import (
    Bucket,
    ClaimedTask,
    DispatchHeads,
    DispatchLoad,
    Event,
    FeedEvent,
    GroupConfig,
    HeadsWanted,
    LogLine,
    NewTask,
    Submitted,
    TaskQuery,
    TaskRecord,
    WorkerInfo,
    WorkerRecord,
    WorkflowStatus,
    WorkflowSubmitted,
)
from ...moves import check_completions, flag_detail, plan_cancel, plan_ids, plan_retry
from ...ratelimit import RateLimit, group_bucket, key_bucket
from ..boundary import errors_as_corral
from ..contract import (
    AdmitParams,
    CancelParams,
    CheckpointParams,
    ClaimParams,
    CompleteParams,
    ConsumerLeaseShims,
    DrainParams,
    DueParams,
    EventParams,
    InsertParams,
    LevelParams,
    RetryParams,
    SharedParams,
    Store,
    WorkflowCancelParams,
    WorkflowInsertParams,
)
from ..reads import NamedReads
from ..readside import ReadSideReads
from ..rows import (
    NO_AGING,
    ROW_FIELDS,
    STATE_AT,
    batch_edges,
    buckets_from_rows,
    claimed_task,
    consumer_position,
    deduplicated_onto,
    group_config,
    heads_from_rows,
    load_from_rows,
    new_task_row,
    new_task_values,
    rate_limits_from_rows,
    rate_params,
    submitted_again,
    task_record,
)
from . import queries as q
from . import read_queries
from .access import PostgresAccess
from .alerts import PostgresAlerts
from .bulk import PostgresBulk
from .cleanups import PostgresCleanups, write_cleanups
from .consumers import PostgresConsumers
from .lanes import PostgresLanes
from .leases import PostgresLeases, configure_session, safe_url
from .listener import Listener
from .pauses import PostgresPauses
from .reconnect import Connections, Retrier, retried, submission
from .retention import PostgresRetention
from .schedules import PostgresSchedules
from .submits import array_text
from .submits import record as _record
from .submits import recorded as _recorded
from .upkeep import PostgresUpkeep

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

log = logging.getLogger("corral.store.postgres")
T = TypeVar("T")
COPY_FROM = 200
"""Batches of at least this many tasks are loaded with COPY; smaller ones with pipelined INSERTs."""


def migration_files() -> list[tuple[int, Traversable]]:
    """The numbered migration files shipped with corral, in order, unread: the start-up's schema
    check reads none of them (the latest version is in their names)."""
    folder = resources.files("corral.store.postgres").joinpath("migrations")
    found = [(int(e.name.split("_", 1)[0]), e) for e in folder.iterdir() if e.name.endswith(".sql")]
    return sorted(found, key=lambda item: item[0])


def migrations() -> list[tuple[int, str]]:
    """The numbered migrations shipped with corral, in order."""
    return [(version, entry.read_text()) for version, entry in migration_files()]


@shield_calls  # a handler thread's interrupt never lands inside a call (corral.interrupts)
@errors_as_corral(psycopg.Error, where=lambda store: f"PostgreSQL at {safe_url(store.url)}")
@retried
class PostgresStore(
    NamedReads,
    PostgresRetention,
    PostgresConsumers,
    PostgresCleanups,
    PostgresSchedules,
    PostgresAlerts,
    PostgresBulk,
    PostgresAccess,
    PostgresPauses,
    PostgresLanes,
    PostgresUpkeep,
    ReadSideReads,
    PostgresLeases,
    ConsumerLeaseShims,
):
    """Each public method runs again after a lost connection as far as that is safe
    (reconnect.py); `_submit` and `task_claim` look up what a lost try wrote."""

    queries = q
    read_queries = read_queries
    replies_may_be_lost = True  # a session may die between the commit and its reply

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 8) -> None:
        self.url = url
        _check_reachable(url)
        self._pool = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            open=False,
            kwargs={"autocommit": True, "options": "-c synchronous_commit=off"},
            configure=configure_session,
            name="corral",
        )
        try:
            self._pool.open(wait=True, timeout=10)
        except psycopg.Error as exc:
            self._pool.close()
            raise DatabaseError(f"can't connect to {safe_url(url)}: {exc}") from None
        except Exception as exc:  # psycopg_pool.PoolTimeout carries the cause in its message
            self._pool.close()
            raise DatabaseError(f"can't connect to {safe_url(url)}: {exc}") from None
        self._leader_conns: dict[tuple[str, str], psycopg.Connection[Any]] = {}
        self._leader_lock = threading.Lock()
        self._retrier = Retrier()
        self._connections = Connections(self._pool, f"PostgreSQL at {safe_url(url)}", self._retrier)
        try:
            self._clock = DatabaseClock(lambda: float(self._one(q.CLOCK_NOW)[0][0]))
        except DatabaseError:
            self._pool.close()
            raise

    def clock(self) -> DatabaseClock:
        return self._clock

    # -- connections --------------------------------------------------------------------------
    @contextmanager
    def _tx(self, durable: bool = False) -> Iterator[psycopg.Connection[Any]]:
        """A connection in a transaction; connection failures become DatabaseError.

        The pool's sessions commit asynchronously (`synchronous_commit = off`): what they write
        can be rebuilt after a server crash, which loses only the last few hundred milliseconds
        of it (an admission or a claim reverts, and the lease machinery runs the task again).
        What a caller must be able to rely on once the call returns (a submitted task, a recorded
        outcome, a checkpoint, a cancel) is written `durable`: flushed before the commit returns.
        """
        first = q.DURABLE_COMMIT if durable else None
        with self._errors(), self._connections.transaction(first) as conn:
            yield conn

    @contextmanager
    def _statement(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection whose statements commit themselves (each its own transaction, with the
        pool sessions' asynchronous commit unless the statement sets it durable)."""
        with self._errors(), self._connections.autocommitted() as conn:
            yield conn

    def _one(self, query: str, params: Any = None) -> list[Any]:
        """One statement in its own (asynchronously committed) transaction: no BEGIN or COMMIT
        round trips. Its rows, if it returns any."""
        with self._errors():
            return self._connections.one(query, params)[0]

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Connection failures become DatabaseError, naming the server but not the password."""
        try:
            yield
        except psycopg.errors.UniqueViolation:
            raise
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise DatabaseError(f"PostgreSQL at {safe_url(self.url)}: {exc}") from None
        except psycopg.errors.UndefinedTable as exc:
            raise DatabaseError(
                f"{safe_url(self.url)} has no corral schema ({exc}): run `corral migrate`"
            ) from None

    def _read(self, query: str, params: Any = None) -> list[Any]:
        return self._one(query, params)  # retried by the public method that reads

    def close(self) -> None:
        self._clock.stop()
        with self._leader_lock:
            for conn in self._leader_conns.values():
                conn.close()
            self._leader_conns.clear()
        self._pool.close()

    # -- schema -------------------------------------------------------------------------------
    def migrate(self) -> list[int]:
        done = []
        with self._tx(durable=True) as conn:
            conn.execute(q.LOCK_MIGRATIONS)
            conn.execute(q.CREATE_MIGRATIONS)
            applied = {row[0] for row in conn.execute(q.APPLIED_MIGRATIONS)}
            for version, entry in migration_files():
                if version not in applied:
                    conn.execute(entry.read_text().encode())
                    conn.execute(q.RECORD_MIGRATION, (version, self._clock.now()))
                    done.append(version)
        return done

    def schema_version(self) -> int:
        with self._tx() as conn:
            if not conn.execute(q.HAS_SCHEMA).fetchone()[0]:  # type: ignore[index]
                return 0
            rows = conn.execute(q.APPLIED_MIGRATIONS).fetchall()
        return rows[-1][0] if rows else 0

    def check_schema(self) -> None:
        """Raise a clear DatabaseError if this database has no (or an older) corral schema."""
        latest = migration_files()[-1][0]
        version = self.schema_version()
        if version < latest:
            raise DatabaseError(
                f"{safe_url(self.url)} has corral schema version {version}, this corral needs "
                f"{latest}: run `corral migrate`"
            )

    # -- submit and read ----------------------------------------------------------------------
    def task_insert_many(self, params: InsertParams) -> list[Submitted]:
        """With `joined`, the insert joins the caller's transaction: the tasks exist only if the
        caller commits."""
        tasks, now, submit_id = params.tasks, params.now, params.submit_id

        def write(tx: psycopg.Connection[Any], look: bool) -> list[Submitted]:
            if look and (found := _recorded(tx, submit_id)) is not None:
                return submitted_again(str(submit_id), found, len(tasks), workflow=False)[1]
            return _record(tx, submit_id, self._insert(tx, tasks, now), None, now)

        if params.joined is not None:
            return write(params.joined.postgres(), submit_id is not None)
        if len(tasks) == 1 and not tasks[0].depends_on:
            done = self._submit_one(tasks[0], now, submit_id)
            if done is not None:
                return done
        return self._submit(write, submit_id)

    def _submit_one(
        self, task: NewTask, now: float, submit_id: str | None
    ) -> list[Submitted] | None:
        """The common submit, one task with no dependency, in one round trip (q.SUBMIT_ONE, or
        q.SUBMIT_ONE_DEDUP with a dedup key: id, insert, event, submit id, wake-up and a durable
        commit in one statement); a try that may follow a committed one first looks its submit
        id up. None: a concurrent submit took the dedup key after the statement's snapshot and
        nothing was written; the general path then finds that holder."""

        def write(conn: psycopg.Connection[Any], look: bool) -> list[Submitted] | None:
            if look and (found := _recorded(conn, submit_id)) is not None:
                return submitted_again(str(submit_id), found, 1, workflow=False)[1]
            row = {**new_task_row(task, 0, now, 0), "submit_id": submit_id}
            if task.dedup_key is None:
                row["lane"] = takes_lane(task, row["state"])
                (task_id, *_), *_ = conn.execute(q.SUBMIT_ONE, row)
                return [Submitted(int(task_id), created=True)]
            (created, holder, *_), *_ = conn.execute(q.SUBMIT_ONE_DEDUP, row)
            if created is not None:
                return [Submitted(int(created), created=True)]
            if holder is not None:
                return [Submitted(int(holder), created=False)]
            return None

        return submission(self._retrier, self._statement, write, submit_id)

    def _submit(self, write: Callable[[psycopg.Connection[Any], bool], T], submit_id: Any) -> T:
        """Run a submission in a durable transaction of its own (see reconnect.submission)."""
        return submission(self._retrier, lambda: self._tx(durable=True), write, submit_id)

    def _insert(
        self, conn: psycopg.Connection[Any], tasks: Sequence[NewTask], now: float
    ) -> list[Submitted]:
        _check_dependencies_exist(conn, tasks)
        (reserved,) = conn.execute(q.RESERVE_IDS, {"n": len(tasks)}).fetchone() or (None,)
        ids = sorted(map(int, reserved.split(","))) if reserved else []
        keys = sorted({t.dedup_key for t in tasks if t.dedup_key is not None})
        holders: dict[str, int] = {}
        if keys:
            holders = dict(conn.execute(q.FIND_DEDUP, {"keys": keys}).fetchall())
        # Each task's id as far as known before inserting: a dedup key held already (or earlier
        # in the batch) gives the holder's; the edges of a workflow need them up front.
        planned = plan_ids(tasks, holders, iter(ids))
        linked = any(t.depends_on or t.after for t in tasks)
        edges = batch_edges(tasks, [p.id for p in planned]) if linked else None
        taken: dict[int, int] = {}  # planned id -> the task of a concurrent submit holding its key
        if not keys and edges is None:  # the common batch: every task new, none linked
            plain = [new_task_values(t, p.id, now, 0) for t, p in zip(tasks, planned, strict=True)]
            results, created = planned, [p.id for p in planned]
            states = [v[STATE_AT] for v in plain]
        else:
            results, plain, created, states = _rows(conn, tasks, planned, edges, taken, now)
        if len(plain) >= COPY_FROM:
            with conn.cursor().copy(q.COPY_TASKS) as copy:
                for values in plain:
                    copy.write_row(values)
        elif plain:
            conn.cursor().executemany(
                q.INSERT_TASK, [dict(zip(ROW_FIELDS, v, strict=True)) for v in plain]
            )
        if edges is not None:
            self._link(conn, planned, edges, created, taken, [r.id for r in results], tasks)
        if created:
            ids_and_states = {"ids": array_text(created), "states": array_text(states)}
            conn.execute(q.INSERT_SUBMITTED_EVENTS, {"now": now, **ids_and_states})
        return results

    @staticmethod
    def _link(
        conn: psycopg.Connection[Any],
        planned: list[Submitted],
        edges: list[list[int]],
        created: list[int],
        taken: dict[int, int],
        final: list[int],
        tasks: Sequence[NewTask],
    ) -> None:
        """Write the dependency edges of the tasks created; if a concurrent submit took a dedup
        key (`taken`), the edges follow the ids it gave (`final`) and the new tasks' counts of
        dependencies left are recounted."""
        if taken:
            edges = batch_edges(tasks, final)
        upstream_of = {p.id: up for p, up in zip(planned, edges, strict=True) if p.created}
        pairs = [(task_id, d) for task_id in created for d in upstream_of[task_id]]
        if not pairs:
            return
        conn.execute(
            q.INSERT_DEPS,
            {"task_ids": [e[0] for e in pairs], "deps": [e[1] for e in pairs]},
        )
        upstream_ids = {"ids": sorted({d for _, d in pairs})}
        conn.execute(q.MARK_HAS_DEPENDENTS, upstream_ids)
        conn.execute(q.QUEUE_ENDED, upstream_ids)  # ended already: settled by the resolver
        if taken:
            conn.execute(q.RECOUNT_NEW, {"ids": sorted({t for t, _ in pairs})})

    def task_list(self, query: TaskQuery) -> list[TaskRecord]:
        params = {
            "states": [str(s) for s in query.states] if query.states else None,
            "group_name": query.group,
            "name": query.name,
            "ids": list(query.ids) if query.ids else None,
            "limit": query.limit,
        }
        return [task_record(row) for row in self._read(q.LIST_TASKS, params)]

    def task_states(self, task_ids: Sequence[int]) -> dict[int, State]:
        rows = self._read(q.TASK_STATES, {"ids": list(task_ids)})
        return {row[0]: State(row[1]) for row in rows}

    # -- resolver and promoter ----------------------------------------------------------------
    def task_release_due(self, params: DueParams) -> int:
        self._settle(params.limit)
        args = {"now": params.now, "limit": params.limit, "no_aging": NO_AGING}
        return len(self._one(q.RELEASE_DUE, args))

    def task_fail_upstream(self, params: DueParams) -> int:
        self._settle(params.limit)
        return len(self._one(q.FAIL_UPSTREAM, {"now": params.now, "limit": params.limit}))

    def _settle(self, limit: int) -> None:
        """Recount the dependencies of the waiting dependents of tasks that ended (queued by a
        trigger on their end), in one transaction with taking them off the queue: cost follows
        the ended tasks, never the waiting backlog. Unprepared statements, so that each is
        planned for the ids it gets (a head with 100,000 dependents, or 100 tasks with one)."""
        with self._tx() as conn:
            ended = [r[0] for r in conn.execute(q.TAKE_ENDED, {"limit": limit}, prepare=False)]
            if ended:
                conn.execute(q.SETTLE_DEPENDENTS, {"ids": ended}, prepare=False)

    def task_set_levels(self, levels: LevelParams) -> int:
        changes = levels.changes
        params = {
            "ids": [c.id for c in changes],
            "levels": [c.level for c in changes],
            "promote_at": [c.promote_at for c in changes],
        }
        with self._errors():
            return self._connections.one(q.SET_LEVELS, params)[1]

    # -- dispatcher ---------------------------------------------------------------------------
    def ready_groups_refresh(self, limit: int) -> int:
        rows = self._leading(q.REFRESH_HEADS, {"limit": limit})
        return int(rows[0][0])

    def dispatch_load(self, now: float, fold_hints: int = 0) -> DispatchLoad:
        if fold_hints:
            row = self._leading(q.FOLD_AND_LOAD, {"now": now, "limit": fold_hints})[0]
        else:
            row = self._read(q.DISPATCH_LOAD, {"now": now})[0]
        capacity, active, groups, paused = row
        configs = {row[0]: group_config(row) for row in groups}
        slots = {pool: slots for pool, slots in capacity}
        return load_from_rows(slots, active, configs, paused)

    def dispatch_heads(
        self, wants: Sequence[HeadsWanted], skip: Sequence[str], now: float
    ) -> DispatchHeads:
        params = {
            "pools": [w.pool for w in wants],
            "groups": [w.groups for w in wants],
            "tasks": [w.tasks for w in wants],
            "skip": list(skip),
            "now": now,
        }
        heads, groups, buckets, limits = self._read(q.DISPATCH_HEADS, params)[0]
        ready, more = heads_from_rows(heads)
        return DispatchHeads(
            ready,
            more,
            {row[0]: group_config(row) for row in groups},
            buckets_from_rows(buckets),
            rate_limits_from_rows(limits),
        )

    def task_admit_many(self, admit: AdmitParams) -> list[int]:
        task_ids, now, buckets = admit.task_ids, admit.now, admit.buckets
        params = {
            "ids": list(task_ids),
            "now": now,
            "keys": [b.key for b in buckets],
            "tokens": [b.tokens for b in buckets],
            "updated_at": [b.updated_at for b in buckets],
            "per_second": [b.per_second for b in buckets],
            "burst": [b.burst for b in buckets],
        }
        rows = self._leading(q.ADMIT, params)
        admitted = {task_id for task_id, _ in rows}
        # dict.fromkeys: an id given twice was moved once, so it is returned once
        return [task_id for task_id in dict.fromkeys(task_ids) if task_id in admitted]

    def _leading(self, query: str, params: Any) -> list[Any]:
        """Run a statement of the leader's through the session that holds the leadership lock:
        if that session died, the lock is free and another scheduler may lead already, so this
        raises rather than write beside it (two leaders can overrun a group's cap). The dead
        connection stays in place, closed, until leader_acquire notices it. Without a
        leadership (tests, tools) the statement runs on a pooled connection."""
        with self._leader_lock:
            leading = next(iter(self._leader_conns.values()), None)
            if leading is not None:
                try:
                    return leading.execute(query, params).fetchall()
                except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                    leading.close()
                    raise LeadershipLost(f"the leadership's connection was lost: {exc}") from None
        return self._one(query, params)

    def bucket_get_many(self, keys: Sequence[str]) -> dict[str, Bucket]:
        return buckets_from_rows(self._read(q.BUCKETS_NAMED, {"keys": list(keys)}))

    def rate_limit_configure(self, key: str, rate: RateLimit | None) -> None:
        with self._tx(durable=True) as conn:
            if rate is None:
                conn.execute(q.DELETE_RATE_LIMIT, (key,))
            else:
                conn.execute(q.UPSERT_RATE_LIMIT, {"key": key, **rate_params(rate)})
            conn.execute(q.DELETE_BUCKET, (key_bucket(key),))

    # -- worker -------------------------------------------------------------------------------
    def task_claim(self, claim_params: ClaimParams) -> list[ClaimedTask]:
        params = {
            "worker": claim_params.worker_id,
            "lease": claim_params.lease_until,
            "now": claim_params.now,
            "pools": list(claim_params.pools),
            "limit": claim_params.limit,
            "may_take_suspect": claim_params.may_take_suspect,
        }

        def claim(maybe_committed: bool) -> list[ClaimedTask]:
            if maybe_committed:  # the reply of a claim was lost: hand out what it took, if it did
                taken = self._one(q.CLAIMED_AT, params)
                if taken:
                    return [claimed_task(row) for row in taken]
            return [claimed_task(row) for row in self._one(q.CLAIM, params)]

        return self._retrier.run(claim, again_after_commit=True, what="claim")

    def task_drain_mark(self, drain: DrainParams) -> int | None:
        params = {
            "worker": drain.worker_id,
            "pools": list(drain.pools),
            "overdue_before": drain.overdue_before,
            "hold_until": drain.hold_until,
            "now": drain.now,
        }
        rows = self._read(q.TAKE_DRAIN_MARK, params)
        return int(rows[0][0]) if rows else None

    def task_complete_many(self, complete: CompleteParams) -> list[int]:
        reports, now = complete.reports, complete.now
        if not reports:
            return []
        check_completions(reports)
        params = {
            "ids": [r.task_id for r in reports],
            "attempts": [r.attempt for r in reports],
            "targets": [str(r.target) for r in reports],
            "outcomes": [r.outcome for r in reports],
            "failed": [int(r.counts_as_failure) for r in reports],
            "workers": [r.worker_id for r in reports],
            "results": [r.result for r in reports],
            "errors": [r.error for r in reports],
            "tracebacks": [r.traceback for r in reports],
            # A report leaving a clean-up holds its retry (run_at NULL) until the clean-up ended.
            "retry_at": [None if r.cleanup is not None else r.retry_at for r in reports],
            "stalled": [r.stalled_slices for r in reports],
            "flags": [r.flag for r in reports],
            "details": [end_detail(r.outcome, r.error, r.traceback) for r in reports],
            "suspects": [r.suspect for r in reports],
            "crashes": [r.isolated_crashes for r in reports],
            "flag_details": [None if r.flag is None else flag_detail(r) for r in reports],
            "now": now,
            "no_aging": NO_AGING,
        }

        if all(r.cleanup is None for r in reports):  # the common case: one round trip
            with self._statement() as conn:
                return [row[0] for row in conn.execute(q.COMPLETE_ONE, params)]
        with self._tx(durable=True) as conn:
            recorded = [row[0] for row in conn.execute(q.COMPLETE, params)]
            write_cleanups(conn, reports, recorded, now)
            if recorded:
                conn.execute(q.NOTIFY, (q.CHANNEL_SCHEDULER, ""))
            return recorded

    def task_save_checkpoint(self, params: CheckpointParams) -> bool:
        args = (params.checkpoint, params.task_id, params.attempt)
        with self._tx(durable=True) as conn:
            return conn.execute(q.SAVE_CHECKPOINT, args).rowcount == 1

    def task_save_shared(self, params: SharedParams) -> bool:
        args = (params.shared, params.task_id, params.attempt)
        with self._tx(durable=True) as conn:
            return conn.execute(q.SAVE_SHARED, args).rowcount == 1

    def task_record_event(self, event: EventParams) -> bool:
        params = {"id": event.task_id, "attempt": event.attempt, "kind": event.kind,
                  "detail": event.detail, "now": event.now}  # fmt: skip
        with self._tx() as conn:
            return conn.execute(q.RECORD_EVENT, params).rowcount == 1

    def log_append_many(self, lines: Sequence[LogLine]) -> None:
        if not lines:
            return
        with self._tx() as conn, conn.cursor().copy(q.COPY_LOGS) as copy:
            for ln in lines:
                copy.write_row((ln.task_id, ln.attempt, ln.at, ln.level, ln.message))

    # -- operators ----------------------------------------------------------------------------
    def task_cancel(self, params: CancelParams) -> tuple[State, State | None]:
        task_id, now = params.task_id, params.now
        with self._tx(durable=True) as conn:
            plan = plan_cancel(task_id, *_state_for_update(conn, task_id), now)
            if plan.after is None:
                conn.execute(q.REQUEST_CANCEL, {"id": task_id})
                conn.execute(q.NOTIFY, (q.CHANNEL_WORKERS, f"cancel:{task_id}"))
            else:
                args = {"id": task_id, "now": now, "expected": str(plan.before)}
                conn.execute(q.CANCEL_NOW, args)
            conn.execute(q.INSERT_EVENT, plan.event)
            return plan.before, plan.after

    def task_retry(self, params: RetryParams) -> State:
        task_id, now = params.task_id, params.now
        try:
            with self._tx(durable=True) as conn:
                before, attempt = _state_for_update(conn, task_id)
                event = plan_retry(task_id, before, attempt, now)
                args = {"id": task_id, "now": now, "expected": str(before), "no_aging": NO_AGING}
                conn.execute(q.RETRY, args)
                conn.execute(q.INSERT_EVENT, event)
                conn.execute(q.NOTIFY, (q.CHANNEL_SCHEDULER, ""))
                return before
        except psycopg.errors.UniqueViolation:
            raise TransitionRefused(
                f"task {task_id} can't be retried: another unfinished task holds its dedup key"
            ) from None

    # -- workers, leader, groups --------------------------------------------------------------
    def worker_register(self, worker: WorkerInfo, lease_until: float, now: float) -> None:
        params = {
            "id": worker.id,
            "hostname": worker.hostname,
            "pid": worker.pid,
            "pools": list(worker.pools),
            "concurrency": worker.concurrency,
            "now": now,
            "lease": lease_until,
        }

        with self._tx() as conn:
            conn.execute(q.PRUNE_WORKERS, {"before": now - 3600})
            conn.execute(q.UPSERT_WORKER, params)
            conn.execute(q.NOTIFY, (q.CHANNEL_SCHEDULER, ""))  # capacity appeared

    def worker_list(self, now: float) -> list[WorkerRecord]:
        return [
            WorkerRecord(r[0], r[1], r[2], tuple(r[3]), *r[4:])
            for r in self._read(q.LIST_WORKERS, {"now": now})
        ]

    def group_configure(self, config: GroupConfig) -> None:
        params = {
            "name": config.name,
            "max_parallel": config.max_parallel,
            "weight": config.weight,
            **rate_params(config.rate_limit),
        }
        with self._tx(durable=True) as conn:
            conn.execute(q.DELETE_BUCKET, (group_bucket(config.name),))
            conn.execute(q.UPSERT_GROUP, params)

    # -- wake-ups -----------------------------------------------------------------------------
    notifies = True

    def listen(self, channels: Sequence[str]) -> Listener:
        """A connection LISTENing on `channels`, for `wait()`s that end at the first notice."""
        return Listener(self.url, [q.CHANNEL_PREFIX + c for c in channels])

    # -- workflows ------------------------------------------------------------------------------
    def workflow_insert(self, params: WorkflowInsertParams) -> WorkflowSubmitted:
        workflow, tasks, now, submit_id = (params.workflow, params.tasks, params.now,
                                           params.submit_id)  # fmt: skip

        def insert(tx: psycopg.Connection[Any], look: bool) -> WorkflowSubmitted:
            if look and (found := _recorded(tx, submit_id)) is not None:
                return WorkflowSubmitted(*submitted_again(str(submit_id), found, len(tasks)))
            params = {"name": workflow.name, "group_name": workflow.group, "now": now}
            row = tx.execute(q.INSERT_WORKFLOW, params).fetchone()
            assert row is not None
            workflow_id = int(row[0])
            own = [replace(t, workflow_id=workflow_id) for t in tasks]
            results = self._insert(tx, own, now)
            if linked := deduplicated_onto(results):
                tx.execute(q.INSERT_WORKFLOW_LINKS, {"id": workflow_id, "task_ids": linked})
            return WorkflowSubmitted(workflow_id, _record(tx, submit_id, results, workflow_id, now))

        if params.joined is not None:
            return insert(params.joined.postgres(), submit_id is not None)
        return self._submit(insert, submit_id)

    def workflow_get(self, workflow_id: int) -> WorkflowStatus | None:
        rows = self._read(q.WORKFLOW_STATUS, (workflow_id,))
        if not rows:
            return None
        wid, name, group, created, counts = rows[0]
        return WorkflowStatus(wid, name, group, created, {s: int(n) for s, n in counts.items()})

    def workflow_cancel(self, params: WorkflowCancelParams) -> tuple[int, int]:
        workflow_id, now = params.workflow_id, params.now
        with self._tx(durable=True) as conn:
            if conn.execute(q.LOCK_WORKFLOW, (workflow_id,)).fetchone() is None:
                raise TaskNotFound(f"no workflow with id {workflow_id}")
            row = conn.execute(q.CANCEL_WORKFLOW, {"id": workflow_id, "now": now}).fetchone()
            assert row is not None
            return int(row[0]), int(row[1])

    # -- cancel requests and event consumers ----------------------------------------------------
    def consumer_advance(
        self, name: str, holder: str, position: tuple[int, int], now: float
    ) -> bool:
        params = consumer_position(name, holder, position, now)
        with self._tx(durable=True) as conn:
            return conn.execute(q.ADVANCE_CONSUMER, params).fetchone() is not None

    def event_fetch_unseen(self, name: str, limit: int) -> list[FeedEvent]:
        rows = self._read(q.EVENTS_UNSEEN, {"name": name, "limit": limit})
        return [FeedEvent(Event(*r[:8]), r[8], r[9], r[10], int(r[11])) for r in rows]


def _check_dependencies_exist(conn: psycopg.Connection[Any], tasks: Sequence[NewTask]) -> None:
    wanted = sorted({d for t in tasks for d in t.depends_on})
    if not wanted:
        return
    found = {r[0] for r in conn.execute(q.EXISTING_IDS, {"ids": wanted})}
    missing = [d for d in wanted if d not in found]
    if missing:
        raise ConfigError(f"depends_on names tasks that don't exist: {missing}")


def _rows(
    conn: psycopg.Connection[Any],
    tasks: Sequence[NewTask],
    planned: list[Submitted],
    edges: list[list[int]] | None,
    taken: dict[int, int],
    now: float,
) -> tuple[list[Submitted], list[tuple[Any, ...]], list[int], list[str]]:
    """A batch with dedup keys or edges: each task holding a key inserted at once (a concurrent
    submit may hold it: its task, noted in `taken`, is the result); the others' rows returned
    (`plain`) for one COPY. Returns the results, those rows, and the ids and states created."""
    results: list[Submitted] = []
    plain: list[tuple[Any, ...]] = []
    created: list[int] = []
    states: list[str] = []
    for i, (task, plan) in enumerate(zip(tasks, planned, strict=True)):
        if not plan.created:
            results.append(Submitted(taken.get(plan.id, plan.id), created=False))
            continue
        values = new_task_values(task, plan.id, now, 0 if edges is None else len(edges[i]))
        if task.dedup_key is None:
            plain.append(values)
        elif (existing := _insert_dedup(conn, task, values)) != plan.id:
            taken[plan.id] = existing
            results.append(Submitted(existing, created=False))
            continue
        created.append(plan.id)
        states.append(values[STATE_AT])
        results.append(plan)
    return results, plain, created, states


def _insert_dedup(conn: psycopg.Connection[Any], task: NewTask, values: tuple[Any, ...]) -> int:
    """Insert a task holding a dedup key; if a concurrent submit holds it, return that task.
    The ON CONFLICT waits for the other transaction, so the key's holder is settled."""
    inserted = conn.execute(
        q.INSERT_DEDUP_TASK, dict(zip(ROW_FIELDS, values, strict=True))
    ).fetchone()
    if inserted is not None:
        return int(inserted[0])
    holder = conn.execute(q.FIND_DEDUP, {"keys": [task.dedup_key]}).fetchone()
    if holder is None:  # the holder ended between the two statements: take the key now
        return _insert_dedup(conn, task, values)
    return int(holder[1])


def _state_for_update(conn: psycopg.Connection[Any], task_id: int) -> tuple[State, int]:
    row = conn.execute(q.TASK_STATE_FOR_UPDATE, (task_id,)).fetchone()
    if row is None:
        raise TaskNotFound(f"no task with id {task_id}")
    return State(row[0]), int(row[1])


def _check_reachable(url: str) -> None:
    """Fail fast with one clear message, before a pool retries in the background."""
    try:
        psycopg.connect(url, connect_timeout=5).close()
    except psycopg.Error as exc:
        reason = " ".join(line.strip() for line in str(exc).splitlines()) or type(exc).__name__
        raise DatabaseError(f"can't connect to {safe_url(url)}: {reason}") from None


def _conforms(store: PostgresStore) -> Store:
    """For mypy: the PostgreSQL store implements the whole contract (open_store imports it by
    name, so nothing else checks it)."""
    return store
