"""A test harness for the users of corral: an App on a temporary store, a clock the test moves,
`drain()` to run what is due, and assertions on what was submitted (see docs/testing.md).

Nothing here re-implements corral's rules: `drain` runs the real scheduler rounds (resolver,
promoter, reaper, dispatcher) and a real `Worker` in this process, on the real store (a temporary
SQLite file by default, or the database URL the test gives, e.g. PostgreSQL). Between drains no
scheduler or worker runs, so what a test submitted stays where submit put it until the test says
`drain()`: each step of a test is deterministic. Time moves only when the test moves it
(`advance`), or when `drain(with_retries=True / with_scheduled=True)` jumps it to the next retry
or delayed task, so backoff, delays and ageing are driven without sleeping.

The harness takes over the user's own App (the one their task types were registered on) for its
duration: the App's store and clock are swapped for the harness's and given back at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from ..app import App, Submission
from ..callbacks import CallbackService
from ..clock import ManualClock
from ..codec import loads
from ..durations import Duration, seconds
from ..errors import ConfigError, CorralError, WaitTimeout
from ..lifecycle import ACTIVE, TERMINAL, State
from ..model import DEFAULT_POOL, CleanupRecord, TaskQuery, TaskRecord
from ..scheduler.service import Scheduler, SchedulerConfig
from ..store import open_store
from ..worker.renewal import renew_worker
from ..worker.worker import Worker, WorkerConfig
from . import matching
from .matching import NOTHING, Pattern

READ_LIMIT = 10_000
"""The most tasks one read of the harness sees (tests hold far fewer)."""
EVENT_PAGE = 1_000
UNFINISHED = tuple(s for s in State if s not in TERMINAL)


class DrainIncomplete(CorralError):
    """`drain` ran `max_rounds` rounds and there was still work: a task that keeps submitting
    itself, or more work than the test expected. `.result` says what ran."""

    def __init__(self, message: str, result: DrainResult) -> None:
        super().__init__(message)
        self.result = result


@dataclass
class DrainResult:
    """What one `drain()` did, counted from the event rows its transitions wrote."""

    succeeded: int = 0
    """Tasks that ended succeeded."""
    failed: int = 0
    """Attempts that failed (raised, timed out, lost): each retried or dead."""
    retried: int = 0
    """Failed attempts that went to retry_wait (another attempt to come)."""
    dead: int = 0
    cancelled: int = 0
    upstream_failed: int = 0
    started: int = 0
    """Attempts started (a task that ran twice counts twice)."""
    rounds: int = 0
    """Scheduler rounds that moved tasks."""
    errors: list[tuple[int, str]] = field(default_factory=list)
    """(task id, error) of each failed attempt, in order."""
    pending: dict[State, int] = field(default_factory=dict)
    """Unfinished tasks left at the end, by state: delayed, backing off, blocked by a cap or a
    rate limit, or held by a dependency."""

    def count(self, kind: str) -> int:
        return int(getattr(self, kind))


@dataclass(frozen=True)
class _Bound:
    url: str
    clock: Any
    store: Any


class Harness:
    """See the module docstring; made by `corral.testing.harness(app, ...)`.

    `url`: the database to use (default: a new SQLite file in a temporary directory, deleted at
    the end). It is migrated (`migrate=False` not to) and should be fresh: `drain` runs whatever
    is due in it, and the assertions see only the tasks submitted since the harness started.
    `start`: the clock's first reading (default: the host's time now). `inline`: every submit
    through the App (`task.submit`, `app.submit`, `app.submit_many`) drains before it returns, so
    the task has run when the call returns (see docs/testing.md for the trade-off).
    `concurrency`: the in-process worker's slots. `timeout`: the longest a drain waits (real
    seconds) for running handlers.
    """

    def __init__(
        self,
        app: App,
        *,
        url: str | None = None,
        migrate: bool = True,
        start: float | None = None,
        inline: bool = False,
        concurrency: int = 4,
        timeout: float = 60.0,
    ) -> None:
        if not isinstance(app, App):
            raise ConfigError(f"harness() takes your corral.App, got {app!r}")
        self.app = app
        self.clock = ManualClock(time.time() if start is None else start)
        self.inline = inline
        self.concurrency = concurrency
        self.timeout = timeout
        self._url = url
        self._migrate = migrate
        self._tmpdir: str | None = None
        self._saved: _Bound | None = None
        self._draining = threading.Event()
        self._baseline = 0
        self._cursor = 0

    # -- entering and leaving -------------------------------------------------------------------
    def __enter__(self) -> Harness:
        if self._saved is not None:
            raise ConfigError("this harness is already in use")
        url = self._url
        if url is None:
            self._tmpdir = tempfile.mkdtemp(prefix="corral-test-")
            url = f"sqlite:///{self._tmpdir}/corral.db"
        elif self._migrate:
            fresh = open_store(url, migrate=False)
            try:
                fresh.migrate()
            finally:
                fresh.close()
        app = self.app
        self._saved = _Bound(app.url, app._clock, app._store)
        app.url, app._clock, app._store = url, self.clock, None
        try:
            newest = app.store.task_list(TaskQuery(limit=1))
            self._baseline = newest[0].id if newest else 0
            self._cursor = self._last_event_id()
        except BaseException:
            self._restore()
            raise
        if self.inline:
            app.submit_many = self._submit_inline  # type: ignore[method-assign]
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._restore()

    def _restore(self) -> None:
        app, saved = self.app, self._saved
        if saved is None:
            return
        app.__dict__.pop("submit_many", None)
        app.close()
        app.url, app._clock, app._store = saved.url, saved.clock, saved.store
        self._saved = None
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    @property
    def url(self) -> str:
        """The database the App uses while the harness is in force."""
        return self.app.url

    # -- the clock ------------------------------------------------------------------------------
    def now(self) -> float:
        return self.clock.now()

    def advance(self, duration: Duration) -> None:
        """Move the clock on (30, "90s", "2h", a timedelta): delays come due, backoffs end,
        priorities age. Nothing runs until `drain()`, except in inline mode, where this
        drains."""
        step = seconds(duration, name="advance")
        if step < 0:
            raise ConfigError(f"advance() moves the clock forward, got {duration!r}")
        self.clock.advance(step)
        if self.inline and not self._draining.is_set():
            self.drain()

    # -- running --------------------------------------------------------------------------------
    def drain(
        self,
        *,
        with_retries: bool = False,
        with_scheduled: bool = False,
        max_rounds: int = 1_000,
    ) -> DrainResult:
        """Run every task that is due, with the real scheduler and a real worker, until nothing
        is due; return what ran. Tasks that a handler submits run in the same drain.

        `with_retries`: a task that failed with retries left is run again until it succeeds or
        is dead: the clock jumps to the end of each backoff. `with_scheduled`: delayed tasks too
        (`delay=`, `run_at=`): the clock jumps to each. `max_rounds`: raise DrainIncomplete past
        this many scheduler rounds that moved tasks."""
        if self._saved is None:
            raise ConfigError("use the harness in a `with` block before drain()")
        if self._draining.is_set():
            raise ConfigError("drain() can't be called while a drain runs (from a handler?)")
        self._draining.set()
        try:
            with _InProcessWorker(self.app, self._pools(), self.concurrency) as worker:
                result = self._drain(worker, with_retries, with_scheduled, max_rounds)
        finally:
            self._draining.clear()
        return result

    def _drain(
        self, worker: _InProcessWorker, with_retries: bool, with_scheduled: bool, max_rounds: int
    ) -> DrainResult:
        app = self.app
        # No fast lane: every admission is one of the rounds this loop drives and counts; no
        # table upkeep (a thread of its own) in a user's test.
        config = SchedulerConfig(fast_lane=False, upkeep_every=0.0)
        scheduler = Scheduler(app.store, config, clock=self.clock)
        holder = f"corral-testing:{id(self)}"
        callbacks = None
        if app.registry.has_callbacks():
            callbacks = CallbackService(
                app.store, app.registry, holder, clock=app.clock, timeout=self.timeout
            )
        consumers = app.consumers.services(holder, start="beginning")  # the harness's own store
        result = DrainResult()
        first_event = self._cursor
        while True:
            moved = scheduler.run_once(self.clock.now())
            self._settle(worker)
            if callbacks is not None:
                while callbacks.run_once(self.clock.now()) > 0:
                    pass
            for consumer in consumers:
                while consumer.run_once(self.clock.now()) > 0:
                    pass
            if moved or self._released_by_cleanup():
                result.rounds += 1
                if result.rounds >= max_rounds:
                    self._count(result, first_event)
                    raise DrainIncomplete(
                        f"drain() stopped after {max_rounds} rounds with work left", result
                    )
                continue
            jump = self._next_jump(with_retries, with_scheduled)
            if jump is None:
                break
            self.clock.set(jump)
            worker.beat()
        self._count(result, first_event)
        return result

    def _pools(self) -> tuple[str, ...]:
        return tuple(sorted({DEFAULT_POOL, *self.app.registry.pools()}))

    def _settle(self, worker: _InProcessWorker) -> None:
        """Wait until the worker has run and reported every admitted task of its pools, and run
        every clean-up that is due (corral.cleanup)."""
        deadline = time.monotonic() + self.timeout
        pools = set(worker.pools)
        while True:
            worker.check()
            busy = [t for t in self._read(ACTIVE) if t.pool in pools]
            if not busy and not self._cleanups_due():
                return
            if time.monotonic() > deadline:
                example = matching.describe(busy[0]) if busy else "clean-ups still due"
                raise WaitTimeout(
                    f"drain(): {len(busy)} task(s) still admitted or running after "
                    f"{self.timeout}s (e.g. {example})"
                )
            time.sleep(0.005)

    def _next_jump(self, with_retries: bool, with_scheduled: bool) -> float | None:
        """When the next retry (or delayed task) comes due, if the drain should go on to it."""
        wanted = [State.RETRY_WAIT] if with_retries else []
        if with_scheduled:
            wanted.append(State.WAITING)
        if not wanted:
            return None
        now = self.clock.now()
        due = [t.run_at for t in self._read(wanted) if t.run_at is not None and t.run_at > now]
        if with_retries:  # a failed clean-up's next try holds its task's retry
            due += [c.next_try_at for c in self._cleanups() if c.state == "pending"
                    and c.next_try_at is not None and c.next_try_at > now]  # fmt: skip
        return min(due) if due else None

    def _cleanups(self) -> list[CleanupRecord]:
        """The clean-ups still to end, of the tasks submitted since the harness started."""
        if not self.app.registry.with_cleanup():
            return []
        found = self.app.store.cleanup_unfinished(READ_LIMIT)
        return [c for c in found if c.task_id > self._baseline]

    def _released_by_cleanup(self) -> bool:
        """A retry that a clean-up's end released during this round is due: one more round."""
        if not self.app.registry.with_cleanup():
            return False
        now = self.clock.now()
        held = self._read([State.RETRY_WAIT])
        return any(t.run_at is not None and t.run_at <= now for t in held)

    def _cleanups_due(self) -> bool:
        now = self.clock.now()
        return any(
            c.state == "running" or (c.next_try_at is not None and c.next_try_at <= now)
            for c in self._cleanups()
        )

    def _count(self, result: DrainResult, after: int) -> None:
        kinds: Counter[str] = Counter()
        for event in self._events_after(after):
            self._cursor = event.id
            kinds[event.kind] += 1
            if event.from_state == State.RUNNING and event.to_state in (
                State.RETRY_WAIT,
                State.DEAD,
            ):
                result.failed += 1
                result.errors.append((event.task_id, _error(event.detail)))
        result.succeeded = kinds[State.SUCCEEDED]
        result.retried = kinds[State.RETRY_WAIT]
        result.dead = kinds[State.DEAD]
        result.cancelled = kinds[State.CANCELLED]
        result.upstream_failed = kinds[State.UPSTREAM_FAILED]
        result.started = kinds[State.RUNNING]
        left = Counter(t.state for t in self._read(UNFINISHED))
        result.pending = dict(sorted(left.items()))

    # -- inline mode ----------------------------------------------------------------------------
    def _submit_inline(
        self, submissions: Sequence[Submission], *, connection: Any = None, **options: Any
    ) -> list[int]:
        ids = App.submit_many(self.app, submissions, connection=connection, **options)
        # In a caller's own transaction the tasks exist only once it commits: nothing to run yet.
        # From a handler (a drain is running) the running drain picks them up.
        if connection is None and not self._draining.is_set():
            self.drain()
        return ids

    # -- reading and asserting ------------------------------------------------------------------
    def submitted(
        self,
        task: Any = None,
        *,
        args: Any = NOTHING,
        kwargs: Any = NOTHING,
        group: str | None = None,
        state: State | str | Iterable[State | str] | None = None,
    ) -> list[TaskRecord]:
        """The tasks submitted since the harness started that match, oldest first. `task`: a
        task type or its name (None: any); `args`: exactly these positional arguments; `kwargs`:
        at least these keyword arguments; `group`; `state`: one state or several."""
        pattern = self._pattern(task, args, kwargs, group, state)
        return [t for t in self._submitted(pattern) if pattern.matches(t)]

    def assert_submitted(
        self,
        task: Any = None,
        *,
        args: Any = NOTHING,
        kwargs: Any = NOTHING,
        group: str | None = None,
        state: State | str | Iterable[State | str] | None = None,
        count: int | None = None,
    ) -> list[TaskRecord]:
        """Fail (AssertionError) unless a task like this was submitted (exactly `count` of them,
        if given); return the matching tasks. The message lists what was submitted instead."""
        pattern = self._pattern(task, args, kwargs, group, state)
        found = [t for t in self._submitted(pattern) if pattern.matches(t)]
        if (count is None and not found) or (count is not None and len(found) != count):
            wanted = "a task" if count is None else f"{count} task(s)"
            raise AssertionError(
                f"expected {wanted} matching {pattern.describe()}, found {len(found)}."
                + self._instead(pattern)
            )
        return found

    def refute_submitted(
        self,
        task: Any = None,
        *,
        args: Any = NOTHING,
        kwargs: Any = NOTHING,
        group: str | None = None,
        state: State | str | Iterable[State | str] | None = None,
    ) -> None:
        """Fail (AssertionError) if a task like this was submitted."""
        pattern = self._pattern(task, args, kwargs, group, state)
        found = [t for t in self._submitted(pattern) if pattern.matches(t)]
        if found:
            lines = "\n  ".join(matching.describe(t) for t in found)
            raise AssertionError(
                f"expected no task matching {pattern.describe()}, found {len(found)}:\n  {lines}"
            )

    def _pattern(self, task: Any, args: Any, kwargs: Any, group: str | None, state: Any) -> Pattern:
        return Pattern(matching.task_name(task), args, kwargs, group, matching.states(state))

    def _submitted(self, pattern: Pattern) -> list[TaskRecord]:
        query = TaskQuery(
            states=pattern.states, group=pattern.group, name=pattern.name, limit=READ_LIMIT
        )
        return [t for t in reversed(self.app.store.task_list(query)) if t.id > self._baseline]

    def _instead(self, pattern: Pattern) -> str:
        of_type = self._submitted(Pattern(pattern.name))
        if not of_type:
            return f" No {pattern.name or 'task'} was submitted."
        lines = "\n  ".join(matching.describe(t) for t in of_type[:20])
        more = f"\n  ... and {len(of_type) - 20} more" if len(of_type) > 20 else ""
        return f" Submitted:\n  {lines}{more}"

    def _read(self, wanted: Iterable[State]) -> list[TaskRecord]:
        query = TaskQuery(states=tuple(wanted), limit=READ_LIMIT)
        return [t for t in self.app.store.task_list(query) if t.id > self._baseline]

    def _events_after(self, after: int) -> Iterator[Any]:
        while True:
            page = self.app.store.event_fetch_after(after, EVENT_PAGE)
            yield from page
            if len(page) < EVENT_PAGE:
                return
            after = page[-1].id

    def _last_event_id(self) -> int:
        last = 0
        for event in self._events_after(0):
            last = event.id
        return last


