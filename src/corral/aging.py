"""Ageing: how a waiting task's level rises with its wait, so that low priorities never starve.

An ageing function maps (base priority, seconds waited) to a level, and says at what wait the
level next changes. The store keeps that moment as `promote_at`, so the promoter touches only
tasks that are due, never the whole backlog. Built-ins serialise to JSON and travel with the task.

A user-defined ageing function is any object with `level(base, waited)` and
`next_change(base, waited)`. The scheduler never imports user code, so at submission corral
tabulates it for the task's priority: the waits at which its level changes, and the levels, into a
`Table` that travels as JSON. It must never lower the level as the wait grows, and must stop
rising (return None from `next_change`) within MAX_CHANGES changes. Pure: no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from . import limits
from .errors import ConfigError
from .limits import INT_MAX

MAX_CHANGES = 1000
"""How many times a user-defined ageing function may change a task's level."""


@runtime_checkable
class Aging(Protocol):
    def level(self, base: int, waited: float) -> int:
        """The level of a task of priority `base` that has waited `waited` seconds."""
        ...

    def next_change(self, base: int, waited: float) -> float | None:
        """The wait (seconds, > `waited`) at which the level next changes; None if never."""
        ...


class Stored(Aging, Protocol):
    """A built-in ageing function: it travels with the task as JSON."""

    def to_json(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class NoAging:
    def level(self, base: int, waited: float) -> int:
        return base

    def next_change(self, base: int, waited: float) -> float | None:
        return None

    def to_json(self) -> dict[str, Any]:
        return {"kind": "none"}


@dataclass(frozen=True)
class Step:
    """+`levels` every `every` seconds of waiting, up to level `cap`."""

    every: float
    levels: int = 1
    cap: int = 100

    def __post_init__(self) -> None:
        if self.every <= 0 or self.levels <= 0:
            raise ConfigError(f"step ageing needs every > 0 and levels > 0, got {self}")
        if self.cap < 0:
            raise ConfigError(f"ageing cap must be >= 0, got {self.cap}")
        limits.number("ageing every (seconds)", self.every, 0, limits.MAX_SECONDS, above=True)
        limits.whole("ageing levels", self.levels, 1)
        limits.whole("ageing cap", self.cap)

    def level(self, base: int, waited: float) -> int:
        if base >= self.cap:
            return base
        return min(self.cap, base + self.levels * int(max(waited, 0.0) // self.every))

    def next_change(self, base: int, waited: float) -> float | None:
        if self.level(base, waited) >= self.cap:
            return None
        return (math.floor(max(waited, 0.0) / self.every) + 1) * self.every

    def to_json(self) -> dict[str, Any]:
        return {"kind": "step", "every": self.every, "levels": self.levels, "cap": self.cap}


@dataclass(frozen=True)
class Table:
    """A tabulated ageing function: from each wait in `steps` on, the level beside it. What a
    user-defined function becomes for one base priority."""

    steps: tuple[tuple[float, int], ...]

    def level(self, base: int, waited: float) -> int:
        current = base
        for wait, level in self.steps:
            if wait > waited:
                break
            current = level
        return current

    def next_change(self, base: int, waited: float) -> float | None:
        return next((wait for wait, _ in self.steps if wait > waited), None)

    def to_json(self) -> dict[str, Any]:
        return {"kind": "table", "steps": [[wait, level] for wait, level in self.steps]}


BUILT_IN = (NoAging, Step, Table)


def tabulate(fn: Aging, base: int) -> Table:
    """Tabulate a user-defined ageing function for priority `base`, checking as it goes that it
    never lowers the level and that it stops changing. Raises ConfigError naming the fault."""
    name = type(fn).__name__
    steps: list[tuple[float, int]] = []
    waited, current = 0.0, base
    for _ in range(MAX_CHANGES + 1):
        level = _call(fn.level, name, "level", base, waited)
        if not isinstance(level, int) or isinstance(level, bool) or not 0 <= level <= INT_MAX:
            raise ConfigError(f"ageing {name}.level({base}, {waited}) must return a whole "
                              f"number from 0 to {INT_MAX}, got {level!r}")  # fmt: skip
        if level < current:
            raise ConfigError(
                f"ageing {name} lowers the level as the wait grows: level {level} after "
                f"{waited:g}s, {current} before (priority {base})"
            )
        if level != current:
            steps.append((waited, level))
            current = level
        following = _call(fn.next_change, name, "next_change", base, waited)
        if following is None:
            return Table(tuple(steps))
        if not isinstance(following, int | float) or not waited < following < math.inf:
            raise ConfigError(f"ageing {name}.next_change({base}, {waited}) must return a wait "
                              f"> {waited} or None, got {following!r}")  # fmt: skip
        waited = float(following)
    raise ConfigError(
        f"ageing {name} keeps changing the level after {MAX_CHANGES} changes: give it a cap "
        "(next_change returns None once the level stops rising)"
    )


def _call(method: Any, name: str, what: str, base: int, waited: float) -> Any:
    try:
        return method(base, waited)
    except Exception as exc:
        raise ConfigError(f"ageing {name}.{what}({base}, {waited}) raised {exc!r}") from None


def check(fn: Any) -> Aging:
    """`fn` if it is an ageing function; a clear ConfigError if not."""
    if isinstance(fn, BUILT_IN):
        return fn
    if not callable(getattr(fn, "level", None)) or not callable(getattr(fn, "next_change", None)):
        raise ConfigError(
            "aging must be an ageing function such as corral.aging.linear(), or an object with "
            f"level(base, waited) and next_change(base, waited); got {fn!r}"
        )
    return fn  # type: ignore[no-any-return]


def stored(fn: Aging, base: int) -> Stored:
    """The form of `fn` that travels with a task of priority `base`: itself if built in, else
    its table (checked)."""
    if isinstance(fn, BUILT_IN):
        return fn
    return tabulate(fn, base)


def linear(per_minute: float = 1.0, cap: int = 100) -> Step:
    """`per_minute` levels a minute of waiting, up to level `cap`."""
    if per_minute <= 0:
        raise ConfigError(f"linear ageing needs per_minute > 0, got {per_minute}")
    return Step(every=60.0 / per_minute, levels=1, cap=cap)


def step(every: float, levels: int = 1, cap: int = 100) -> Step:
    """+`levels` every `every` seconds of waiting, up to level `cap`."""
    return Step(every=every, levels=levels, cap=cap)


none = NoAging()


def from_json(data: dict[str, Any] | None) -> Stored:
    if not data or data.get("kind") == "none":
        return none
    if data.get("kind") == "step":
        return Step(every=float(data["every"]), levels=int(data["levels"]), cap=int(data["cap"]))
    if data.get("kind") == "table":
        return Table(tuple((float(wait), int(level)) for wait, level in data["steps"]))
    raise ConfigError(f"unknown ageing function {data!r}")
