"""The App: registering task types (kept in corral.registry) and the client API (submit, get,
wait, cancel, retry)."""

from __future__ import annotations

import asyncio
import functools
import inspect
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

from . import aging as aging_mod
from . import limits, ratelimit, tracing
from .aging import Aging
from .backoff import Backoff
from .callbacks import CALLBACK_KINDS
from .cleanup import CLEANUP_RETRIES, CLEANUP_TIMEOUT, check_spec
from .clock import Clock
from .codec import dumps
from .consumers import Consumers
from .durations import Duration, seconds
from .errors import ConfigError, ConnectionLost, TaskNotFound, WaitTimeout
from .isolation import QUARANTINE_AFTER
from .lifecycle import TERMINAL, OnTimeout, State
from .model import (
    DEFAULT_GROUP,
    DEFAULT_POOL,
    DEFAULTS_GROUP,
    GroupConfig,
    NewTask,
    Submitted,
    TaskRecord,
    WorkflowStatus,
    new_task,
)
from .ratelimit import RateLimit
from .registry import (
    EXECUTORS,
    FAIL_STALLED_AFTER,
    FLAG_STALLED_AFTER,
    Callback,
    ExecutorKind,
    Registry,
    TaskDef,
)
from .retention_settings import RetentionSettings
from .store import Store, open_store, resolve_url
from .store.contract import (
    CancelParams,
    InsertParams,
    PausedGroup,
    RetryParams,
    WorkflowCancelParams,
    join,
)
from .submit_ids import repeatable, submit_id_for
from .worker.middleware import Middleware, check_middleware
from .workflow import Workflow

if TYPE_CHECKING:  # imported on first use: a worker needs none of them (start-up: issue 15)
    from .alerts.declare import Alerts
    from .schedules.backfills import BackfillMade, Backfills
    from .schedules.declare import Schedules

ON_TIMEOUT: tuple[OnTimeout, ...] = ("retry", "fail", "continue")
ON_UPSTREAM_FAILURE = ("fail", "run")

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class Submission:
    """A task call prepared for `App.submit_many`: validated, encoded, not yet stored."""

    task: NewTask