def _error(detail: str | None) -> str:
    """The error a failure event carries, as "Type: message" (its detail is JSON with an
    "error" field; see docs/guarantees.md, "What a failure event carries")."""
    try:
        error = loads(detail).get("error")
        return f"{error['type']}: {error['message']}"
    except (ValueError, TypeError, AttributeError, KeyError):
        return detail or ""


class _InProcessWorker:
    """A real `Worker` on its own asyncio loop in a thread, for one drain: it claims what the
    drain's scheduler rounds admit, runs the handlers and reports. No heartbeat companion (one
    process, nothing to starve) and no callbacks or consumers of its own (the drain delivers them
    in step)."""

    def __init__(self, app: App, pools: tuple[str, ...], concurrency: int) -> None:
        self.pools = pools
        self._config = WorkerConfig(
            pools=pools,
            concurrency=concurrency,
            companion=False,
            callbacks=False,
            consumers=False,
            grace=5.0,
            poll=0.005,
            cleanup_poll=0.005,
        )
        self._app = app
        self._worker: Worker | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._main, name="corral-testing-worker")

    def _main(self) -> None:
        async def run() -> None:
            self._worker = Worker.of(self._app, self._config)
            self._loop = asyncio.get_running_loop()
            self._ready.set()
            await self._worker.run()

        try:
            asyncio.run(run())
        except BaseException as exc:
            self._errors.append(exc)
        finally:
            self._ready.set()

    def __enter__(self) -> _InProcessWorker:
        self._thread.start()
        self._ready.wait()
        self.check()
        # The dispatcher admits into the capacity of registered workers: wait for the row.
        worker_id = self._worker.id if self._worker is not None else ""
        deadline = time.monotonic() + 30.0
        while not any(
            w.id == worker_id for w in self._app.store.worker_list(self._app.clock.now())
        ):
            self.check()
            if time.monotonic() > deadline:
                raise WaitTimeout("drain(): the in-process worker did not register within 30s")
            time.sleep(0.002)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._worker is not None:
            with contextlib.suppress(RuntimeError):  # the loop ended already
                self._loop.call_soon_threadsafe(self._worker.request_stop)
        self._thread.join()
        if exc[0] is None and self._errors:
            raise self._errors[0]

    def beat(self) -> None:
        """Renew the worker's lease at the clock's new time: after a jump of the clock the
        dispatcher would see no live worker until its next heartbeat."""
        if self._worker is not None:
            now = self._app.clock.now()
            renew_worker(self._app.store, self._worker.id, now + self._config.lease, now)

    def check(self) -> None:
        """Raise what ended the worker, if anything did."""
        if self._errors:
            raise self._errors[0]
        if self._ready.is_set() and not self._thread.is_alive():
            raise CorralError("the in-process worker stopped during drain()")
