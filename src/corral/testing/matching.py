"""What `corral.testing`'s assertions match: a task's type, arguments, group and state.

Matching is on the stored rows (read through the store's `task_list`), decoded as the worker
decodes them, so an assertion sees what a worker would run: arguments after their JSON round
trip (a tuple is stored as a list, so `args=(1, 2)` matches `[1, 2]`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..codec import dumps, loads
from ..errors import ConfigError
from ..lifecycle import State
from ..model import TaskRecord

NOTHING: Any = object()
"""An argument not given: matches anything."""


def task_name(task: Any) -> str | None:
    """A task type (what `@app.task` returns) or a registered name, as a name; None: any."""
    if task is None or isinstance(task, str):
        return task
    name = getattr(task, "name", None)
    if not isinstance(name, str):
        raise ConfigError(f"expected a task type (from @app.task) or a task name, got {task!r}")
    return name


def states(state: State | str | Iterable[State | str] | None) -> tuple[State, ...]:
    if state is None:
        return ()
    listed = [state] if isinstance(state, str) else list(state)
    try:
        return tuple(State(s) for s in listed)
    except ValueError:
        known = ", ".join(s.value for s in State)
        raise ConfigError(f"state must be one of {known}, got {state!r}") from None


@dataclass(frozen=True)
class Pattern:
    """What a submitted task must look like. `args`: exactly these positional arguments;
    `kwargs`: at least these keyword arguments with these values (others may be there too)."""

    name: str | None = None
    args: Any = NOTHING
    kwargs: Any = NOTHING
    group: str | None = None
    states: tuple[State, ...] = ()

    def __post_init__(self) -> None:
        if self.args is not NOTHING:
            if isinstance(self.args, str | bytes) or not isinstance(self.args, Sequence):
                raise ConfigError(f"args must be a list or tuple, got {self.args!r}")
            object.__setattr__(self, "args", loads(dumps(list(self.args), what="args")))
        if self.kwargs is not NOTHING:
            if not isinstance(self.kwargs, dict):
                raise ConfigError(f"kwargs must be a dict, got {self.kwargs!r}")
            object.__setattr__(self, "kwargs", loads(dumps(self.kwargs, what="kwargs")))

    def matches(self, record: TaskRecord) -> bool:
        if self.name is not None and record.name != self.name:
            return False
        if self.group is not None and record.group != self.group:
            return False
        if self.states and record.state not in self.states:
            return False
        if self.args is not NOTHING and loads(record.args) != self.args:
            return False
        if self.kwargs is not NOTHING:
            stored = loads(record.kwargs)
            if any(k not in stored or stored[k] != v for k, v in self.kwargs.items()):
                return False
        return True

    def describe(self) -> str:
        parts = [f"task {self.name!r}" if self.name else "any task"]
        if self.args is not NOTHING:
            parts.append(f"args={self.args!r}")
        if self.kwargs is not NOTHING:
            parts.append(f"kwargs ⊇ {self.kwargs!r}")
        if self.group is not None:
            parts.append(f"group={self.group!r}")
        if self.states:
            parts.append(f"state in {[s.value for s in self.states]}")
        return " ".join(parts)


def describe(record: TaskRecord) -> str:
    """One line per submitted task, for an assertion's message."""
    return (
        f"#{record.id} {record.name}(*{record.args}, **{record.kwargs}) "
        f"group={record.group!r} state={record.state.value}"
    )
