"""Worker middleware: the one way to wrap a run (as Dramatiq's).

A middleware is an object of a `Middleware` subclass that overrides the hooks it needs; each hook
takes the `Run` (the claimed task, its context, its timing and outcome) and may be `def` or
`async def`. For every attempt a worker runs:

1. `before_run(run)`, in list order (outermost first), then the handler runs;
2. one outcome hook, by how the handler's run ended: `on_error` (it raised), `on_timeout` (it
   overran its max_runtime), `on_slice_end` (its time slice ended, on_timeout="continue"),
   `on_cancel` (it was cancelled on request); none when it succeeded, or when a stopping worker
   released it;
3. `after_run(run)`, whatever happened; `run.outcome` is then what the worker reports.

Hooks after the run go in reverse list order (innermost first), so a middleware wraps the ones
after it. The worker's list is the app's (`App(middleware=[...])`), then the worker config's
(`WorkerConfig(middleware=[...])`), then corral's own, innermost: `CancelCleanup` (a task type's
on_cancel) and `StallCheck` (a time slice that made no progress). So a user's outcome hooks and
`after_run` see what corral decided (a stalled slice: `run.outcome == "stalled"`).

A hook that raises is logged (with the middleware, the hook and the task) and the run goes on as
if it had returned: the handler still runs, its outcome is reported as usual, the other hooks
are called. A middleware can neither lose a task nor stop the worker. A hook runs on the worker's
event loop: a `def` hook must be quick (an `async def` one may await; one that blocks holds up
every run of the worker).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from ..codec import loads
from ..context import Context
from ..errors import ConfigError
from ..lifecycle import Outcome, slice_stall
from ..model import ClaimedTask
from ..registry import FAIL_STALLED_AFTER, FLAG_STALLED_AFTER, Registry, TaskDef
from .executors import RunResult

log = logging.getLogger("corral.worker")

Hook = Callable[["Run"], Awaitable[None] | None]
HOOKS = ("before_run", "on_error", "on_timeout", "on_slice_end", "on_cancel", "after_run")
OUTCOME_HOOKS: dict[Outcome, str] = {
    "failed": "on_error",
    "timed_out": "on_timeout",
    "sliced": "on_slice_end",
    "cancelled": "on_cancel",
}
"""How the handler's run ended -> the hook called for it."""


@dataclass(eq=False)
class Run:
    """One attempt of one task, as the middleware sees it. Read it; only corral's own middleware
    change `outcome`, `result` and `stall`."""

    task: ClaimedTask
    context: Context
    worker_id: str
    started_at: float | None = None
    """When the handler started, on the store's clock (None before it did)."""
    duration: float | None = None
    """Seconds the handler ran (a monotonic measure; None until it ended)."""
    ended_by: Outcome | None = None
    """How the handler's run ended: succeeded, failed, timed_out, sliced, cancelled, released."""
    outcome: Outcome | None = None
    """What the worker reports: `ended_by`, or what corral made of it (`stalled`)."""
    result: RunResult | None = None
    encoded: str | None = None
    """The handler's return value as JSON, when it succeeded."""
    stall: tuple[int, str | None] | None = None
    """After a time slice: slices in a row without progress, and the flag raised, if any."""

    @property
    def task_id(self) -> int:
        return self.task.id

    @property
    def name(self) -> str:
        return self.task.name

    @property
    def group(self) -> str:
        return self.task.group

    @property
    def attempt(self) -> int:
        return self.task.attempt

    @property
    def error(self) -> str | None:
        """ "ExceptionType: message" when the run did not succeed."""
        return None if self.result is None else self.result.error

    def end(self, ended_by: Outcome, result: RunResult, encoded: str | None, began: float) -> None:
        """Record how the handler's run ended (`began`: its time.monotonic() start)."""
        self.duration = time.monotonic() - began
        self.ended_by = self.outcome = ended_by
        self.result = result
        self.encoded = encoded


class Middleware:
    """Base class of worker middleware: every hook is a no-op here; override the ones you need
    (as `def` or `async def`). See the module's docstring for when each is called."""

    def before_run(self, run: Run) -> Awaitable[None] | None:
        """Before the handler starts (run.started_at is not set yet)."""

    def on_error(self, run: Run) -> Awaitable[None] | None:
        """The handler raised (run.error says what)."""

    def on_timeout(self, run: Run) -> Awaitable[None] | None:
        """The handler overran its max_runtime (the attempt is retried or failed)."""

    def on_slice_end(self, run: Run) -> Awaitable[None] | None:
        """The handler's time slice ended (on_timeout="continue"): the task is requeued."""

    def on_cancel(self, run: Run) -> Awaitable[None] | None:
        """The handler was interrupted by a cancel request."""

    def after_run(self, run: Run) -> Awaitable[None] | None:
        """After every run, whatever its outcome (run.outcome), before it is reported."""


