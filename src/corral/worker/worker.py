"""The worker: claims admitted tasks of its pools, runs their handlers, reports the outcomes.

One asyncio loop per process. Three loops share it: claiming (up to `concurrency` tasks at once,
in batches), heartbeats (which extend the leases and bring back cancel requests), and reporting
(outcomes written in batches, each a compare-and-set on the attempt). Store calls run in threads
so a busy database never stalls a running handler.

The leases are renewed by a companion process (corral.worker.heartbeat), so a thread handler that
holds the GIL can't starve them; the loop only ticks it, and beats itself while the companion
isn't renewing. A monitor thread (corral.worker.gil) reports handlers that hold the GIL.

Each run passes through the worker's middleware (corral.worker.middleware), corral's own
included: the on_cancel clean-up and the stall check of time slices are middleware too. The
worker needs a store and a task registry (corral.registry), never the App: `Worker.of(app)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from ..backoff import Backoff
from ..callbacks import CallbackService
from ..cleanup import reason_for
from ..clock import Clock
from ..codec import dumps, loads
from ..consumers import Consumer, Consumers, ConsumerService
from ..context import Context
from ..errors import ConfigError, CorralError, PayloadError
from ..isolation import claim_plan, drain_due, suspect_after, suspect_patience
from ..lifecycle import OnTimeout, Outcome, State, counts_as_failure, next_state
from ..limits import storable
from ..model import DEFAULT_POOL, AttemptReport, ClaimedTask, WorkerInfo
from ..registry import Registry, TaskDef
from ..store import Store
from ..store.contract import WORKERS_CHANNEL, ClaimParams, CompleteParams, DrainParams, EventParams
from .cleanups import CleanupRunner
from .defaults import HEARTBEAT, LEASE
from .executors import RunResult, execute
from .gil import GilHold, GilMonitor
from .heartbeat import Companion, CompanionConfig
from .middleware import Chain, Middleware, Run, builtin, check_middleware
from .renewal import renew_worker, worker_lease
from .sink import StoreSink
from .tracing import traced

log = logging.getLogger("corral.worker")


@dataclass
class WorkerConfig:
    pools: tuple[str, ...] = (DEFAULT_POOL,)
    concurrency: int = 8
    lease: float = LEASE
    """A task whose worker is silent this long is given to another worker."""
    heartbeat: float = HEARTBEAT
    """Also how often cancel requests are picked up."""
    poll: float = 0.02
    """Seconds between claims when there was nothing to claim."""
    grace: float = 10.0
    """On stop: how long running tasks may finish before they are released."""
    kill_grace: float = 1.0
    """How long a handler may take to honour a cancel before it is interrupted."""
    report_batch: int = 500
    cancel_poll: float = 0.25
    """Without notifications (SQLite without AF_UNIX): how often running tasks' cancel requests
    are read."""
    callbacks: bool = True
    """Run the app's state-change callbacks here (one process delivers at a time)."""
    consumers: bool = True
    """Run the app's event consumers (`app.consumers`) here (one process reads a name at a time)."""
    callback_lease: float = 15.0
    """Another process takes over callback delivery this long after the deliverer died."""
    callback_timeout: float = 10.0
    """A callback running longer is logged and abandoned."""
    callback_poll: float = 0.2
    """Seconds between reads of the event feed when it had nothing new."""
    companion: bool = True
    """Renew the leases from a companion process, which a handler holding the GIL can't starve
    (False: from this process's event loop, which such a handler stops)."""
    hung_after: float = 180.0
    """The companion stops renewing once the worker's loop sent no tick and its process used no
    CPU for this long: a hung worker's tasks are recovered within hung_after + lease."""
    gil_warn_after: float = 5.0
    """A handler that keeps the interpreter from running this long is logged, with a `gil_held`
    event on its task."""
    suspect_patience: float | None = None
    """A suspect of this worker's pools admitted this long ago and still unclaimed makes the worker
    drain for it: claim nothing until idle, then run it alone (None: two leases)."""
    middleware: Sequence[Middleware] = ()
    """Wraps every run, outermost first, inside the app's (see corral.worker.middleware)."""
    cleanup_poll: float = 0.5
    """Seconds between claims of due clean-ups (corral.cleanup), in a worker that has a task type
    with one; a report that leaves a clean-up claims at once."""


