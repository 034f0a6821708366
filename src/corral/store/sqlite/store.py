"""The embedded SQLite store: one file, many processes on one host.

WAL journal, every write in an immediate transaction (so writers queue on the busy timeout
instead of failing), one connection per thread. Claims are one `UPDATE ... RETURNING`;
submissions, admissions and completions are batched in one transaction each. Wake-ups go between
the processes over Unix datagram sockets (wake.py), each sent once its write has committed.
"""

from __future__ import annotations

import itertools
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from ...clock import SystemClock
from ...codec import dumps, loads
from ...errors import ConfigError, DatabaseError, TaskNotFound, TransitionRefused
from ...interrupts import shield_calls
from ...lanes import takes_lane
from ...lifecycle import TERMINAL, State
from ...model import (
    DEFAULTS_GROUP,
    AttemptReport,
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
from ...moves import (
    ADMIT,
    FAIL_UPSTREAM,
    RELEASE_RETRY,
    RELEASE_WAITING,
    check_completions,
    completion_events,
    plan_cancel,
    plan_ids,
    plan_retry,
)
from ...ratelimit import RateLimit, group_bucket, key_bucket
from ..boundary import errors_as_corral
from ..contract import (
    SCHEDULER_CHANNEL,
    WORKERS_CHANNEL,
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
    WorkflowCancelParams,
    WorkflowInsertParams,
)
from ..reads import NamedReads
from ..readside import ReadSideReads
from ..rows import (
    GROUP_AT,
    NO_AGING,
    POOL_AT,
    STATE_AT,
    batch_edges,
    bucket_keys,
    buckets_from_rows,
    claimed_task,
    consumer_position,
    deduplicated_onto,
    group_config,
    heads_from_rows,
    heads_per_group,
    load_from_rows,
    new_task_values,
    rate_limits_from_rows,
    rate_params,
    submitted_again,
    task_record,
)
from . import lane_queries, pause_queries, read_queries
from . import queries as q
from .access import SQLiteAccess
from .alerts import SQLiteAlerts
from .bulk import SQLiteBulk
from .cleanups import SQLiteCleanups, write_cleanups
from .consumers import SQLiteConsumers
from .lanes import SQLiteLanes
from .leases import SQLiteLeases
from .listener import PollingListener
from .migrate import latest_schema, migration_files
from .migrate import split_sql as _split_sql
from .pauses import SQLitePauses
from .retention import SQLiteRetention
from .schedules import SQLiteSchedules
from .submits import record as _record
from .submits import recorded as _recorded
from .upkeep import SQLiteUpkeep
from .wake import Notice, Notifier, SocketListener, folder_for

T = TypeVar("T")
READY = str(State.READY)
SCHEDULER, WORKERS = SCHEDULER_CHANNEL, WORKERS_CHANNEL


def _json_list(values: Sequence[Any]) -> str:
    return dumps(list(values))


SYSTEM_CLOCK = SystemClock()

_WRITE_LOCKS: dict[str, threading.RLock] = {}
_WRITE_LOCKS_GUARD = threading.Lock()


def _write_lock(path: str) -> threading.RLock:
    """The lock this process's writers to the file at `path` take before BEGIN IMMEDIATE.

    SQLite's busy handler waits for a held write lock by sleeping 1, 2, 5, 10... ms and trying
    again, so two threads of one process (the scheduler's and the worker's, in `corral run`)
    that meet on the lock lose milliseconds per transaction of a millisecond or less: most of a
    drain's time went there. Queued on a lock of the process, a writer starts the moment the
    previous one commits. Writers in other processes still meet on SQLite's own lock.
    """
    with _WRITE_LOCKS_GUARD:
        lock = _WRITE_LOCKS.get(path)
        if lock is None:
            lock = _WRITE_LOCKS[path] = threading.RLock()
        return lock


def _reset_write_locks() -> None:
    global _WRITE_LOCKS_GUARD
    _WRITE_LOCKS.clear()  # a forked child must not inherit a lock a thread of its parent held
    _WRITE_LOCKS_GUARD = threading.Lock()


os.register_at_fork(after_in_child=_reset_write_locks)


@shield_calls  # a handler thread's interrupt never lands inside a call (corral.interrupts)
@errors_as_corral(sqlite3.Error, where=lambda store: str(store.path))  # store/boundary.py
class SQLiteStore(
    NamedReads,
    SQLiteRetention,
    SQLiteConsumers,
    SQLiteCleanups,
    SQLiteSchedules,
    SQLiteAlerts,
    SQLiteBulk,
    SQLiteAccess,
    SQLitePauses,
    SQLiteLanes,
    SQLiteUpkeep,
    ReadSideReads,
    SQLiteLeases,
    ConsumerLeaseShims,
):
    queries = q
    read_queries = read_queries
    replies_may_be_lost = False  # in-process: a commit that failed did not happen

    def __init__(self, path: str, *, busy_timeout: float = 30.0, synchronous: str = "NORMAL"):
        if path == ":memory:" or path == "":
            raise DatabaseError(
                "an in-memory SQLite database can't be shared by the scheduler and workers; "
                "give a file path such as sqlite:///corral.db"
            )
        self.path = str(Path(path).expanduser())
        self.url = f"sqlite:///{self.path}"
        self._busy_timeout = busy_timeout
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise DatabaseError(f"unknown SQLite synchronous mode {synchronous!r}")
        self._synchronous = synchronous.upper()
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._write_lock = _write_lock(os.path.realpath(self.path))
        parent = Path(self.path).parent
        if not parent.is_dir():
            raise DatabaseError(f"can't open {self.path}: folder {parent} does not exist")
        folder = folder_for(self.path)
        self._notifier = None if folder is None else Notifier(folder)
        self.notifies = self._notifier is not None

    # -- connections --------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=self._busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        except sqlite3.DatabaseError as exc:
            raise DatabaseError(f"can't open SQLite database {self.path}: {exc}") from None
        if mode.lower() != "wal":
            raise DatabaseError(f"{self.path}: SQLite refused WAL mode (got {mode!r})")
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """An immediate transaction: the write lock is taken up front, so there is no
        upgrade deadlock between processes; SQLite's busy timeout queues writers."""
        conn = self._conn()
        notices: list[Notice] = []
        with self._write_lock:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise DatabaseError(f"{self.path}: can't start a write ({exc})") from None
            self._local.notices = notices
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            else:
                conn.execute("COMMIT")
            finally:
                self._local.notices = None
        if notices and self._notifier is not None:  # committed: a woken reader sees the rows
            self._notifier.send(notices)

    def _notice(self, channel: str, payload: str = "") -> None:
        """Queue a wake-up, sent once the write in progress on this thread has committed (and
        dropped if it rolls back). Outside a write of the store's own (a submit joining a
        caller's transaction, which the store can't see commit) there is none to send: the
        listeners' poll picks the rows up."""
        notices: list[Notice] | None = getattr(self._local, "notices", None)
        if notices is not None:
            notices.append((channel, payload))

    def _read(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Any]:
        try:
            return self._conn().execute(sql, params).fetchall()
        except sqlite3.DatabaseError as exc:
            raise DatabaseError(f"{self.path}: {exc}") from None

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()
        if self._notifier is not None:
            self._notifier.close()

    def clock(self) -> SystemClock:
        """The host's: every process of this database runs on the host that holds its file."""
        return SYSTEM_CLOCK

    # -- schema -------------------------------------------------------------------------------
    def migrate(self, *, replay: bool = False) -> list[int]:
        """Bring the file to the latest schema. A file corral never migrated gets the latest
        schema at once, from schema.sql, in one transaction: replaying the migrations would
        create the unprefixed tables of the releases before 0008 (`tasks`, `groups`, `events`)
        for a moment, and fail on a user's own database that has one of those names. `replay`:
        every migration from the first (how `schema_dump` regenerates schema.sql, and how a test
        proves the two ways agree)."""
        conn = self._conn()
        if not replay and conn.execute(q.NEVER_MIGRATED).fetchone()[0]:
            with self._write() as tx:
                if tx.execute(q.NEVER_MIGRATED).fetchone()[0]:
                    for statement in _split_sql(latest_schema()):
                        tx.execute(statement)
                    tx.execute(q.SEED_FRESH)
                    now = SYSTEM_CLOCK.now()
                    versions = [version for version, _ in migration_files()]
                    tx.executemany(q.RECORD_MIGRATION, [(v, now) for v in versions])
                    return versions
        try:
            if conn.execute(q.LEGACY_MIGRATIONS).fetchall():
                with self._write() as tx:
                    if tx.execute(q.LEGACY_MIGRATIONS).fetchall():
                        tx.execute(q.RENAME_LEGACY_MIGRATIONS)
            conn.execute(q.CREATE_MIGRATIONS)
            applied = {row[0] for row in conn.execute(q.APPLIED_MIGRATIONS)}
        except sqlite3.DatabaseError as exc:
            raise DatabaseError(f"{self.path} is not a usable corral database: {exc}") from None
        done = []
        for version, entry in migration_files():
            if version in applied:
                continue
            sql = entry.read_text()
            with self._write() as tx:
                if tx.execute(q.APPLIED_MIGRATIONS).fetchall().count((version,)):
                    continue  # another process migrated meanwhile
                for statement in _split_sql(sql):
                    tx.execute(statement)
                tx.execute(q.RECORD_MIGRATION, (version, SYSTEM_CLOCK.now()))
            done.append(version)
        return done

    def check_schema(self) -> None:
        latest = migration_files()[-1][0]
        if self.schema_version() < latest:
            raise DatabaseError(f"{self.path} has an older corral schema: run `corral migrate`")

    def schema_version(self) -> int:
        rows = self._read(q.APPLIED_MIGRATIONS)
        return rows[-1][0] if rows else 0

    # -- submit and read ----------------------------------------------------------------------
    def task_insert_many(self, params: InsertParams) -> list[Submitted]:
        """With `joined` (a connection of the caller's on this file, in a transaction it opened),
        the insert joins that transaction: the tasks exist only if the caller commits."""
        tasks, now, submit_id = params.tasks, params.now, params.submit_id

        def write(tx: sqlite3.Connection, look: bool) -> list[Submitted]:
            if look and (found := _recorded(tx, submit_id)) is not None:
                return submitted_again(str(submit_id), found, len(tasks), workflow=False)[1]
            lane = params.joined is None  # a caller's transaction: its commit is not seen
            return _record(tx, submit_id, self._insert(tx, tasks, now, lane), None, now)

        if params.joined is not None:
            return write(params.joined.sqlite(), submit_id is not None)
        return self._submit(write)

    def _submit(self, write: Callable[[sqlite3.Connection, bool], T]) -> T:
        """Run a submission in a write of its own: first as new; if its submit id turns out to
        be recorded already, again, returning what that id stored (`look`)."""
        try:
            with self._write() as tx:
                return write(tx, False)
        except sqlite3.IntegrityError as exc:
            if "submits.submit_id" not in str(exc):
                raise
        with self._write() as tx:
            return write(tx, True)

    def _insert(
        self, tx: sqlite3.Connection, tasks: Sequence[NewTask], now: float, lane: bool = False
    ) -> list[Submitted]:
        """The tasks created take consecutive ids from the next free one (a dedup key held gives
        its holder's id instead), so their `submitted` events are copied from the rows of that
        range by one statement. `lane`: a single task may take a slot of its pool's fast lane
        (corral.lanes) and be admitted in this write."""
        keys = sorted({t.dedup_key for t in tasks if t.dedup_key is not None})
        holders: dict[str, int] = {}
        if keys:
            holders = dict(tx.execute(q.FIND_DEDUP, {"keys": _json_list(keys)}).fetchall())
        self._check_dependencies_exist(tx, tasks)
        next_id = tx.execute(q.NEXT_TASK_ID).fetchone()[0]
        results = plan_ids(tasks, holders, itertools.count(next_id))
        linked = any(t.depends_on or t.after for t in tasks)
        edges = batch_edges(tasks, [r.id for r in results]) if linked else None
        rows: list[tuple[Any, ...]] = []
        deps: list[tuple[int, int]] = []
        if edges is None:
            pairs = zip(tasks, results, strict=True)
            rows = [new_task_values(t, r.id, now, 0) for t, r in pairs if r.created]
        else:
            for task, result, upstream in zip(tasks, results, edges, strict=True):
                if result.created:
                    rows.append(new_task_values(task, result.id, now, len(upstream)))
                    deps.extend((result.id, dep) for dep in upstream)
        if not rows:
            return results
        laned = (
            lane
            and len(tasks) == 1
            and len(rows) == 1
            and takes_lane(tasks[0], rows[0][STATE_AT])
            and tx.execute(lane_queries.TAKE, _lane_of(tasks[0], now)).rowcount == 1
        )
        _in_pieces(tx, q.INSERT_TASKS, rows)
        if laned:  # admitted in this write: its pool's workers are told, not the scheduler
            self._notice(WORKERS, f"admitted:{rows[0][POOL_AT]}")
        else:
            self._notice(SCHEDULER)
        # A laned task is no group's head: no hint.
        ready = {(row[POOL_AT], row[GROUP_AT]) for row in rows if row[STATE_AT] == READY}
        tx.executemany(q.INSERT_HINT, [] if laned else sorted(ready))
        tx.executemany(q.INSERT_HINT, sorted(ready))
        tx.executemany(q.INSERT_DEP, deps)
        span = {"now": now, "first": next_id, "last": next_id + len(rows) - 1}
        tx.execute(q.INSERT_SUBMITTED_EVENTS, span)  # `submitted` ready: before the admission
        if laned:
            task_id = rows[0][0]
            tx.execute(q.ADMIT_BY_SIZE[1], (task_id, now))
            tx.executemany(q.INSERT_EVENT, ADMIT.rows([(task_id, 0)], now))
        if deps:
            upstream_ids = {"ids": _json_list(sorted({dep for _, dep in deps}))}
            tx.execute(q.MARK_HAS_DEPENDENTS, upstream_ids)
            tx.execute(q.QUEUE_ENDED, upstream_ids)  # ended already: settled by the resolver
        return results

    def _check_dependencies_exist(self, tx: sqlite3.Connection, tasks: Sequence[NewTask]) -> None:
        wanted = sorted({d for t in tasks for d in t.depends_on})
        if not wanted:
            return
        found = {r[0] for r in tx.execute(q.EXISTING_IDS, {"ids": _json_list(wanted)})}
        missing = [d for d in wanted if d not in found]
        if missing:
            raise ConfigError(f"depends_on names tasks that don't exist: {missing}")

    def task_list(self, query: TaskQuery) -> list[TaskRecord]:
        params = {
            "states": _json_list([str(s) for s in query.states]) if query.states else None,
            "group_name": query.group,
            "name": query.name,
            "ids": _json_list(query.ids) if query.ids else None,
            "limit": query.limit,
        }
        return [task_record(row) for row in self._read(q.LIST_TASKS, params)]

    def task_states(self, task_ids: Sequence[int]) -> dict[int, State]:
        rows = self._read(q.TASK_STATES, {"ids": _json_list(task_ids)})
        return {row[0]: State(row[1]) for row in rows}

    # -- resolver and promoter ----------------------------------------------------------------
    def task_release_due(self, params: DueParams) -> int:
        now = params.now
        args = {"now": now, "limit": params.limit, "no_aging": NO_AGING}
        with self._write() as tx:
            _settle(tx, params.limit)
            waiting = tx.execute(q.RELEASE_WAITING, args).fetchall()
            retries = tx.execute(q.RELEASE_RETRIES, args).fetchall()
            tx.executemany(q.INSERT_EVENT, RELEASE_WAITING.rows(waiting, now))
            tx.executemany(q.INSERT_EVENT, RELEASE_RETRY.rows(retries, now))
        return len(waiting) + len(retries)

    def task_fail_upstream(self, params: DueParams) -> int:
        with self._write() as tx:
            _settle(tx, params.limit)
            args = {"now": params.now, "limit": params.limit}
            failed = tx.execute(q.FAIL_UPSTREAM, args).fetchall()
            tx.executemany(q.INSERT_EVENT, FAIL_UPSTREAM.rows(failed, params.now))
        return len(failed)

    def task_set_levels(self, params: LevelParams) -> int:
        rows = [(c.level, c.promote_at, c.id) for c in params.changes]
        with self._write() as tx:
            return tx.executemany(q.SET_LEVEL, rows).rowcount

    # -- dispatcher ---------------------------------------------------------------------------
    def ready_groups_refresh(self, limit: int) -> int:
        with self._write() as tx:
            hinted = set(tx.execute(q.TAKE_HINTS, {"limit": limit}).fetchall())
            self._set_heads(tx, hinted)
        return len(hinted)

    @staticmethod
    def _set_heads(tx: sqlite3.Connection, groups: set[tuple[str, str]]) -> None:
        """Look up the heads of these (pool, group)s again and record them (or drop them)."""
        params = [{"pool": pool, "group_name": group} for pool, group in sorted(groups)]
        tx.executemany(q.SET_GROUP_HEAD, params)
        tx.executemany(q.DROP_GROUP_HEAD, params)

    def dispatch_load(self, now: float, fold_hints: int = 0) -> DispatchLoad:
        if fold_hints:
            self.ready_groups_refresh(fold_hints)
        conn = self._conn()
        conn.execute("BEGIN")  # one consistent read
        try:
            capacity: dict[str, int] = {}
            for pools, concurrency in conn.execute(q.LIVE_WORKERS, {"now": now}):
                for pool in _loads_list(pools):
                    capacity[pool] = capacity.get(pool, 0) + concurrency
            active = conn.execute(q.ACTIVE_COUNTS).fetchall()
            groups = self._groups_named(conn, {row[0] for row in active} | {DEFAULTS_GROUP})
            paused = [name for (name,) in conn.execute(pause_queries.PAUSED_NAMES)]
        finally:
            conn.execute("COMMIT")
        return load_from_rows(capacity, active, groups, paused)

    def dispatch_heads(
        self, wants: Sequence[HeadsWanted], skip: Sequence[str], now: float
    ) -> DispatchHeads:
        conn = self._conn()
        conn.execute("BEGIN")  # one consistent read
        try:
            rows: list[Sequence[Any]] = []
            for want in wants:
                params = {"pool": want.pool, "skip": _json_list(skip), "now": now}
                best = conn.execute(q.BEST_GROUPS, {**params, "limit": want.groups}).fetchall()
                per = heads_per_group(want, len(best))
                for (group,) in best:
                    query = {"pool": want.pool, "group_name": group, "limit": per + 1}
                    rows.extend((*row, per) for row in conn.execute(q.GROUP_HEAD_TASKS, query))
            ready, more = heads_from_rows(rows)
            groups = self._groups_named(conn, {t.group for t in ready})
            names = sorted({t.rate_key for t in ready if t.rate_key is not None})
            limits = conn.execute(q.RATE_LIMITS_NAMED, {"keys": _json_list(names)}).fetchall()
            keys = bucket_keys(ready)
            buckets = conn.execute(q.BUCKETS_NAMED, {"keys": _json_list(keys)}).fetchall()
        finally:
            conn.execute("COMMIT")
        return DispatchHeads(
            ready, more, groups, buckets_from_rows(buckets), rate_limits_from_rows(limits)
        )

    @staticmethod
    def _groups_named(conn: sqlite3.Connection, names: Any) -> dict[str, GroupConfig]:
        if not names:
            return {}
        rows = conn.execute(q.GROUPS_NAMED, {"names": _json_list(sorted(names))})
        return {row[0]: group_config(row) for row in rows}

    def task_admit_many(self, params: AdmitParams) -> list[int]:
        task_ids, now, buckets = params.task_ids, params.now, params.buckets
        admitted: list[tuple[int, int]] = []
        groups: set[tuple[str, str]] = set()
        with self._write() as tx:
            rows = [(task_id, now + order * 1e-6) for order, task_id in enumerate(task_ids)]
            found = {row[0]: row for row in _in_pieces(tx, q.ADMIT_BY_SIZE, rows)}
            for task_id in dict.fromkeys(task_ids):  # in the order asked
                if (row := found.get(task_id)) is not None:
                    admitted.append((row[0], row[1]))
                    groups.add((row[2], row[3]))
            _insert_in_pieces(tx, q.INSERT_EVENTS, ADMIT.rows(admitted, now))
            self._set_heads(tx, groups)  # the leader writes the heads: no hint needed
            tx.executemany(q.SET_BUCKET, [vars(bucket) for bucket in buckets])
            for pool in sorted({pool for pool, _ in groups}):
                self._notice(WORKERS, f"admitted:{pool}")
        return [task_id for task_id, _ in admitted]

    def bucket_get_many(self, keys: Sequence[str]) -> dict[str, Bucket]:
        return buckets_from_rows(self._read(q.BUCKETS_NAMED, {"keys": _json_list(keys)}))

    def rate_limit_configure(self, key: str, rate: RateLimit | None) -> None:
        with self._write() as tx:
            if rate is None:
                tx.execute(q.DELETE_RATE_LIMIT, (key,))
            else:
                tx.execute(q.UPSERT_RATE_LIMIT, {"key": key, **rate_params(rate)})
            tx.execute(q.DELETE_BUCKET, (key_bucket(key),))

    # -- worker -------------------------------------------------------------------------------
    def task_claim(self, params: ClaimParams) -> list[ClaimedTask]:
        args = {
            "worker": params.worker_id,
            "lease": params.lease_until,
            "now": params.now,
            "pools": _json_list(params.pools),
            "limit": params.limit,
            "may_take_suspect": int(params.may_take_suspect),
        }
        with self._write() as tx:
            heed = tx.execute(q.SUSPECTS_NEAR, args).fetchone()[0]
            rows = tx.execute(q.CLAIM if heed else q.CLAIM_PLAIN, args).fetchall()
            if rows:
                rows.sort(key=lambda r: (r[-1], r[0]))  # admission order (r[-1]: admitted_at)
                taken = {"ids": _json_list([r[0] for r in rows])}
                tx.execute(q.CLAIM_ATTEMPTS, taken)
                tx.execute(q.CLAIM_EVENTS, taken)
        return [claimed_task(row) for row in rows]

    def task_drain_mark(self, drain: DrainParams) -> int | None:
        params = {
            "worker": drain.worker_id,
            "pools": _json_list(drain.pools),
            "overdue_before": drain.overdue_before,
            "hold_until": drain.hold_until,
            "now": drain.now,
        }
        # Read first, outside a write: the common answer (no overdue suspect) takes no lock.
        rows = self._read(q.DRAIN_CANDIDATE, params)
        if not rows:
            return None
        with self._write() as tx:
            taken = tx.execute(q.TAKE_DRAIN_MARK, params | {"id": rows[0][0]}).rowcount
        return int(rows[0][0]) if taken == 1 else None

    def task_complete_many(self, params: CompleteParams) -> list[int]:
        check_completions(params.reports)
        now = params.now
        recorded: list[AttemptReport] = []
        with self._write() as tx:
            attempts, events = [], []
            for report in _record_ends(tx, params.reports, now):
                recorded.append(report)
                attempts.append((now, report.outcome, report.error, report.traceback,
                                 report.task_id, report.attempt))  # fmt: skip
                events.extend(completion_events(report, now))
            tx.executemany(q.CLOSE_ATTEMPT, attempts)  # one statement each, prepared once
            _insert_in_pieces(tx, q.INSERT_EVENTS, events)
            write_cleanups(tx, recorded, now)
            if recorded:
                self._notice(SCHEDULER)  # slots freed, retries and dependents to settle
        return [report.task_id for report in recorded]

    def task_save_checkpoint(self, params: CheckpointParams) -> bool:
        args = (params.checkpoint, params.task_id, params.attempt)
        with self._write() as tx:
            return tx.execute(q.SAVE_CHECKPOINT, args).rowcount == 1

    def task_save_shared(self, params: SharedParams) -> bool:
        args = (params.shared, params.task_id, params.attempt)
        with self._write() as tx:
            return tx.execute(q.SAVE_SHARED, args).rowcount == 1

    def task_record_event(self, event: EventParams) -> bool:
        params = {"id": event.task_id, "attempt": event.attempt, "kind": event.kind,
                  "detail": event.detail, "now": event.now}  # fmt: skip
        with self._write() as tx:
            return tx.execute(q.RECORD_EVENT, params).rowcount == 1

    def log_append_many(self, lines: Sequence[LogLine]) -> None:
        if not lines:
            return
        with self._write() as tx:
            tx.executemany(
                q.INSERT_LOG,
                [(line.task_id, line.attempt, line.at, line.level, line.message) for line in lines],
            )

    # -- operators ----------------------------------------------------------------------------
    def task_cancel(self, params: CancelParams) -> tuple[State, State | None]:
        with self._write() as tx:
            plan = plan_cancel(params.task_id, *self._state_of(tx, params.task_id), params.now)
            if plan.after is None:
                tx.execute(q.REQUEST_CANCEL, {"id": params.task_id})
                self._notice(WORKERS, f"cancel:{params.task_id}")
            else:
                args = {"id": params.task_id, "now": params.now, "expected": str(plan.before)}
                tx.execute(q.CANCEL_NOW, args)
            tx.execute(q.INSERT_EVENT, plan.event)
            return plan.before, plan.after

    def task_retry(self, params: RetryParams) -> State:
        task_id, now = params.task_id, params.now
        with self._write() as tx:
            before, attempt = self._state_of(tx, task_id)
            event = plan_retry(task_id, before, attempt, now)
            args = {"id": task_id, "now": now, "expected": str(before), "no_aging": NO_AGING}
            try:
                tx.execute(q.RETRY, args)
            except sqlite3.IntegrityError:
                raise TransitionRefused(
                    f"task {task_id} can't be retried: another unfinished task holds its dedup key"
                ) from None
            tx.execute(q.INSERT_EVENT, event)
            self._notice(SCHEDULER)
            return before

    @staticmethod
    def _state_of(tx: sqlite3.Connection, task_id: int) -> tuple[State, int]:
        row = tx.execute(q.TASK_STATE, (task_id,)).fetchone()
        if row is None:
            raise TaskNotFound(f"no task with id {task_id}")
        return State(row[0]), row[1]

    # -- workers, leader, groups --------------------------------------------------------------
    def worker_register(self, worker: WorkerInfo, lease_until: float, now: float) -> None:
        with self._write() as tx:
            tx.execute(q.PRUNE_WORKERS, {"before": now - 3600})
            tx.execute(
                q.UPSERT_WORKER,
                {
                    "id": worker.id,
                    "hostname": worker.hostname,
                    "pid": worker.pid,
                    "pools": _json_list(worker.pools),
                    "concurrency": worker.concurrency,
                    "now": now,
                    "lease": lease_until,
                },
            )
            self._notice(SCHEDULER)  # capacity appeared

    def worker_list(self, now: float) -> list[WorkerRecord]:
        return [
            WorkerRecord(r[0], r[1], r[2], tuple(_loads_list(r[3])), *r[4:])
            for r in self._read(q.LIST_WORKERS, {"now": now})
        ]

    def group_configure(self, config: GroupConfig) -> None:
        with self._write() as tx:
            tx.execute(q.DELETE_BUCKET, (group_bucket(config.name),))
            tx.execute(
                q.UPSERT_GROUP,
                {
                    "name": config.name,
                    "max_parallel": config.max_parallel,
                    "weight": config.weight,
                    **rate_params(config.rate_limit),
                },
            )

    # -- wake-ups -----------------------------------------------------------------------------
    notifies = False
    """True once __init__ found a folder for wake-up sockets (wake.py); else callers poll."""

    def listen(self, channels: Sequence[str]) -> SocketListener | PollingListener:
        """A socket in the wake-up folder whose `wait()` ends at the first notice; without one
        (no AF_UNIX, a path too long), a listener that only sleeps, and callers poll."""
        if self._notifier is None:
            return PollingListener()
        return SocketListener(self._notifier.folder, channels)

    # -- workflows ------------------------------------------------------------------------------
    def workflow_insert(self, params: WorkflowInsertParams) -> WorkflowSubmitted:
        workflow, tasks, now, submit_id = (params.workflow, params.tasks, params.now,
                                           params.submit_id)  # fmt: skip

        def insert(tx: sqlite3.Connection, look: bool) -> WorkflowSubmitted:
            if look and (found := _recorded(tx, submit_id)) is not None:
                return WorkflowSubmitted(*submitted_again(str(submit_id), found, len(tasks)))
            params = {"name": workflow.name, "group_name": workflow.group, "now": now}
            workflow_id = int(tx.execute(q.INSERT_WORKFLOW, params).fetchone()[0])
            own = [replace(t, workflow_id=workflow_id) for t in tasks]
            results = self._insert(tx, own, now)
            links = [(workflow_id, i) for i in deduplicated_onto(results)]
            tx.executemany(q.INSERT_WORKFLOW_LINK, links)
            return WorkflowSubmitted(workflow_id, _record(tx, submit_id, results, workflow_id, now))

        if params.joined is not None:
            return insert(params.joined.sqlite(), submit_id is not None)
        return self._submit(insert)

    def workflow_get(self, workflow_id: int) -> WorkflowStatus | None:
        conn = self._conn()
        conn.execute("BEGIN")  # one consistent read
        try:
            row = conn.execute(q.GET_WORKFLOW, (workflow_id,)).fetchone()
            counts = conn.execute(q.WORKFLOW_COUNTS, {"id": workflow_id}).fetchall()
        finally:
            conn.execute("COMMIT")
        if row is None:
            return None
        return WorkflowStatus(row[0], row[1], row[2], row[3], {s: int(n) for s, n in counts})

    def workflow_cancel(self, params: WorkflowCancelParams) -> tuple[int, int]:
        workflow_id, now = params.workflow_id, params.now
        with self._write() as tx:
            if tx.execute(q.GET_WORKFLOW, (workflow_id,)).fetchone() is None:
                raise TaskNotFound(f"no workflow with id {workflow_id}")
            unfinished = tx.execute(q.WORKFLOW_UNFINISHED, (workflow_id,)).fetchall()
            plans = [(i, plan_cancel(i, State(s), a, now)) for i, s, a in unfinished]
            stopped = [(i, p) for i, p in plans if p.after is not None]
            asked = [i for i, p in plans if p.after is None]
            tx.executemany(
                q.CANCEL_NOW, [{"id": i, "now": now, "expected": str(p.before)} for i, p in stopped]
            )
            tx.executemany(q.REQUEST_CANCEL, [{"id": i} for i in asked])
            for task_id in asked:
                self._notice(WORKERS, f"cancel:{task_id}")
            tx.executemany(q.INSERT_EVENT, [p.event for _, p in plans])
        return len(stopped), len(asked)

    # -- event consumers (their leases: leases.py) ----------------------------------------------
    def consumer_advance(
        self, name: str, holder: str, position: tuple[int, int], now: float
    ) -> bool:
        params = consumer_position(name, holder, position, now)
        with self._write() as tx:
            return tx.execute(q.ADVANCE_CONSUMER, params).rowcount == 1

    def event_fetch_unseen(self, name: str, limit: int) -> list[FeedEvent]:
        rows = self._read(q.EVENTS_UNSEEN, {"name": name, "limit": limit})
        return [FeedEvent(Event(*r[:8]), r[8], r[9], r[10], int(r[11])) for r in rows]


def _record_ends(
    tx: sqlite3.Connection, reports: Sequence[AttemptReport], now: float
) -> list[AttemptReport]:
    """The reports whose attempt was still the running one, in their order, each recorded on its
    task (q.COMPLETE_MANY, a compare-and-set, many to a statement). Of reports naming one task
    twice, the first to find the attempt running is the one recorded: such a batch goes one
    report a statement, in order."""
    rows = [_completion_row(r, now) for r in reports]
    if len({r.task_id for r in reports}) < len(reports):  # which of a task's reports: in order
        one = q.COMPLETE_BY_SIZE[1]
        return [r for r, row in zip(reports, rows, strict=True) if tx.execute(one, row).fetchone()]
    ended = {row[0] for row in _in_pieces(tx, q.COMPLETE_BY_SIZE, rows)}
    return [r for r in reports if r.task_id in ended]


def _lane_of(task: NewTask, now: float) -> dict[str, Any]:
    """The parameters of lane_queries.TAKE for a task submitted at `now`."""
    return {"pool": task.pool, "group_name": task.group, "now": now}


def _in_pieces(
    tx: sqlite3.Connection, by_size: dict[int, str], rows: Sequence[tuple[Any, ...]]
) -> list[Any]:
    """Run a statement of many rows (queries.by_size: a task's id first in each) over `rows`,
    in pieces of its sizes, largest first; what it returns. A statement's execution costs about
    as much as a row's writes when it changes tasks' states (it opens every index state is in),
    so the pieces pay that a few times a batch, where a statement a row paid it a row. Rows that
    name a task twice go one a statement, in order, so that each sees what the one before did."""
    if len({row[0] for row in rows}) < len(rows):
        one = by_size[1]
        return [found for row in rows for found in tx.execute(one, row)]
    return _insert_in_pieces(tx, by_size, rows)


def _insert_in_pieces(
    tx: sqlite3.Connection, by_size: dict[int, str], rows: Sequence[tuple[Any, ...]]
) -> list[Any]:
    """Run a statement of many rows over `rows` in pieces of its sizes, largest first, in order;
    what it returns. For inserts, whose rows don't see each other; `_in_pieces` for updates."""
    returned: list[Any] = []
    start = 0
    for size, sql in by_size.items():
        while len(rows) - start >= size:
            args = [value for row in rows[start : start + size] for value in row]
            returned.extend(tx.execute(sql, args))
            start += size
    return returned


def _completion_row(report: AttemptReport, now: float) -> tuple[Any, ...]:
    """A report's row of q.COMPLETE_MANY (q.COMPLETE_VALUES)."""
    return (
        report.task_id,
        report.attempt,
        report.worker_id,
        str(report.target),
        report.result,
        report.error,
        int(report.counts_as_failure),
        int(report.target in TERMINAL),
        now,
        # A report leaving a clean-up holds its retry (run_at NULL) until the clean-up ended.
        None if report.cleanup is not None else report.retry_at,
        report.stalled_slices,
        None if report.suspect is None else int(report.suspect),
        report.isolated_crashes,
        NO_AGING,
    )


def _settle(tx: sqlite3.Connection, limit: int) -> None:
    """Recount the dependencies of the waiting dependents of tasks that ended (queued by a trigger
    on their end): cost follows the ended tasks, never the waiting backlog."""
    ended = tx.execute(q.ENDED_UPSTREAMS, {"limit": limit}).fetchall()
    if ended:
        tx.execute(q.SETTLE_DEPENDENTS, {"ids": _json_list(sorted({t for _, t in ended}))})
        tx.execute(q.FORGET_ENDED, {"last": ended[-1][0]})


def _loads_list(text: str) -> list[str]:
    return [str(v) for v in loads(text)]