def check_middleware(middleware: Sequence[Middleware]) -> tuple[Middleware, ...]:
    """The middleware as a tuple, each checked to be a `Middleware` (ConfigError names it)."""
    if isinstance(middleware, Middleware) or not isinstance(middleware, Sequence):
        raise ConfigError(f"middleware must be a list of Middleware objects, got {middleware!r}")
    for item in middleware:
        if not isinstance(item, Middleware):
            raise ConfigError(
                f"middleware must be Middleware objects (subclass corral.Middleware), got {item!r}"
            )
    return tuple(middleware)


class Chain:
    """The worker's middleware in order, with each hook's implementations listed once (a hook
    left as the base class's no-op costs nothing)."""

    def __init__(self, middleware: Sequence[Middleware]) -> None:
        self.middleware = check_middleware(middleware)
        self._hooks: dict[str, list[tuple[Middleware, Hook]]] = {}
        for hook in HOOKS:
            found = [
                (m, getattr(m, hook))
                for m in self.middleware
                if getattr(type(m), hook) is not getattr(Middleware, hook)
            ]
            self._hooks[hook] = found if hook == "before_run" else found[::-1]

    async def before_run(self, run: Run) -> None:
        await self._call("before_run", run)

    async def after_run(self, run: Run) -> None:
        """The outcome hook for how the run ended, then `after_run`."""
        hook = OUTCOME_HOOKS.get(run.ended_by) if run.ended_by is not None else None
        if hook is not None:
            await self._call(hook, run)
        await self._call("after_run", run)

    async def _call(self, hook: str, run: Run) -> None:
        for middleware, fn in self._hooks[hook]:
            try:
                result = fn(run)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception(
                    "middleware %s.%s failed on task %d (%s, attempt %d); the run goes on",
                    type(middleware).__name__, hook, run.task_id, run.name, run.attempt,
                )  # fmt: skip


class CancelCleanup(Middleware):
    """corral's own: after a cancelled run, the task type's on_cancel with the context, so what
    the task started elsewhere (recorded in ctx.shared) is released. Its failure is logged on the
    task, never raised."""

    def __init__(self, registry: Registry[TaskDef]) -> None:
        self.registry = registry

    async def on_cancel(self, run: Run) -> None:
        task_type = self.registry.find(run.name)
        if task_type is None or task_type.on_cancel is None:
            return
        try:
            if inspect.iscoroutinefunction(task_type.on_cancel):
                await task_type.on_cancel(run.context)
            else:
                await asyncio.to_thread(task_type.on_cancel, run.context)
        except Exception:
            run.context.logger.exception("on_cancel of %s failed", run.name)


class StallCheck(Middleware):
    """corral's own: after a time slice, count it if the checkpoint did not move; flag the task
    (an event and a log line) at the task type's `flag_stalled_after`, fail it (outcome
    `stalled`) at `fail_stalled_after`."""

    def __init__(self, registry: Registry[TaskDef]) -> None:
        self.registry = registry

    def on_slice_end(self, run: Run) -> None:
        task, ctx = run.task, run.context
        task_type = self.registry.find(task.name)
        flag_after = FLAG_STALLED_AFTER if task_type is None else task_type.flag_stalled_after
        fail_after = FAIL_STALLED_AFTER if task_type is None else task_type.fail_stalled_after
        changed = ctx.checkpoint != loads(task.checkpoint)
        count, flag, fail = slice_stall(
            task.stalled_slices, changed, flag_after=flag_after, fail_after=fail_after
        )
        run.stall = (count, "stalled" if flag else None)
        if not flag:
            return
        message = (
            f"task {task.id} ({task.name}) made no progress: its checkpoint did not change over "
            f"{count} time slices in a row"
        )
        if not fail:
            ctx.logger.warning("%s; it fails after %s", message, fail_after or "never")
            log.warning("%s", message)
            return
        ctx.logger.error("%s: failed", message)
        log.error("%s: failed", message)
        run.outcome = "stalled"
        run.result = RunResult("failed", error=f"Stalled: {message}")


def builtin(registry: Registry[TaskDef]) -> tuple[Middleware, ...]:
    """corral's own middleware, innermost in every worker's chain."""
    return (CancelCleanup(registry), StallCheck(registry))
