"""State-change callbacks, driven by the event rows.

Register them per app (`@app.on("dead")`) or per task type (`@app.task(on_state={...})`). Each is
called with a `StateChange`: the event row (its id, kind, states, attempt, time and detail), the
task's name, group and workflow, and for the end of an attempt its `error` (type, message, where).

Where they run: in the processes that hold the app's code, `corral worker` and `corral run`. Each
such process may run a `CallbackService`, but one delivers at a time: the callbacks are one event
consumer (corral.consumers), named "callbacks", whose row in the store holds a lease and a cursor.
The holder reads the events after the cursor, calls the callbacks, then moves the cursor (a
compare-and-set on the lease). If it dies in between, the lease expires, another process takes it
and delivers the same events again: at least once, each with its event, whose id lets a callback
recognise a repeat. A new store's callbacks start at the feed's origin, so the events of tasks
submitted before the first worker started are delivered too.

Why a cursor is safe on both backends: SQLite assigns event ids in commit order (one writer at a
time), so the cursor is the last id delivered. PostgreSQL takes ids from a sequence, and they do
not commit in id order: a plain "last id seen" could pass an id whose transaction commits later
and skip that event for good. So each PostgreSQL event row also records the id of the
transaction that wrote it, and the consumer reads only the events of transactions older than
every transaction that may still write one: the oldest in progress in its snapshot, leaving out
those that pg_stat_activity shows in other databases of the server. No event can appear among
those any more. It reads them in (transaction, id) order, which is then fixed, and its cursor is
that pair. The price: a transaction left open in corral's database holds delivery back until it
ends (corral's own sessions end an idle transaction after 5 s).

Isolation: every call runs on a small pool of threads of the service's own, with a time limit
(`timeout`) counted from its start. A callback that
raises is logged with its event and not retried (at least once is about crashes, not about
callbacks' own errors); one that overruns is logged and abandoned. Neither holds up the other
callbacks beyond the time limit, nor touches the worker's tasks: the service has its own thread.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from .clock import Clock
from .consumers import EVENT_KINDS, Consumer, ConsumerService, StateChange
from .model import FeedEvent
from .registry import Registry, TaskDef
from .store import Store

log = logging.getLogger("corral.callbacks")

CALLBACK_KINDS: frozenset[str] = frozenset({*EVENT_KINDS, "*"})
"""The event kinds a callback may be registered for: the states entered, the events that are not
transitions, and "*" for all."""

__all__ = ["CALLBACK_KINDS", "CallbackService", "StateChange"]


class CallbackService:
    """Delivers the state-change callbacks of `registry` (an app's) from the event feed of
    `store`, as one event consumer (corral.consumers); see the module docstring. `run(stop)`
    loops in its own thread until `stop` is set. `clock`: the store's unless given."""

    def __init__(
        self,
        store: Store,
        registry: Registry[TaskDef],
        holder: str,
        *,
        clock: Clock | None = None,
        name: str = "callbacks",
        lease: float = 15.0,
        timeout: float = 10.0,
        poll: float = 0.2,
        batch: int = 200,
        threads: int = 8,
    ) -> None:
        self.store = store
        self.registry = registry
        self.clock = clock if clock is not None else store.clock()
        self.holder = holder
        self.name = name
        self.timeout = timeout
        self.delivered = 0
        self._pool = _Pool(threads)
        consumer = Consumer(
            name, self._deliver_changes, batch=batch, start="beginning", lease=lease, poll=poll
        )
        self.consumer = ConsumerService(store, self.clock, consumer, holder)

    @property
    def holds_lease(self) -> bool:
        return self.consumer.holds_lease

    def run(self, stop: threading.Event) -> None:
        self.consumer.run(stop)

    def run_once(self, now: float) -> int:
        """Deliver one batch of events if this process holds the lease; how many events it
        went through (0: none, or not the holder)."""
        return self.consumer.run_once(now)

    def _deliver(self, feed: list[FeedEvent]) -> None:
        self._deliver_changes([StateChange.of(item) for item in feed])

    def _deliver_changes(self, changes: list[StateChange]) -> None:
        """Call every callback of the batch on the pool and wait until each has ended or run for
        `timeout`: callbacks are isolated from each other, and a slow one costs at most that.
        Never raises: a callback's own error is logged, not retried."""
        calls: list[_Call] = []
        for change in changes:
            for fn in self.registry.callbacks_for(change.kind, change.task_name):
                calls.append(self._pool.submit(fn, change))
        for call in calls:
            if not call.wait(self.timeout):
                self._pool.abandon(call)
                log.error(
                    "callback %s for event %d (%s of task %d) overran %gs; abandoned",
                    _name(call.fn), call.change.event.id, call.change.kind, call.change.task_id,
                    self.timeout,
                )  # fmt: skip
        self.delivered += len(calls)


class _Call:
    """One callback call on the pool; `wait(timeout)` counts from the moment it started."""

    def __init__(self, fn: Callable[..., Any], change: StateChange) -> None:
        self.fn = fn
        self.change = change
        self.started: float | None = None
        self.abandoned = False
        self._done = threading.Event()
        self._lock = threading.Lock()

    def run(self) -> None:
        with self._lock:
            self.started = time.monotonic()
        try:
            _call(self.fn, self.change)
        finally:
            self._done.set()

    def wait(self, timeout: float) -> bool:
        """Whether it ended within `timeout` seconds of its start (waiting first for a thread
        of the pool to take it up)."""
        while True:
            with self._lock:
                started = self.started
            if started is not None:
                return self._done.wait(max(0.0, started + timeout - time.monotonic()))
            if self._done.wait(0.01):
                return True


class _Pool:
    """Reusable daemon threads for callback calls, so a busy feed does not start a thread per
    call. A thread whose call overran is given up (it leaves the pool once its call returns, if
    ever) and replaced, so stuck callbacks never leave the pool without threads."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._jobs: queue.SimpleQueue[_Call] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0

    def submit(self, fn: Callable[..., Any], change: StateChange) -> _Call:
        call = _Call(fn, change)
        self._jobs.put(call)
        with self._lock:
            grow = self._threads < self._size
            if grow:
                self._threads += 1
        if grow:
            self._start()
        return call

    def abandon(self, call: _Call) -> None:
        with self._lock:
            call.abandoned = True
        self._start()  # the overrunning thread no longer counts: replace it

    def _start(self) -> None:
        threading.Thread(target=self._serve, name="corral-callback", daemon=True).start()

    def _serve(self) -> None:
        while True:
            call = self._jobs.get()
            call.run()
            with self._lock:
                if call.abandoned:  # a replacement took this thread's place
                    return


def _call(fn: Callable[..., Any], change: StateChange) -> None:
    try:
        result = fn(change)
        if inspect.isawaitable(result):
            asyncio.run(_awaited(result))
    except Exception:
        log.exception(
            "callback %s for event %d (%s of task %d) failed",
            _name(fn), change.event.id, change.kind, change.task_id,
        )  # fmt: skip


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def _name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)