class Host(Protocol):
    """What a worker serves: an App, or anything with a store, a task registry, a clock and
    middleware."""

    @property
    def store(self) -> Store: ...
    @property
    def registry(self) -> Registry[TaskDef]: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def middleware(self) -> Sequence[Middleware]: ...
    @property
    def consumers(self) -> Consumers: ...


class Worker:
    """Runs the tasks of `registry` that `store` admits to its pools. `clock`: the store's unless
    given (tests move their own)."""

    def __init__(
        self,
        store: Store,
        registry: Registry[TaskDef],
        config: WorkerConfig | None = None,
        *,
        clock: Clock | None = None,
        consumers: Sequence[Consumer] = (),
    ) -> None:
        self.store = store
        self.registry = registry
        self.consumers = tuple(consumers)
        """The event consumers this worker runs (WorkerConfig.consumers), beside the callbacks."""
        self.clock = clock if clock is not None else store.clock()
        self.config = config or WorkerConfig()
        if self.config.concurrency < 1:
            raise CorralError(f"concurrency must be >= 1, got {self.config.concurrency}")
        for name in ("hung_after", "gil_warn_after", "cleanup_poll"):
            if not getattr(self.config, name) > 0:
                raise ConfigError(f"{name} must be > 0 seconds, got {getattr(self.config, name)}")
        patience = self.config.suspect_patience
        if patience is not None and not (isinstance(patience, int | float) and patience >= 0):
            raise ConfigError(f"suspect_patience must be seconds >= 0, got {patience!r}")
        self._patience = suspect_patience(self.config.lease, patience)
        own = check_middleware(self.config.middleware)
        self.middleware = Chain((*traced(), *own, *builtin(registry)))
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.sink = StoreSink(self.store, self.clock)
        self.completed = 0
        self._running: dict[int, Context] = {}
        self._releasing: set[int] = set()
        self._alone: int | None = None
        """A suspect this worker runs isolated: it claims nothing until that ends."""
        self._draining: int | None = None
        """An overdue suspect whose drain mark this worker holds: it claims nothing until idle."""
        self._drains_ended = 0
        self._reports: list[AttemptReport] = []
        self._report_ready = asyncio.Event()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._companion: Companion | None = None
        self._recording: set[asyncio.Future[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.cleanups: CleanupRunner | None = None
        if CleanupRunner.needed(registry):
            self.cleanups = CleanupRunner(
                store, registry, self.id, self.clock, self.sink, lease=self.config.lease,
                poll=self.config.cleanup_poll, limit=self.config.concurrency,
                ended=self._report_ready.set,
            )  # fmt: skip

    @classmethod
    def of(cls, host: Host, config: WorkerConfig | None = None) -> Worker:
        """A worker for an App (or another Host): its store, registry and clock, and its
        middleware outside the config's."""
        config = config or WorkerConfig()
        chain = (*host.middleware, *check_middleware(config.middleware))
        consumers = host.consumers.registered()
        return cls(
            host.store,
            host.registry,
            replace(config, middleware=chain),
            clock=host.clock,
            consumers=consumers,
        )

    def request_stop(self) -> None:
        """Stop claiming; let running tasks finish within the grace period, release the rest."""
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        info = WorkerInfo(
            self.id, socket.gethostname(), os.getpid(), self.config.pools, self.config.concurrency
        )
        now = self.clock.now()
        await asyncio.to_thread(self.store.worker_register, info, now + self.config.lease, now)
        log.info("worker %s serves %s x%d", self.id, ",".join(info.pools), info.concurrency)
        self._loop = asyncio.get_running_loop()
        await self._start_companion_and_wait()
        gil = GilMonitor(self.config.gil_warn_after, self._gil_held_from_thread).start()
        reporter = asyncio.create_task(self._report_loop())
        heart = asyncio.create_task(self._heartbeat_loop())
        polling = None if self.store.notifies else asyncio.create_task(self._cancel_poll_loop())
        cleaning, cleanups_stop = None, asyncio.Event()
        if self.cleanups is not None:
            cleaning = asyncio.create_task(self.cleanups.run(cleanups_stop, self.config.grace))
        callbacks_stop = threading.Event()
        consumers = self._start_consumers(callbacks_stop)
        listening = threading.Event()
        if self.store.notifies:
            loop = asyncio.get_running_loop()
            threading.Thread(
                target=self._listen, args=(loop, listening), name="corral-listen", daemon=True
            ).start()
        try:
            await self._claim_loop()
            await self._drain()
        finally:
            cleanups_stop.set()
            if cleaning is not None:
                await cleaning
            listening.set()
            heart.cancel()
            if polling is not None:
                polling.cancel()
            callbacks_stop.set()
            for thread in consumers:
                await asyncio.to_thread(thread.join, self.config.callback_timeout + 5)
            self._report_ready.set()
            self._stopping.set()
            await reporter
            gil.stop()
            if self._companion is not None:
                await self._companion.stop()
            await asyncio.to_thread(self.store.lease_release, worker_lease(self.id, 0.0))
            log.info("worker %s stopped after %d tasks", self.id, self.completed)

    # -- claiming -----------------------------------------------------------------------------
    async def _claim_loop(self) -> None:
        runs: set[asyncio.Task[None]] = set()
        while not self._stopping.is_set():
            # Cleared before the claim, not after it: a notice (an admission, a run's end) that
            # comes while the claim runs ends the wait below at once rather than being lost to
            # the poll.
            self._wake.clear()
            # `runs`, not `_running`: a claimed task enters `_running` only once its coroutine
            # starts, so counting `_running` here would claim a second batch over capacity. A run
            # that just ended may not have left `runs` yet: `done()` says so already.
            busy = sum(not run.done() for run in runs)
            free = self.config.concurrency - busy
            plan = claim_plan(
                free=free,
                busy=busy,
                alone=self._alone is not None,
                draining=self._draining is not None,
                settled=not self._reports,
            )
            claimed: list[ClaimedTask] = []
            if plan.limit > 0:
                claimed = await self._claim(plan.limit, plan.may_take_suspect)
                if self._draining is not None:
                    # The suspect, alone, or (another worker took it) ordinary work: over.
                    self._drain_over(claimed)
                for task in claimed:
                    if task.isolated:
                        self._alone = task.id
                    run = asyncio.create_task(self._run(task))
                    runs.add(run)
                    run.add_done_callback(runs.discard)
            if not claimed or len(claimed) < free:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._poll)

    def _drain_over(self, claimed: list[ClaimedTask]) -> None:
        got = [t.id for t in claimed if t.isolated]
        log.info(
            "worker %s drained for suspect %s: %s",
            self.id,
            self._draining,
            f"runs suspect {got[0]} alone" if got else "taken by another worker",
        )
        self._draining = None
        self._drains_ended += 1

    @property
    def _poll(self) -> float:
        """With notifications a wait ends at the first notice: polling is only the fallback."""
        return max(self.config.poll, 0.5) if self.store.notifies else self.config.poll

    def _listen(self, loop: asyncio.AbstractEventLoop, stop: threading.Event) -> None:
        """Thread: turn the store's notices into wake-ups and cancel requests on the loop."""
        listener = self.store.listen([WORKERS_CHANNEL])
        try:
            while not stop.is_set():
                for _, payload in listener.wait(0.5):
                    kind, _, value = payload.partition(":")
                    with contextlib.suppress(RuntimeError):  # the loop closed: the worker stopped
                        if kind == "admitted" and value in self.config.pools:
                            loop.call_soon_threadsafe(self._wake.set)
                        elif kind == "cancel" and value.isdigit():
                            loop.call_soon_threadsafe(self._cancel_running, int(value))
        finally:
            listener.close()

    def _cancel_running(self, task_id: int) -> None:
        ctx = self._running.get(task_id)
        if ctx is not None and not ctx.cancelled:
            ctx.logger.info("cancel requested")
            ctx.request_cancel()

    async def _claim(self, limit: int, may_take_suspect: bool) -> list[ClaimedTask]:
        now = self.clock.now()
        try:
            params = ClaimParams(
                self.id, self.config.pools, limit, now + self.config.lease, now, may_take_suspect
            )
            return await asyncio.to_thread(self.store.task_claim, params)
        except CorralError as exc:
            log.warning("claim failed, will retry: %s", exc)
            await asyncio.sleep(1.0)
            return []

    async def _drain(self) -> None:
        deadline = time.monotonic() + self.config.grace
        while self._running and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        for task_id, ctx in list(self._running.items()):
            self._releasing.add(task_id)
            ctx.request_cancel()
        while self._running:
            await asyncio.sleep(0.02)

    # -- running ------------------------------------------------------------------------------
    async def _run(self, task: ClaimedTask) -> None:
        try:
            ctx = self._context(task)
        except Exception as exc:  # a row written around submit's checks, or corrupted
            self._report_undecodable(task, exc)
            self.completed += 1
            self._wake.set()
            return
        self._running[task.id] = ctx
        run = Run(task, ctx, self.id)
        try:
            await self.middleware.before_run(run)
            await self._execute(run)
            await self.middleware.after_run(run)
            self._report(run)
        finally:
            del self._running[task.id]
            self._releasing.discard(task.id)
            if self._alone == task.id:
                self._alone = None
            self.completed += 1
            self._wake.set()

    def _context(self, task: ClaimedTask) -> Context:
        """The handler's context, from the claimed row: its stored JSON decoded and checked."""
        args, kwargs = loads(task.args), loads(task.kwargs)
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise PayloadError(
                f"args must be a JSON array and kwargs an object, got {task.args[:80]!r} and "
                f"{task.kwargs[:80]!r}"
            )
        Backoff.from_json(loads(task.backoff))
        return Context(
            task_id=task.id,
            task_name=task.name,
            attempt=task.attempt,
            group=task.group,
            args=args,
            kwargs=kwargs,
            checkpoint=loads(task.checkpoint),
            shared=loads(task.shared) or {},
            sink=self.sink,
            dedup_key=task.dedup_key,
            deadline=None if task.max_runtime is None else time.monotonic() + task.max_runtime,
            logical_time=_utc(task.logical_time),
            data_interval=_interval(task.data_start, task.logical_time),
        )

    def _report_undecodable(self, task: ClaimedTask, exc: Exception) -> None:
        """A claimed row that can't be decoded never will be: the task ends dead at once (no
        retry), with the reason, and its slot goes to the others."""
        error = (
            f"PayloadError: task {task.id} ({task.name}) can't be run: its stored row can't be "
            f"decoded ({type(exc).__name__}: {exc})"
        )
        log.error("%s", error)
        self._reports.append(
            AttemptReport(
                task_id=task.id,
                attempt=task.attempt,
                outcome="failed",
                target=State.DEAD,
                counts_as_failure=True,
                worker_id=self.id,
                error=storable(error),
                traceback=storable("".join(traceback.format_exception(exc))),
            )
        )
        self._report_ready.set()

    async def _execute(self, run: Run) -> None:
        """Run the handler and record on `run` how it ended and its result."""
        run.started_at = self.clock.now()
        began = time.monotonic()
        ended_by, result, encoded = await self._handle(run.task, run.context)
        run.end(ended_by, result, encoded, began)

    async def _handle(
        self, task: ClaimedTask, ctx: Context
    ) -> tuple[Outcome, RunResult, str | None]:
        """How the attempt ended, the executor's result, and the result as JSON if it
        succeeded."""
        try:
            task_type = self.registry.get(task.name)
        except CorralError as exc:
            return "failed", RunResult("failed", error=str(exc)), None
        result = await execute(
            task_type.executor,
            task_type.fn,
            ctx,
            ctx.args,
            ctx.kwargs,
            timeout=task.max_runtime,
            grace=self.config.kill_grace,
        )
        if result.outcome == "cancelled" and task.id in self._releasing:
            return "released", result, None
        if result.outcome == "timed_out" and task.on_timeout == "continue":
            return "sliced", result, None
        if result.outcome != "succeeded":
            return result.outcome, result, None
        try:
            return "succeeded", result, dumps(result.value)
        except PayloadError as exc:
            return "failed", RunResult("failed", error=f"{task.name} returned {exc}"), None

    def _report(self, run: Run) -> None:
        task, outcome, result, stall = run.task, run.outcome, run.result, run.stall
        assert outcome is not None and result is not None, "a run is reported once it ended"
        on_timeout: OnTimeout = task.on_timeout  # type: ignore[assignment]
        target = next_state(
            outcome,
            failures_before=task.failures,
            max_retries=task.max_retries,
            on_timeout=on_timeout,
        )
        retry_at = None
        if target == State.RETRY_WAIT:
            backoff = Backoff.from_json(loads(task.backoff))
            retry_at = self.clock.now() + backoff.delay(task.failures + 1)
        self._reports.append(
            AttemptReport(
                task_id=task.id,
                attempt=task.attempt,
                outcome=outcome,
                target=target,
                counts_as_failure=counts_as_failure(outcome, on_timeout),
                worker_id=self.id,
                result=run.encoded,
                error=None if result.error is None else storable(result.error),
                traceback=None if result.traceback is None else storable(result.traceback),
                retry_at=retry_at,
                stalled_slices=None if stall is None else stall[0],
                flag=None if stall is None else stall[1],
                suspect=suspect_after(outcome),
                cleanup=self._cleanup_reason(run),
            )
        )
        self._report_ready.set()

    def _cleanup_reason(self, run: Run) -> str | None:
        """The reason a bad end leaves a clean-up row, if the task type has a clean-up."""
        task_type = self.registry.find(run.name)
        if task_type is None or task_type.cleanup is None or run.outcome is None:
            return None
        return reason_for(run.outcome)

    # -- reporting and heartbeats -------------------------------------------------------------
    async def _report_loop(self) -> None:
        while True:
            await self._report_ready.wait()
            self._report_ready.clear()
            while self._reports or self.sink.has_lines():
                await self._flush()
            if self._stopping.is_set() and not self._running and not self._reports:
                return

    async def _flush(self) -> None:
        batch = self._reports[: self.config.report_batch]
        lines = self.sink.take_lines()
        try:
            if lines:
                await asyncio.to_thread(self.store.log_append_many, lines)
            if batch:
                done = CompleteParams(batch, self.clock.now())
                await asyncio.to_thread(self.store.task_complete_many, done)
                if self.cleanups is not None and any(r.cleanup for r in batch):
                    self.cleanups.wake()
        except CorralError as exc:
            log.warning("report failed, will retry: %s", exc)
            await asyncio.sleep(1.0)
            return
        del self._reports[: len(batch)]

    def _start_companion(self) -> None:
        if not self.config.companion:
            return
        if self.clock is not self.store.clock():
            # A clock injected by a test lives in this process only: a companion would renew on
            # the store's clock instead, so this worker beats itself on the injected one.
            log.info("worker %s: an injected clock, so no heartbeat companion", self.id)
            return
        config = CompanionConfig(
            url=self.store.url,
            worker_id=self.id,
            worker_pid=os.getpid(),
            lease=self.config.lease,
            heartbeat=self.config.heartbeat,
            hung_after=self.config.hung_after,
            log_level=logging.getLogger().getEffectiveLevel(),
        )
        try:
            self._companion = Companion(config, asyncio.get_running_loop(), self._cancel_many)
        except OSError as exc:
            log.error("can't start the heartbeat companion (%s): this worker beats itself", exc)
            self._companion = None
            return
        log.info("worker %s: heartbeat companion pid %d", self.id, self._companion.pid)

    async def _start_companion_and_wait(self, timeout: float = 15.0) -> None:
        """Before the first claim: a handler that holds the GIL at once must find its lease
        already in the companion's hands."""
        self._start_companion()
        companion = self._companion
        deadline = time.monotonic() + timeout
        while companion is not None and not companion.ready.is_set():
            if companion.exit_code() is not None or time.monotonic() > deadline:
                log.warning(
                    "worker %s: the heartbeat companion ended or did not renew within %gs; this "
                    "worker beats itself meanwhile",
                    self.id,
                    timeout,
                )
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(companion.ready.wait(), 0.05)

    def _cancel_many(self, task_ids: list[int]) -> None:
        for task_id in task_ids:
            self._cancel_running(task_id)

    def _companion_renews(self) -> bool:
        """Tick the companion; restart it if it ended (at most once per lease, so a companion
        that can't run costs little); whether it renews the leases now."""
        companion = self._companion
        if companion is None:
            return False
        companion.tick()
        code = companion.exit_code()
        if code is None:
            return companion.renewing()
        if time.monotonic() - companion.started_at >= max(self.config.lease, 5.0):
            log.warning(
                "worker %s: heartbeat companion pid %d ended (exit code %s): restarting it; "
                "the worker beats itself meanwhile",
                self.id,
                companion.pid,
                code,
            )
            companion.close()
            self._start_companion()
        return False

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat)
            now = self.clock.now()
            if not self._companion_renews():
                try:
                    cancels = await asyncio.to_thread(
                        renew_worker, self.store, self.id, now + self.config.lease, now
                    )
                except CorralError as exc:
                    log.warning("heartbeat failed: %s", exc)
                    continue
                for task_id in cancels:
                    self._cancel_running(task_id)
            await self._look_for_overdue_suspect(now)

    async def _look_for_overdue_suspect(self, now: float) -> None:
        """Once per heartbeat: take (or renew) the drain mark of a suspect of this worker's pools
        that has waited longer than the patience, or let it go (corral.isolation)."""
        if not drain_due(alone=self._alone is not None):
            return
        ended = self._drains_ended
        try:
            drain = DrainParams(
                self.id, self.config.pools, now - self._patience, now + self.config.lease, now
            )
            marked = await asyncio.to_thread(self.store.task_drain_mark, drain)
        except CorralError as exc:
            log.warning("looking for overdue suspects failed: %s", exc)
            return
        if self._alone is not None or self._drains_ended != ended:
            return  # a drain ended meanwhile: its claim, newer than this read, decided
        if marked is not None and marked != self._draining:
            log.info("worker %s drains for suspect %d: claims nothing until idle", self.id, marked)
            self._wake.set()
        self._draining = marked

    async def _cancel_poll_loop(self) -> None:
        """Without notifications, read the cancel requests of running tasks every `cancel_poll`
        seconds (an index read), so a cancel interrupts a task within about that."""
        while True:
            await asyncio.sleep(self.config.cancel_poll)
            if not self._running:
                continue
            try:
                cancels = await asyncio.to_thread(self.store.task_fetch_cancel_requests, self.id)
            except CorralError as exc:
                log.debug("cancel poll failed: %s", exc)
                continue
            for task_id in cancels:
                self._cancel_running(task_id)

    def _gil_held_from_thread(self, hold: GilHold) -> None:
        """The GIL monitor's report (from its thread): handled on the loop."""
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed: the worker stopped
                self._loop.call_soon_threadsafe(self._gil_held, hold)

    def _gil_held(self, hold: GilHold) -> None:
        """Log a GIL hold; give each task named for it a `gil_held` event and a log line."""
        if not hold.tasks:
            log.warning("worker %s: %s", self.id, hold.describe(None, self.config.gil_warn_after))
        detail = dumps(hold.detail(self.config.gil_warn_after))
        for run in hold.tasks:
            message = hold.describe(run, self.config.gil_warn_after)
            log.warning("worker %s: %s", self.id, message)
            self.sink.log(run.task_id, run.attempt, logging.WARNING, message)
            record = asyncio.ensure_future(
                self._record_event(run.task_id, run.attempt, "gil_held", detail)
            )
            self._recording.add(record)
            record.add_done_callback(self._recording.discard)

    async def _record_event(self, task_id: int, attempt: int, kind: str, detail: str) -> None:
        try:
            event = EventParams(task_id, attempt, kind, detail, self.clock.now())
            await asyncio.to_thread(self.store.task_record_event, event)
        except CorralError as exc:
            log.warning("could not record the %s event of task %d: %s", kind, task_id, exc)

    def _start_consumers(self, stop: threading.Event) -> list[threading.Thread]:
        """The state-change callbacks of the registry and the event consumers given, each in a
        thread of its own (see corral.callbacks and corral.consumers)."""
        services: list[CallbackService | ConsumerService] = []
        if self.config.callbacks and self.registry.has_callbacks():
            services.append(CallbackService(
                self.store, self.registry, self.id, clock=self.clock,
                lease=self.config.callback_lease, timeout=self.config.callback_timeout,
                poll=self.config.callback_poll,
            ))  # fmt: skip
        if self.config.consumers:
            services.extend(
                ConsumerService(self.store, self.clock, c, self.id) for c in self.consumers
            )
        threads = []
        for service in services:
            thread = threading.Thread(target=service.run, args=(stop,), daemon=True,
                                      name=f"corral-consumer-{service.name}")  # fmt: skip
            thread.start()
            threads.append(thread)
        return threads


def run_worker(app: Host, config: WorkerConfig | None = None) -> Any:
    """Run a worker for `app` in this thread until SIGTERM or SIGINT (which drain it)."""
    import signal

    async def main() -> None:
        worker = Worker.of(app, config)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, worker.request_stop)
        await worker.run()

    asyncio.run(main())


def _utc(when: float | None) -> datetime | None:
    return None if when is None else datetime.fromtimestamp(when, UTC)


def _interval(start: float | None, end: float | None) -> tuple[datetime, datetime] | None:
    if start is None or end is None:
        return None
    return datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC)
