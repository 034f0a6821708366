"""The context a handler gets as its first argument: who it is, where it left off, and whether it
has been asked to stop."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from .errors import TaskCancelled
from .interrupts import shielded


class ContextSink(Protocol):
    """Where a context's writes go: the worker backs it with the store (compare-and-set on the
    attempt, so a stale attempt can't overwrite a newer one); a process child backs it with a pipe
    to its parent."""

    def save_checkpoint(self, task_id: int, attempt: int, checkpoint: Any) -> None: ...

    def save_shared(self, task_id: int, attempt: int, shared: dict[str, Any]) -> None: ...

    def log(self, task_id: int, attempt: int, level: int, message: str) -> None: ...


class _SinkHandler(logging.Handler):
    def __init__(self, ctx: Context) -> None:
        super().__init__(logging.DEBUG)
        self._ctx = ctx

    def emit(self, record: logging.LogRecord) -> None:
        with shielded():  # outside the try: an interrupt held back here must not be swallowed
            try:
                self._ctx._sink.log(
                    self._ctx.task_id, self._ctx.attempt, record.levelno, self.format(record)
                )
            except Exception:  # a log line must never fail the task
                self.handleError(record)


class Context:
    """Passed to every handler. `checkpoint` is what the last `save_checkpoint` stored (None on a
    first run); `shared` holds what the task records for its clean-up (`on_cleanup` after any bad
    end, `on_cancel` after a cancel: a warehouse query id, say); `logger` lines are stored with
    this attempt."""

    def __init__(
        self,
        *,
        task_id: int,
        task_name: str,
        attempt: int,
        group: str,
        args: list[Any],
        kwargs: dict[str, Any],
        checkpoint: Any,
        shared: dict[str, Any],
        sink: ContextSink,
        dedup_key: str | None = None,
        deadline: float | None = None,
        logical_time: datetime | None = None,
        data_interval: tuple[datetime, datetime] | None = None,
    ) -> None:
        self.task_id = task_id
        self.task_name = task_name
        self.attempt = attempt
        self.group = group
        self.args = args
        self.kwargs = kwargs
        self.dedup_key = dedup_key
        self.deadline = deadline
        """Monotonic time at which max_runtime ends, if the task type has one."""
        self.logical_time = logical_time
        """For a task made by a schedule's fire or a backfill: the fire's logical time (UTC,
        timezone-aware); None otherwise."""
        self.data_interval = data_interval
        """The (start, end) the fire is responsible for: from the schedule's previous fire to
        this one (UTC, timezone-aware); None for a task no schedule made."""
        self._checkpoint = checkpoint
        self.shared: dict[str, Any] = dict(shared)
        self._sink = sink
        self._cancel_event = threading.Event()
        self._cancel_listeners: list[Callable[[], None]] = []
        self._listeners_lock = threading.Lock()
        self._logger: logging.Logger | None = None

    @property
    def logger(self) -> logging.Logger:
        """A logger whose lines are stored with this attempt (made on first use)."""
        if self._logger is None:
            # An unregistered Logger: getLogger() would keep one per task alive forever.
            logger = logging.Logger(f"corral.task.{self.task_name}.{self.task_id}", logging.DEBUG)
            logger.addHandler(_SinkHandler(self))
            self._logger = logger
        return self._logger

    @property
    def payload(self) -> dict[str, Any]:
        return {"args": self.args, "kwargs": self.kwargs}

    @property
    def idempotency_key(self) -> str:
        """A key stable across attempts of this task, for the handler to dedup side effects."""
        return self.dedup_key or f"corral-task-{self.task_id}"

    @property
    def checkpoint(self) -> Any:
        return self._checkpoint

    def save_checkpoint(self, checkpoint: Any) -> None:
        """Store `checkpoint` (JSON) durably; the next attempt or slice starts from it."""
        with shielded():  # an interrupt waits: the store and `checkpoint` stay in step
            self._sink.save_checkpoint(self.task_id, self.attempt, checkpoint)
            self._checkpoint = checkpoint

    def set_shared(self, key: str, value: Any) -> None:
        """Record `value` under `key` for the task type's clean-up (on_cleanup, on_cancel); stored
        at once."""
        with shielded():
            self.shared[key] = value
            self._sink.save_shared(self.task_id, self.attempt, dict(self.shared))

    @property
    def cancelled(self) -> bool:
        return self._cancel_event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._cancel_event.is_set():
            raise TaskCancelled(f"task {self.task_id} was cancelled")

    def wait_cancelled(self, timeout: float | None = None) -> bool:
        """Sleep up to `timeout` seconds, waking early on cancel; True if cancelled."""
        return self._cancel_event.wait(timeout)

    def request_cancel(self) -> None:
        """Called by the worker (and executors): sets `cancelled` and wakes the listeners once."""
        with self._listeners_lock:
            if self._cancel_event.is_set():
                return
            self._cancel_event.set()
            listeners = list(self._cancel_listeners)
        for listener in listeners:
            listener()

    def add_cancel_listener(self, listener: Callable[[], None]) -> None:
        """Call `listener` (from the cancelling thread) when cancel is requested; at once if it
        already was."""
        with self._listeners_lock:
            if not self._cancel_event.is_set():
                self._cancel_listeners.append(listener)
                return
        listener()
