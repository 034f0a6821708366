"""Rate limits: token buckets that bound how fast tasks are admitted, per group or per named key.

`"100/minute"` refills 100 tokens a minute, evenly; each admission takes one. `burst` is how many
tokens the bucket holds (1 unless given: admissions evenly spaced), so in any t seconds at most
`burst + rate * t` tasks drawing on the bucket are admitted, across all workers and hosts: only
the scheduler's leader admits, and the buckets live in the store. Pure: no I/O, "now" is given.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from . import limits
from .errors import ConfigError

UNITS: dict[str, float] = {
    "s": 1.0, "sec": 1.0, "second": 1.0, "seconds": 1.0,
    "m": 60.0, "min": 60.0, "minute": 60.0, "minutes": 60.0,
    "h": 3600.0, "hour": 3600.0, "hours": 3600.0,
    "d": 86400.0, "day": 86400.0, "days": 86400.0,
}  # fmt: skip
_SPEC = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)?\s*([a-zA-Z]+)\s*$")


@dataclass(frozen=True)
class RateLimit:
    spec: str
    """As the user wrote it: "100/minute"."""
    per_second: float
    burst: float

    def refill(self, tokens: float, since: float, now: float) -> float:
        """Tokens in a bucket that held `tokens` at `since`, at `now`."""
        return min(self.burst, tokens + self.per_second * max(0.0, now - since))

    def next_token_in(self, tokens: float) -> float:
        """Seconds until a bucket holding `tokens` has a whole one."""
        return max(0.0, (1.0 - tokens) / self.per_second)


def parse(spec: str | RateLimit, burst: float | None = None) -> RateLimit:
    """`"100/minute"`, `"5/s"`, `"1000/hour"`, `"20/15min"`; a clear ConfigError otherwise."""
    if isinstance(spec, RateLimit):
        return spec if burst is None else parse(spec.spec, burst)
    if not isinstance(spec, str):
        raise ConfigError(f"a rate limit is a string such as '100/minute', got {spec!r}")
    match = _SPEC.match(spec)
    if match is None:
        raise ConfigError(
            f"bad rate limit {spec!r}: write COUNT/UNIT such as '100/minute', '5/s' or '20/15min'"
        )
    count, multiple, unit = float(match[1]), float(match[2] or 1), match[3].lower()
    if unit not in UNITS:
        known = ", ".join(sorted({"second", "minute", "hour", "day", "s", "min", "h", "d"}))
        raise ConfigError(f"bad rate limit {spec!r}: unknown unit {unit!r} (use one of {known})")
    if count <= 0 or multiple <= 0:
        raise ConfigError(f"bad rate limit {spec!r}: the count and the period must be > 0")
    if burst is None:
        burst = 1.0
    limits.number("rate limit burst", burst, 1, limits.MAX_BURST)
    per_second = count / (multiple * UNITS[unit])
    if not 1 / limits.MAX_SECONDS <= per_second <= limits.MAX_BURST:
        raise ConfigError(
            f"bad rate limit {spec!r}: it must be from 1 per 100 years to "
            f"{limits.MAX_BURST:g} per second"
        )
    return RateLimit(spec.strip(), per_second, float(burst))


def group_bucket(group: str) -> str:
    """The bucket key of a group's own rate limit."""
    return f"group:{group}"


def key_bucket(key: str) -> str:
    """The bucket key of a named rate limit."""
    return f"key:{key}"


def buckets_of(group: str, rate_key: str | None) -> list[str]:
    """The buckets a task draws on: its group's, and its named one if it names one."""
    return (
        [group_bucket(group)] if rate_key is None else [group_bucket(group), key_bucket(rate_key)]
    )
