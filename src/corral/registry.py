"""The task registry: the task types a process can run, by name, and its app-wide state-change
callbacks.

It sits below the app: `App` writes it (`@app.task`, `@app.on`), and the worker and the callback
service read it, so they need the registry and the store, never the `App`. A task type's
definition (`TaskDef`) is what a worker runs: the handler and the settings that travel with it;
the app's `TaskType` adds submitting to it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Generic, Literal, TypeVar

from .aging import Aging
from .backoff import Backoff
from .cleanup import CleanupSpec
from .errors import ConfigError, UnknownTaskError
from .isolation import QUARANTINE_AFTER
from .lifecycle import OnTimeout

ExecutorKind = Literal["async", "thread", "process"]
EXECUTORS: tuple[ExecutorKind, ...] = ("async", "thread", "process")
FLAG_STALLED_AFTER = 3
"""Time slices in a row with the checkpoint unchanged before a task is flagged stalled..."""
FAIL_STALLED_AFTER = 10
"""...and before it is failed (dead)."""

Callback = Callable[..., Any]


@dataclass(kw_only=True)
class TaskDef:
    """A task type as a worker runs it: its handler and the settings its tasks carry."""

    fn: Callable[..., Any]
    name: str
    priority: int
    aging: Aging
    max_retries: int
    backoff: Backoff
    max_runtime: float | None
    on_timeout: OnTimeout
    pool: str
    executor: ExecutorKind
    on_cancel: Callable[..., Any] | None = None
    rate_key: str | None = None
    on_upstream_failure: str = "fail"
    on_state: dict[str, list[Callback]] = field(default_factory=dict)
    """State-change callbacks of this task type, by event kind (see `App.on`)."""
    flag_stalled_after: int = FLAG_STALLED_AFTER
    """Time slices in a row with the checkpoint unchanged before the task is flagged stalled."""
    fail_stalled_after: int | None = FAIL_STALLED_AFTER
    """...and before it is failed (dead); None: never."""
    quarantine_after: int = QUARANTINE_AFTER
    """Crashes of its worker while a task runs alone before it is quarantined (dead)."""
    cleanup: CleanupSpec | None = None
    """Its clean-up after every bad end of an attempt (on_cleanup; corral.cleanup)."""


D = TypeVar("D", bound=TaskDef)
D_co = TypeVar("D_co", bound=TaskDef, covariant=True)


class Registry(Generic[D_co]):
    """Task types by name, and app-wide state-change callbacks by event kind. Read-only for
    its readers (covariant): a `Registry[TaskType]` is a `Registry[TaskDef]` to a worker."""

    def __init__(self) -> None:
        self._tasks: dict[str, D_co] = {}
        self._callbacks: dict[str, list[Callback]] = {}

    def add(self: Registry[D], task: D) -> D:
        """Register a task type; a second one under the same name is refused."""
        if task.name in self._tasks:
            raise ConfigError(f"a task named {task.name!r} is already registered")
        self._tasks[task.name] = task
        return task

    def add_callbacks(self, kind: str, fns: list[Callback]) -> None:
        """App-wide callbacks for one event kind (checked by the caller)."""
        self._callbacks.setdefault(kind, []).extend(fns)

    @property
    def tasks(self) -> Mapping[str, D_co]:
        return MappingProxyType(self._tasks)

    @property
    def callbacks(self) -> Mapping[str, list[Callback]]:
        return MappingProxyType(self._callbacks)

    def get(self, name: str) -> D_co:
        """The task type named `name`, or UnknownTaskError naming the registered ones."""
        try:
            return self._tasks[name]
        except KeyError:
            known = ", ".join(sorted(self._tasks)) or "none"
            raise UnknownTaskError(f"unknown task {name!r} (registered: {known})") from None

    def find(self, name: str) -> D_co | None:
        return self._tasks.get(name)

    def __iter__(self) -> Iterator[D_co]:
        return iter(list(self._tasks.values()))

    def __len__(self) -> int:
        return len(self._tasks)

    def with_cleanup(self) -> tuple[str, ...]:
        """The names of the task types that have a clean-up, sorted."""
        return tuple(sorted(t.name for t in self._tasks.values() if t.cleanup is not None))

    def pools(self) -> tuple[str, ...]:
        """The pools the registered task types belong to, sorted."""
        return tuple(sorted({t.pool for t in self._tasks.values()}))

    def has_callbacks(self) -> bool:
        return bool(self._callbacks) or any(t.on_state for t in self._tasks.values())

    def callbacks_for(self, kind: str, task_name: str | None) -> list[Callback]:
        """The callbacks an event calls: the app's, then its task type's, for its kind and
        "*"."""
        found = [*self._callbacks.get(kind, ()), *self._callbacks.get("*", ())]
        task = self._tasks.get(task_name or "")
        if task is not None:
            found += [*task.on_state.get(kind, ()), *task.on_state.get("*", ())]
        return found
