"""Parsing of the durations users write: `90`, `1.5`, `"30s"`, `"5m"`, `"1h"`, `"1h30m"`."""

from __future__ import annotations

import re
from datetime import timedelta

from .errors import ConfigError

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")

Duration = float | int | str | timedelta


def seconds(value: Duration, *, name: str = "duration") -> float:
    """The number of seconds in `value`; a clear ConfigError when it isn't a duration."""
    if isinstance(value, timedelta):
        result = value.total_seconds()
    elif isinstance(value, bool):
        raise ConfigError(f"{name} must be a duration like 30, '30s', '5m' or '1h', not {value!r}")
    elif isinstance(value, int | float):
        try:
            result = float(value)
        except OverflowError:  # an int too big for a float: refused by the caller's bounds
            result = float("inf")
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        parts = _PART.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            raise ConfigError(
                f"{name} must be a duration like 30, '30s', '5m', '1h' or '1h30m', not {value!r}"
            )
        result = sum(float(n) * _UNITS[u] for n, u in parts)
    else:
        raise ConfigError(f"{name} must be a duration like 30, '30s', '5m' or '1h', not {value!r}")
    if result < 0:
        raise ConfigError(f"{name} must not be negative, got {value!r}")
    return result
