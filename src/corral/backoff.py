"""Retry backoff: exponential with full jitter and a cap. Pure; the random source is a parameter."""

from __future__ import annotations

import random
from dataclasses import dataclass

from . import limits
from .errors import ConfigError


@dataclass(frozen=True)
class Backoff:
    """Delay before retry n (1-based): a uniform draw in [base*factor**(n-1)*(1-jitter), that],
    never above `cap`. `jitter=0` gives a deterministic schedule."""

    base: float = 1.0
    factor: float = 2.0
    cap: float = 300.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.base < 0 or self.cap < 0:
            raise ConfigError(f"backoff base and cap must be >= 0, got {self.base}, {self.cap}")
        if self.factor < 1:
            raise ConfigError(f"backoff factor must be >= 1, got {self.factor}")
        if not 0 <= self.jitter <= 1:
            raise ConfigError(f"backoff jitter must be within [0, 1], got {self.jitter}")
        limits.number("backoff base", self.base, 0, limits.MAX_SECONDS)
        limits.number("backoff cap", self.cap, 0, limits.MAX_SECONDS)
        limits.number("backoff factor", self.factor, 1, 1000)

    def delay(self, retry_number: int, rng: random.Random | None = None) -> float:
        exponent = max(retry_number - 1, 0)
        ceiling = min(self.cap, self.base * self.factor ** min(exponent, 64))
        draw = (rng or random).random()
        return ceiling * (1 - self.jitter * draw)

    def to_json(self) -> dict[str, float]:
        return {"base": self.base, "factor": self.factor, "cap": self.cap, "jitter": self.jitter}

    @classmethod
    def from_json(cls, data: dict[str, float]) -> Backoff:
        return cls(**data)
