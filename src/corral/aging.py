"""Ageing: how a waiting task's level rises with its wait, so that low priorities never starve.

An ageing function maps (base priority, seconds waited) to a level, and says at what wait the
level next changes. The store keeps that moment as `promote_at`, so the promoter touches only
tasks that are due, never the whole backlog. Built-ins serialise to JSON and travel with the task.
Pure: no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from .errors import ConfigError


@runtime_checkable
class Aging(Protocol):
    def level(self, base: int, waited: float) -> int:
        """The level of a task of priority `base` that has waited `waited` seconds."""
        ...

    def next_change(self, base: int, waited: float) -> float | None:
        """The wait (seconds, > `waited`) at which the level next changes; None if never."""
        ...

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


def linear(per_minute: float = 1.0, cap: int = 100) -> Step:
    """`per_minute` levels a minute of waiting, up to level `cap`."""
    if per_minute <= 0:
        raise ConfigError(f"linear ageing needs per_minute > 0, got {per_minute}")
    return Step(every=60.0 / per_minute, levels=1, cap=cap)


def step(every: float, levels: int = 1, cap: int = 100) -> Step:
    """+`levels` every `every` seconds of waiting, up to level `cap`."""
    return Step(every=every, levels=levels, cap=cap)


none = NoAging()


def from_json(data: dict[str, Any] | None) -> Aging:
    if not data or data.get("kind") == "none":
        return none
    if data.get("kind") == "step":
        return Step(every=float(data["every"]), levels=int(data["levels"]), cap=int(data["cap"]))
    raise ConfigError(f"unknown ageing function {data!r}")