@dataclass(kw_only=True)
class TaskType(TaskDef, Generic[P, R]):
    """A registered handler and its defaults (its `TaskDef`), bound to its app to submit its
    tasks. Made by `@app.task`."""

    app: App
    _signature: inspect.Signature = field(init=False, repr=False)
    _plain: tuple[tuple[str, ...], int] | None = field(init=False, repr=False, default=None)
    """The handler's parameters after the context and how many of them have no default, when
    all are plain (positional or keyword, no `*`, no `**`): the fast check of a call's
    arguments (None: every call is bound against the signature)."""
    _tables: dict[int, tuple[str, float | None]] = field(
        init=False, repr=False, default_factory=dict
    )
    """The JSON of the task type's ageing as it travels with a task, and the wait before its
    level first changes, per priority."""
    _backoff_json: str = field(init=False, repr=False, default="")

    def __post_init__(self) -> None:
        self._signature = inspect.signature(self.fn)
        self._plain = _plain_parameters(self._signature)
        self._backoff_json = dumps(self.backoff.to_json())
        functools.update_wrapper(self, self.fn)  # type: ignore[arg-type]

    def prepare(
        self,
        *args: Any,
        group: str = DEFAULT_GROUP,
        priority: int | None = None,
        aging: Aging | None = None,
        dedup_key: str | None = None,
        delay: Duration | None = None,
        run_at: datetime | float | None = None,
        depends_on: Iterable[int] = (),
        exclusive: bool = False,
        on_upstream_failure: str | None = None,
        **kwargs: Any,
    ) -> Submission:
        """Validate and encode one call; nothing is written. See `submit`. An option left at
        its default costs nothing here: the task type's own settings were checked when it was
        registered (a bulk submit prepares thousands of calls)."""
        if not isinstance(exclusive, bool):
            raise ConfigError(f"exclusive must be True or False, got {exclusive!r}")
        upstream_rule = (
            _check_upstream_rule(on_upstream_failure)
            if on_upstream_failure
            else self.on_upstream_failure
        )
        self._check_arguments(args, kwargs)
        level = self.priority if priority is None else _check_priority(priority)
        ageing_json, first_change = self._stored_aging(aging, level)
        if group is not DEFAULT_GROUP:
            _check_group(group)
        if dedup_key is not None:
            limits.text("dedup_key", dedup_key)
        now = self.app.clock.now()
        start = now if delay is None and run_at is None else _start_time(now, delay, run_at)
        args_json = dumps(args, what=f"arguments of {self.name}")
        kwargs_json = dumps(kwargs, what=f"keyword arguments of {self.name}") if kwargs else "{}"
        limits.payload(
            f"the arguments of {self.name}", args_json, kwargs_json, self.app.max_payload_bytes
        )
        upstream = () if depends_on == () else tuple(_check_ids(depends_on))
        return Submission(
            new_task(
                {
                    "name": self.name,
                    "pool": self.pool,
                    "group": group,
                    "priority": level,
                    "level": level,
                    "aging": ageing_json,
                    "args": args_json,
                    "kwargs": kwargs_json,
                    "max_retries": self.max_retries,
                    "backoff": self._backoff_json,
                    "max_runtime": self.max_runtime,
                    "on_timeout": self.on_timeout,
                    "run_at": start,
                    "dedup_key": dedup_key,
                    "depends_on": upstream,
                    "promote_at": None if first_change is None else now + first_change,
                    "rank": 0,
                    "exclusive": exclusive,
                    "rate_key": self.rate_key,
                    "after": (),
                    "on_upstream_failure": upstream_rule,
                    "workflow_id": None,
                    "trace_context": None,
                    "quarantine_after": self.quarantine_after,
                    "cleanup": self.cleanup is not None,
                    "logical_time": None,
                    "data_start": None,
                    "schedule_name": None,
                }
            )
        )

    def _stored_aging(self, override: Aging | None, level: int) -> tuple[str, float | None]:
        """The JSON of the ageing that travels with a task of this priority, and the wait before
        its level first changes: a user-defined function is tabulated (once per priority for
        the task type's own)."""
        if override is not None:
            stored = aging_mod.stored(aging_mod.check(override), level)
            return dumps(stored.to_json()), stored.next_change(level, 0.0)
        if level not in self._tables:
            stored = aging_mod.stored(self.aging, level)
            self._tables[level] = (dumps(stored.to_json()), stored.next_change(level, 0.0))
        return self._tables[level]

    def submit(
        self, *args: Any, connection: Any = None, submit_id: str | None = None, **options: Any
    ) -> int:
        """Store one task and return its id. Options: group, priority, aging, dedup_key,
        delay or run_at, depends_on, exclusive (runs alone in its group), on_upstream_failure
        ("fail" | "run"); every other keyword goes to the handler. With a dedup key
        already held by an unfinished task, that task's id comes back and nothing is added.
        `connection`, `submit_id`: see `App.submit_many`."""
        prepared = [self.prepare(*args, **options)]
        return self.app.submit_many(prepared, connection=connection, submit_id=submit_id)[0]

    def _check_arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if self._plain is not None and _fits(self._plain, args, kwargs):
            return  # a tenth of what binding against the signature costs
        try:
            self._signature.bind(None, *args, **kwargs)
        except TypeError as exc:
            raise ConfigError(f"bad arguments for task {self.name!r}: {exc}") from None


def _plain_parameters(signature: inspect.Signature) -> tuple[tuple[str, ...], int] | None:
    """The names of a handler's parameters after its context and how many have no default, if
    the context and all of them are plain (positional or keyword); else None."""
    params = list(signature.parameters.values())
    if not params or any(p.kind is not p.POSITIONAL_OR_KEYWORD for p in params):
        return None
    rest = params[1:]
    required = [p for p in rest if p.default is p.empty]
    if rest[: len(required)] != required:
        return None  # (a default before one without: Python refuses such a def anyway)
    return tuple(p.name for p in rest), len(required)


