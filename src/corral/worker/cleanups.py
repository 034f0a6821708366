"""The worker's clean-up runner (corral.cleanup): claims the due clean-ups of the task types it has
registered with an `on_cleanup`, runs each within its time limit, and records the end.

It runs on the worker's event loop beside the claim loop, only in a worker whose registry has a
task type with a clean-up (others start nothing and run no statement). A claim is one indexed
read of the due clean-ups, every `poll` seconds or at once when the worker reported a bad end
that left one. Clean-ups run concurrently (at most `limit` at once), each a coroutine or a
thread, so a slow clean-up holds up neither the others nor the worker's tasks.

A clean-up is held under a lease (its row's next_try_at) that covers its time limit plus the
worker's lease: a worker that dies during a try leaves it to another once that lapsed, and the
try counts. A try past its time limit counts as failed (an `async def` clean-up is cancelled; a
thread can't be stopped, so it is abandoned to finish on its own). A `def` clean-up runs in a
thread of its own, never the loop's shared executor, so one that hangs holds up none of the
worker's store calls. The rule of retries and ends is corral.cleanup.after_try.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import threading
from collections.abc import Callable
from typing import Any

from ..cleanup import CleanupSpec, after_try
from ..clock import Clock
from ..codec import loads
from ..context import Context
from ..errors import CorralError
from ..limits import storable
from ..model import ClaimedCleanup
from ..registry import Registry, TaskDef
from ..store import Store
from ..store.contract import CleanupClaimParams, CleanupEndParams
from .sink import StoreSink

log = logging.getLogger("corral.worker")


class CleanupRunner:
    """Runs the clean-ups of `registry`'s task types for worker `worker_id`."""

    def __init__(
        self,
        store: Store,
        registry: Registry[TaskDef],
        worker_id: str,
        clock: Clock,
        sink: StoreSink,
        *,
        lease: float,
        poll: float,
        limit: int,
        ended: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.worker_id = worker_id
        self.clock = clock
        self.sink = sink
        self.lease = lease
        self.poll = poll
        self.limit = limit
        self.ended = ended
        """Called after each try (the worker flushes the clean-up's log lines)."""
        self.tries = 0
        self._wake = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()

    @staticmethod
    def needed(registry: Registry[TaskDef]) -> bool:
        return bool(registry.with_cleanup())

    def wake(self) -> None:
        """Claim at once (a report just left a clean-up)."""
        self._wake.set()

    async def run(self, stop: asyncio.Event, grace: float) -> None:
        """Claim and run until `stop`; then let running clean-ups end within `grace` seconds
        (the rest are abandoned: their leases lapse and another worker tries them again)."""
        while not stop.is_set():
            claimed = await self.claim()
            if claimed == 0 or len(self._running) >= self.limit:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll)
        if self._running:
            await asyncio.wait(set(self._running), timeout=grace)
        for job in list(self._running):
            job.cancel()

    async def claim(self) -> int:
        """Claim what is due, up to the free places, and start each; how many were claimed."""
        names = self.registry.with_cleanup()
        free = self.limit - len(self._running)
        if not names or free <= 0:
            return 0
        specs = [self._spec(name) for name in names]
        longest = max(spec.timeout for spec in specs if spec is not None)
        now = self.clock.now()
        params = CleanupClaimParams(self.worker_id, names, free, now + longest + self.lease, now)
        try:
            claimed = await asyncio.to_thread(self.store.cleanup_claim, params)
        except CorralError as exc:
            log.warning("claiming clean-ups failed, will retry: %s", exc)
            return 0
        for cleanup in claimed:
            job = asyncio.create_task(self._run(cleanup))
            self._running.add(job)
            job.add_done_callback(self._running.discard)
        return len(claimed)

    def _spec(self, name: str) -> CleanupSpec | None:
        task_type = self.registry.find(name)
        return None if task_type is None else task_type.cleanup

    async def _run(self, job: ClaimedCleanup) -> None:
        spec = self._spec(job.task_name)
        if spec is None:  # claimed by name: the registry can't have lost it
            return
        if job.tries > spec.retries + 1:
            # Its last try's worker was lost: that try counted, and it was the last.
            lost = f"the clean-up's worker was lost during its last try ({job.tries - 1} tries)"
            await self._end(job, spec, ok=False, error=lost)
            return
        ctx = self._context(job)
        ctx.logger.info("clean-up of attempt %d (%s), try %d", job.attempt, job.reason, job.tries)
        error: str | None = None
        try:
            if inspect.iscoroutinefunction(spec.fn):
                await asyncio.wait_for(spec.fn(ctx, job.reason), spec.timeout)
            else:
                await asyncio.wait_for(_in_thread(spec.fn, ctx, job.reason), spec.timeout)
        except TimeoutError:
            error = f"TimeoutError: the clean-up ran past its limit of {spec.timeout:g}s"
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        if error is not None:
            ctx.logger.warning("clean-up of attempt %d failed: %s", job.attempt, error)
        await self._end(job, spec, ok=error is None, error=error)

    async def _end(self, job: ClaimedCleanup, spec: CleanupSpec, *, ok: bool,
                   error: str | None) -> None:  # fmt: skip
        now = self.clock.now()
        end = after_try(ok=ok, tries=job.tries, retries=spec.retries,
                        delay=spec.backoff.delay(job.tries), now=now)  # fmt: skip
        text = None if error is None else storable(error)
        params = CleanupEndParams(job.id, self.worker_id, end.state, text, now, end.next_try_at)
        try:
            recorded = await asyncio.to_thread(self.store.cleanup_end, params)
        except CorralError as exc:
            log.warning("recording the end of clean-up %d failed (its lease lapses and it is "
                        "tried again): %s", job.id, exc)  # fmt: skip
            return
        finally:
            self.tries += 1
            self.ended()
        if not recorded:
            log.warning("clean-up %d of task %d: its lease lapsed before its end was recorded",
                        job.id, job.task_id)  # fmt: skip
        elif end.state == "failed":
            log.error("clean-up of task %d (%s) attempt %d failed for good after %d tries: %s",
                      job.task_id, job.task_name, job.attempt, job.tries, error)  # fmt: skip

    def _context(self, job: ClaimedCleanup) -> Context:
        args, kwargs = loads(job.args), loads(job.kwargs)
        return Context(
            task_id=job.task_id,
            task_name=job.task_name,
            attempt=job.attempt,
            group=job.group,
            args=args if isinstance(args, list) else [],
            kwargs=kwargs if isinstance(kwargs, dict) else {},
            checkpoint=None,
            shared=loads(job.shared) or {},
            sink=self.sink,
            dedup_key=job.dedup_key,
        )


def _in_thread(fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
    """`fn(*args)` in a daemon thread of its own; its result (or exception) on the loop."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def settle(value: Any, error: BaseException | None) -> None:
        if future.done():  # abandoned past its time limit
            return
        if error is None:
            future.set_result(value)
        else:
            future.set_exception(error)

    def target() -> None:
        try:
            value, error = fn(*args), None
        except Exception as exc:
            value, error = None, exc
        except BaseException as exc:  # a SystemExit must not reach the worker's loop
            value, error = None, RuntimeError(f"the clean-up raised {type(exc).__name__}: {exc}")
        with contextlib.suppress(RuntimeError):  # the loop closed: the worker stopped
            loop.call_soon_threadsafe(settle, value, error)

    threading.Thread(target=target, name="corral-cleanup", daemon=True).start()
    return future