def _fits(
    plain: tuple[tuple[str, ...], int], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> bool:
    """Whether a call binds to plain parameters (see `_plain_parameters`): not too many
    positional arguments, each keyword names a parameter not given by position, and every
    parameter without a default is given. False also when unsure: the signature decides."""
    names, required = plain
    given = len(args)
    if given > len(names):
        return False
    if not kwargs:
        return given >= required
    rest = names[given:]
    return all(k in rest for k in kwargs) and all(n in kwargs for n in names[given:required])


class Groups:
    """Group settings, taking effect at the scheduler's next dispatch, without a restart:
    `app.groups.configure(name, max_parallel=, weight=, rate_limit=)`, and the defaults of the
    groups never configured: `app.groups.set_defaults(...)`."""

    def __init__(self, app: App) -> None:
        self._app = app

    def configure(
        self,
        name: str,
        *,
        max_parallel: int | None = None,
        weight: float = 1.0,
        rate_limit: str | None = None,
        burst: float | None = None,
    ) -> None:
        """`max_parallel`: at most this many of the group's tasks admitted or running at once.
        `weight`: its share of contended slots against other groups'. `rate_limit`: at most
        this many admissions of its tasks ("100/minute"; `burst` tokens at once, default 1)."""
        _check_group(name)
        self._app.store.group_configure(
            _group_config(name, max_parallel, weight, rate_limit, burst)
        )

    def set_defaults(
        self,
        *,
        max_parallel: int | None = None,
        weight: float = 1.0,
        rate_limit: str | None = None,
        burst: float | None = None,
    ) -> None:
        """The settings of every group never configured (each with its own bucket)."""
        config = _group_config(DEFAULTS_GROUP, max_parallel, weight, rate_limit, burst)
        self._app.store.group_configure(config)

    def defaults(self) -> GroupConfig:
        return self._app.store.group_get(DEFAULTS_GROUP) or GroupConfig(DEFAULTS_GROUP)

    def get(self, name: str) -> GroupConfig:
        """A group's settings: its own, or the defaults (under its name) if never configured."""
        own = self._app.store.group_get(name)
        return own if own is not None else replace(self.defaults(), name=name)

    def pause(self, name: str, *, by: str, reason: str | None = None) -> bool:
        """Admit none of the group's tasks until `resume` (what runs or was admitted finishes;
        its ready tasks stay ready, its alert rules are muted). `by` names who paused it.
        False if it was paused already (the first pause stands)."""
        pause = PausedGroup(
            _check_group(name),
            self._app.clock.now(),
            limits.text("paused by", by),
            None if reason is None else limits.text("reason", reason, max_chars=1000),
        )
        return self._app.store.group_pause(pause)

    def resume(self, name: str) -> bool:
        """Admit the group's tasks again, from the scheduler's next round; False if it was not
        paused."""
        return self._app.store.group_resume(_check_group(name))

    def paused(self) -> list[PausedGroup]:
        return self._app.store.group_paused_list()


class RateLimits:
    """Named rate limits that task types draw on (`@app.task(rate_key="crm-api")`), shared by
    every group: `app.rate_limits.configure("crm-api", "100/minute")`."""

    def __init__(self, app: App) -> None:
        self._app = app

    def configure(self, key: str, rate_limit: str, *, burst: float | None = None) -> None:
        self._app.store.rate_limit_configure(_check_name("rate limit key", key),
                                             ratelimit.parse(rate_limit, burst))  # fmt: skip

    def remove(self, key: str) -> None:
        self._app.store.rate_limit_configure(_check_name("rate limit key", key), None)

    def list(self) -> dict[str, RateLimit]:
        return self._app.store.rate_limit_list()


def _group_config(
    name: str, max_parallel: Any, weight: Any, rate_limit: Any, burst: Any
) -> GroupConfig:
    if max_parallel is not None:
        limits.whole("max_parallel", max_parallel, 1)
    limits.number("weight", weight, 0, limits.MAX_WEIGHT, above=True)
    if burst is not None and rate_limit is None:
        raise ConfigError("burst needs a rate_limit")
    rate = None if rate_limit is None else ratelimit.parse(rate_limit, burst)
    return GroupConfig(name, max_parallel, float(weight), rate)


class App:
    """A corral application: task types plus the store they live in.

    `url` defaults to CORRAL_DATABASE_URL, else ./corral.db. The store is opened on first use,
    so importing a module that defines an App touches no database. `clock`: where "now" comes
    from; by default the store's (see corral.clock), tests pass their own. `max_payload_bytes`:
    the largest arguments a task may have (JSON, default 4 MiB; see corral.limits for every bound).
    `middleware`: wraps every run of this app's workers, outermost first (see
    corral.worker.middleware and docs/middleware.md).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        clock: Clock | None = None,
        max_payload_bytes: int = limits.DEFAULT_MAX_PAYLOAD_BYTES,
        middleware: Sequence[Middleware] = (),
    ) -> None:
        self.url = resolve_url(url)
        self._clock = clock
        self.max_payload_bytes = limits.max_payload_bytes(max_payload_bytes)
        """A task's arguments, as stored (JSON), at most this many bytes: a bigger submit raises
        PayloadError. Big data belongs elsewhere, with a reference in the arguments."""
        self.registry: Registry[TaskType[Any, Any]] = Registry()
        """The task types and app-wide state-change callbacks that this app's workers run."""
        self.middleware: tuple[Middleware, ...] = check_middleware(middleware)
        self.groups = Groups(self)
        self.rate_limits = RateLimits(self)
        self.retention = RetentionSettings(self)
        self.consumers = Consumers(self)
        """The app's event consumers: `app.consumers.add(name, handler, kinds=...)`."""
        self._store: Store | None = None
        self._store_clock: tuple[Store, Clock] | None = None

    @functools.cached_property
    def schedules(self) -> Schedules:
        """The app's schedules: `app.schedules.add(name, task, cron=..., tz=...)`."""
        from .schedules.declare import Schedules

        return Schedules(self)

    @functools.cached_property
    def backfills(self) -> Backfills:
        """The stored backfills: status, pause, resume, cancel (start one with `backfill`)."""
        from .schedules.backfills import Backfills

        return Backfills(self)

    @functools.cached_property
    def alerts(self) -> Alerts:
        """The app's alert rules and channels: `app.alerts.rule(name, kind, channels=...)`."""
        from .alerts.declare import Alerts

        return Alerts(self)

    @property
    def tasks(self) -> Mapping[str, TaskType[Any, Any]]:
        """The registered task types by name (read-only: register with `@app.task`)."""
        return self.registry.tasks

    @property
    def callbacks(self) -> Mapping[str, list[Callback]]:
        """App-wide state-change callbacks by event kind (see `on`)."""
        return self.registry.callbacks

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(self.url)
        return self._store

    @property
    def clock(self) -> Clock:
        """The one clock of this app's processes: the injected one, else the store's (asked of
        the store once: every task prepared reads it)."""
        if self._clock is not None:
            return self._clock
        store = self.store
        known = self._store_clock
        if known is None or known[0] is not store:
            known = self._store_clock = (store, store.clock())
        return known[1]

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    # -- registering --------------------------------------------------------------------------
    @overload
    def task(self, fn: Callable[P, R], /) -> TaskType[P, R]: ...

    @overload
    def task(
        self, fn: None = None, /, **options: Any
    ) -> Callable[[Callable[P, R]], TaskType[P, R]]: ...

    def task(self, fn: Callable[..., Any] | None = None, /, **options: Any) -> Any:
        """Register a handler: `@app.task` or `@app.task(priority=5, max_retries=3, ...)`.

        Options: name, priority (>= 0), aging, max_retries (>= 0), backoff (a Backoff),
        max_runtime (seconds or "30s", "1h"), on_timeout ("retry" | "fail" | "continue"),
        pool, executor ("async" | "thread" | "process"; default from the function's kind),
        on_cancel (called with the context after a cancelled run, to clean up), rate_key (a
        named rate limit its tasks draw on, see `app.rate_limits`),
        on_upstream_failure ("fail": a dead or cancelled dependency makes the task
        upstream_failed; "run": it runs anyway), on_state ({event kind: callback or list of
        callbacks}, see `on`), flag_stalled_after and fail_stalled_after (time slices in a row
        with the checkpoint unchanged before the task is flagged, then failed; None: never fail),
        quarantine_after (>= 1, default 2: how many times a task may take its worker down while
        running alone before it is quarantined, dead; see corral.isolation), on_cleanup
        (`fn(ctx, reason)` after every bad end of an attempt, even a lost one, before the next
        attempt; instead of on_cancel), cleanup_timeout (seconds a try may run, default 60),
        cleanup_retries (failed tries retried, default 5), cleanup_backoff (a Backoff between
        them); see corral.cleanup and docs/cleanup.md.
        """
        if fn is not None:
            return self._register(fn, **options)
        return lambda f: self._register(f, **options)

    def _register(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        priority: int = 0,
        aging: Aging | None = None,
        max_retries: int = 0,
        backoff: Backoff | None = None,
        max_runtime: Duration | None = None,
        on_timeout: OnTimeout = "retry",
        pool: str = DEFAULT_POOL,
        executor: ExecutorKind | None = None,
        on_cancel: Callable[..., Any] | None = None,
        rate_key: str | None = None,
        on_upstream_failure: str = "fail",
        on_state: dict[str, Any] | None = None,
        flag_stalled_after: int = FLAG_STALLED_AFTER,
        fail_stalled_after: int | None = FAIL_STALLED_AFTER,
        quarantine_after: int = QUARANTINE_AFTER,
        on_cleanup: Callable[..., Any] | None = None,
        cleanup_timeout: Duration = CLEANUP_TIMEOUT,
        cleanup_retries: int = CLEANUP_RETRIES,
        cleanup_backoff: Backoff | None = None,
    ) -> TaskType[Any, Any]:
        task_name = limits.text("task name", name or fn.__name__)
        stall_flag = _check_count("flag_stalled_after", flag_stalled_after)
        stall_fail = (
            None
            if fail_stalled_after is None
            else _check_count("fail_stalled_after", fail_stalled_after)
        )
        quarantine = _check_count("quarantine_after", quarantine_after)
        cleanup = check_spec(task_name, on_cleanup, on_cancel=on_cancel, timeout=cleanup_timeout,
                             retries=cleanup_retries, backoff=cleanup_backoff)  # fmt: skip
        if self.registry.find(task_name) is not None:
            raise ConfigError(f"a task named {task_name!r} is already registered")
        limits.whole("max_retries", max_retries)
        if on_timeout not in ON_TIMEOUT:
            raise ConfigError(f"on_timeout must be one of {ON_TIMEOUT}, got {on_timeout!r}")
        is_async = asyncio.iscoroutinefunction(fn)
        kind = executor or ("async" if is_async else "thread")
        if kind not in EXECUTORS:
            raise ConfigError(f"executor must be one of {EXECUTORS}, got {kind!r}")
        if kind == "async" and not is_async:
            raise ConfigError(f"task {task_name!r}: executor 'async' needs an `async def` handler")
        if kind == "thread" and is_async:
            raise ConfigError(f"task {task_name!r}: an `async def` handler can't use 'thread'")
        ageing = aging_mod.none if aging is None else aging_mod.check(aging)
        base = _check_priority(priority)
        try:
            aging_mod.stored(ageing, base)  # a faulty user-defined function fails here
        except ConfigError as exc:
            raise ConfigError(f"task {task_name!r}: {exc}") from None
        runtime = None if max_runtime is None else seconds(max_runtime, name="max_runtime")
        if runtime is not None and runtime <= 0:
            raise ConfigError(f"max_runtime must be > 0, got {max_runtime!r}")
        if runtime is not None:
            limits.seconds("max_runtime", runtime)
        if on_timeout == "continue" and runtime is None:
            raise ConfigError(f"task {task_name!r}: on_timeout='continue' needs a max_runtime")
        task_type: TaskType[Any, Any] = TaskType(
            app=self,
            fn=fn,
            name=task_name,
            priority=base,
            aging=ageing,
            max_retries=max_retries,
            backoff=backoff or Backoff(),
            max_runtime=runtime,
            on_timeout=on_timeout,
            pool=_check_name("pool", pool),
            executor=kind,
            on_cancel=on_cancel,
            rate_key=None if rate_key is None else _check_name("rate_key", rate_key),
            on_upstream_failure=_check_upstream_rule(on_upstream_failure),
            on_state=_check_callbacks(on_state or {}, f"on_state of task {task_name!r}"),
            flag_stalled_after=stall_flag,
            fail_stalled_after=stall_fail,
            quarantine_after=quarantine,
            cleanup=cleanup,
        )
        return self.registry.add(task_type)

    def task_type(self, name: str) -> TaskType[Any, Any]:
        """The task type registered as `name`; UnknownTaskError names the registered ones."""
        return self.registry.get(name)

    # -- client API ---------------------------------------------------------------------------
    def submit(self, name: str, *args: Any, **options: Any) -> int:
        """Submit a task by its registered name (as the CLI and REST API do)."""
        return self.task_type(name).submit(*args, **options)

    def submit_many(
        self,
        submissions: Sequence[Submission],
        *,
        connection: Any = None,
        submit_id: str | None = None,
    ) -> list[int]:
        """Store many prepared calls in one transaction: all or nothing. Returns their ids
        (a dedup key held by an unfinished task gives that task's id).

        `connection`: your own open transaction on the same database (a psycopg connection on
        PostgreSQL, a sqlite3 connection on SQLite): the tasks are written in it, and exist only
        if you commit: submit the work together with the rows it is about.

        `submit_id`: a name for this call (default: a new UUID). A call under a name already
        stored returns the tasks stored then (in the same order), whatever their state, and adds
        nothing: so a lost reply can be retried safely, by corral or by you."""
        stored = self.submit_stored(submissions, connection=connection, submit_id=submit_id)
        return [s.id for s in stored]

    def submit_stored(
        self,
        submissions: Sequence[Submission],
        *,
        connection: Any = None,
        submit_id: str | None = None,
    ) -> list[Submitted]:
        """`submit_many`, saying of each task whether this call created it (False: a dedup key
        or an earlier call under the same `submit_id` gave it), as the REST API's answer tells
        201 from 200."""
        if not submissions:
            return []
        tasks = [s.task for s in submissions]
        sid = submit_id_for(submit_id, connection, self.store.replies_may_be_lost)
        with tracing.sending([t.name for t in tasks], [t.group for t in tasks]) as send:
            try:
                params = InsertParams(send.stamp(tasks), self.clock.now(), join(connection), sid)
                results = self.store.task_insert_many(params)
            except ConnectionLost as exc:
                raise repeatable(exc, sid) from None
            send.stored([r.id for r in results])
        return list(results)

    def get(self, task_id: int) -> TaskRecord:
        record = self.store.task_get(task_id)
        if record is None:
            raise TaskNotFound(f"no task with id {task_id}")
        return record

    def wait(self, task_id: int, timeout: float | None = None, poll: float = 0.05) -> TaskRecord:
        """Block until the task ends (succeeded, dead, cancelled, upstream_failed)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            record = self.get(task_id)
            if record.state in TERMINAL:
                return record
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeout(f"task {task_id} is still {record.state} after {timeout}s")
            time.sleep(poll)

    def cancel(self, task_id: int) -> State | None:
        """Cancel a task: one not running ends at once (returns `cancelled`); a running one is
        interrupted by its worker (returns None: requested). A task that ended raises
        TransitionRefused saying so."""
        _, after = self.store.task_cancel(CancelParams(task_id, self.clock.now()))
        return after

    def retry(self, task_id: int) -> None:
        """Run a dead, cancelled or upstream_failed task again with a fresh retry budget."""
        self.store.task_retry(RetryParams(task_id, self.clock.now()))

    def backfill(self, schedule: str, *, start: Any, end: Any, **options: Any) -> BackfillMade:
        """Run `schedule` (declared in this app) for every logical time in [start, end]: dates
        (whole days, the schedule's zone), or datetimes. Options: max_parallel, weight (its own
        fair-share group), reprocess ("none" | "failed" | "all": whether a fire that ran runs
        again), order ("forward" | "backwards"), dry_run (list the logical times, write
        nothing), limit (default 10,000 fires) and allow_large (past it). See
        docs/schedules.md."""
        return self.backfills.start(schedule, start=start, end=end, **options)

    # -- workflows and state-change callbacks ---------------------------------------------------
    def workflow(self, name: str, *, group: str | None = None) -> Workflow:
        """Start building a workflow: `wf.add(task, *args, after=[...])` per step, then
        `wf.submit()` stores them all in one transaction. `group` (default: the workflow's name)
        is the dependency group of all its steps."""
        return Workflow(self, _check_name("workflow name", name), group)

    def workflow_status(self, workflow_id: int) -> WorkflowStatus:
        """A workflow as a whole: its tasks counted by state, and the state that gives."""
        status = self.store.workflow_get(workflow_id)
        if status is None:
            raise TaskNotFound(f"no workflow with id {workflow_id}")
        return status

    def cancel_workflow(self, workflow_id: int) -> tuple[int, int]:
        """Cancel every unfinished task of a workflow, in one transaction: those not running end
        at once, the running ones are interrupted by their workers. Returns (cancelled at once,
        interruptions requested)."""
        return self.store.workflow_cancel(WorkflowCancelParams(workflow_id, self.clock.now()))

    def on(self, *kinds: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Register an app-wide state-change callback: `@app.on("dead", "retry_wait")` over
        `def alert(change: corral.StateChange) -> None`. Kinds are event kinds: the states, plus
        "submitted", "cancel_requested", "stalled", or "*" for every event. Callbacks run in the
        worker processes (`corral worker` / `corral run`) from the event rows, at least once
        each, isolated from tasks and from each other (see corral.callbacks)."""
        if not kinds:
            raise ConfigError("app.on() needs at least one event kind, e.g. app.on('dead')")
        for kind in kinds:
            _check_kind(kind, "app.on")

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            for kind, fns in _check_callbacks(dict.fromkeys(kinds, fn), "app.on").items():
                self.registry.add_callbacks(kind, fns)
            return fn

        return register


def _check_priority(priority: Any) -> int:
    return limits.whole("priority", priority)


def _check_group(value: Any) -> str:
    name = limits.text("group name", value)
    if name == DEFAULTS_GROUP:
        raise ConfigError(f"{DEFAULTS_GROUP!r} is not a group name: it holds the defaults "
                          "(app.groups.set_defaults)")  # fmt: skip
    return name


def _check_name(what: str, value: Any) -> str:
    return limits.text(what, value)


def _check_upstream_rule(rule: Any) -> str:
    if rule not in ON_UPSTREAM_FAILURE:
        raise ConfigError(f"on_upstream_failure must be one of {ON_UPSTREAM_FAILURE}, got {rule!r}")
    return str(rule)


def _check_count(what: str, value: Any) -> int:
    return limits.whole(what, value, 1)


def _check_kind(kind: Any, where: str) -> None:
    if kind not in CALLBACK_KINDS:
        known = ", ".join(sorted(CALLBACK_KINDS))
        raise ConfigError(f"{where}: unknown event kind {kind!r} (known: {known})")


def _check_callbacks(by_kind: dict[str, Any], where: str) -> dict[str, list[Callable[..., Any]]]:
    checked: dict[str, list[Callable[..., Any]]] = {}
    for kind, fns in by_kind.items():
        _check_kind(kind, where)
        listed = list(fns) if isinstance(fns, list | tuple) else [fns]
        for fn in listed:
            if not callable(fn):
                raise ConfigError(f"{where}: the callback for {kind!r} is not callable: {fn!r}")
        checked[kind] = listed
    return checked


def _check_ids(ids: Iterable[int]) -> list[int]:
    checked = []
    for task_id in ids:
        if isinstance(task_id, bool) or not isinstance(task_id, int):
            raise ConfigError(f"depends_on takes task ids (ints), got {task_id!r}")
        checked.append(limits.whole("depends_on (a task id)", task_id, 1, limits.ID_MAX))
    return checked


def _start_time(now: float, delay: Duration | None, run_at: datetime | float | None) -> float:
    if delay is not None and run_at is not None:
        raise ConfigError("give delay or run_at, not both")
    if delay is not None:
        return now + limits.seconds("delay", seconds(delay, name="delay"))
    if isinstance(run_at, datetime):
        if run_at.tzinfo is None:
            raise ConfigError("run_at must be timezone-aware (e.g. datetime.now(timezone.utc))")
        return limits.unix_time("run_at", run_at.timestamp())
    if run_at is not None:
        if isinstance(run_at, bool) or not isinstance(run_at, int | float):
            raise ConfigError(f"run_at must be a datetime or a UNIX time, got {run_at!r}")
        try:
            start = float(run_at)
        except OverflowError:
            start = math.inf
        return limits.unix_time("run_at", start)
    return now
