"""The bounds of every value a user hands corral, checked once, before anything is written.

Why one module: the two backends do not refuse the same things. SQLite stores an integer up to
2**63 - 1 in a column PostgreSQL declares INTEGER (2**31 - 1), keeps a NUL byte in a TEXT value
that PostgreSQL refuses, and stores a NaN or an infinite time that leaves a task waiting forever.
So the bounds are those of the stricter backend, and both get the same answer at submit: a
`ConfigError` (an option) or a `PayloadError` (the task's arguments) that names the field and the
limit. Pure: no I/O, nothing of the stores.

| field | range |
|---|---|
| priority, max_retries, max_parallel, stall counts | whole numbers, up to 2**31 - 1 |
| task ids (depends_on) | 1 .. 2**63 - 1 |
| delay, max_runtime | finite seconds, up to 100 years |
| run_at | a UNIX time from 0 (1970) to the end of 9999 |
| weight | a finite number > 0, up to 1,000,000 |
| burst, rate limit counts | finite, >= 1, up to 1,000,000,000 |
| names (group, pool, task, dedup key, rate key, workflow) | 1 .. 1024 characters, no NUL |
| payload (args + kwargs as JSON) | at most the App's `max_payload_bytes` (default 4 MiB) |
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from .errors import ConfigError, PayloadError

INT_MAX = 2**31 - 1
"""PostgreSQL's INTEGER: the columns of priorities, levels, counts and caps."""
ID_MAX = 2**63 - 1
"""PostgreSQL's BIGINT (and SQLite's INTEGER): the columns of ids."""
MAX_SECONDS = 100 * 365 * 86400.0
"""The longest delay or time limit: 100 years. Beyond it a number is a mistake, not a plan."""
MAX_TIME = 253402300799.0
"""The last second of the year 9999 as a UNIX time: the latest run_at."""
MAX_WEIGHT = 1_000_000.0
MAX_BURST = 1_000_000_000.0
MAX_NAME = 1024
"""Characters in a name or a dedup key."""
DEFAULT_MAX_PAYLOAD_BYTES = 4 * 1024 * 1024
"""A task's arguments and keyword arguments, as stored (JSON), at most this many bytes."""

_SURROGATE_ESCAPE = re.compile(r"\\ud[89a-f]", re.IGNORECASE)


def whole(field: str, value: Any, low: int = 0, high: int = INT_MAX) -> int:
    """A whole number from `low` to `high` (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{field} must be a whole number from {low} to {high}, got {value!r}")
    return value


def seconds(field: str, value: float, high: float = MAX_SECONDS) -> float:
    """A finite number of seconds from 0 to `high` (durations are parsed before: see
    corral.durations)."""
    if not (math.isfinite(value) and 0 <= value <= high):
        raise ConfigError(
            f"{field} must be a finite duration from 0 to {high:.0f} seconds (100 years), "
            f"got {value!r}"
        )
    return float(value)


def unix_time(field: str, value: float) -> float:
    """A finite UNIX time from 0 (1970-01-01) to the end of the year 9999."""
    if not (math.isfinite(value) and 0 <= value <= MAX_TIME):
        raise ConfigError(
            f"{field} must be a UNIX time from 0 to {MAX_TIME:.0f} (1970 to the end of 9999), "
            f"got {value!r}"
        )
    return float(value)


def number(field: str, value: Any, low: float, high: float, *, above: bool = False) -> float:
    """A finite number from `low` (excluded when `above`) to `high` (not a bool)."""
    ok = (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and math.isfinite(value)
        and (value > low if above else value >= low)
        and value <= high
    )
    if not ok:
        bound = f"> {low:g}" if above else f">= {low:g}"
        raise ConfigError(f"{field} must be a finite number {bound} and <= {high:g}, got {value!r}")
    return float(value)


def text(field: str, value: Any, *, max_chars: int = MAX_NAME) -> str:
    """A non-empty string of at most `max_chars` characters, without NUL, encodable as UTF-8
    (PostgreSQL refuses NUL in TEXT; neither backend can store a lone surrogate)."""
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{field} must be a non-empty string, got {value!r}")
    if len(value) > max_chars:
        raise ConfigError(
            f"{field} must be at most {max_chars} characters, got {len(value)} ({value[:40]!r}...)"
        )
    if "\x00" in value:
        raise ConfigError(f"{field} must not contain a NUL character (\\x00), got {value!r}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ConfigError(
            f"{field} must be valid Unicode text (encodable as UTF-8): {exc.reason} at "
            f"position {exc.start} of {value!r}"
        ) from None
    return value


def payload(what: str, args_json: str, kwargs_json: str, max_bytes: int) -> None:
    """The stored arguments (`dumps`' ASCII JSON, NaN and infinities refused there) within
    `max_bytes`, their strings encodable as UTF-8: a lone surrogate would be kept as an escape
    that other clients of the rows (the REST API, PostgreSQL's JSON functions) refuse."""
    size = len(args_json) + len(kwargs_json)
    if size > max_bytes:
        raise PayloadError(
            f"{what} are {size} bytes as JSON, over the limit of {max_bytes} bytes "
            "(App(max_payload_bytes=...)); store big data elsewhere and pass a reference"
        )
    for encoded in (args_json, kwargs_json):
        if "\\u" not in encoded or _SURROGATE_ESCAPE.search(encoded) is None:
            continue  # the common case: no escaped surrogate at all, nothing to decode
        try:
            json.dumps(json.loads(encoded), ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:
            raise PayloadError(
                f"{what} must be valid Unicode text (encodable as UTF-8): {exc.reason}"
            ) from None


def max_payload_bytes(value: Any) -> int:
    """The App option: a whole number of bytes from 1 KiB to 1 GiB."""
    return whole("max_payload_bytes", value, 1024, 2**30)


def storable(value: str) -> str:
    """Text that corral writes itself (an error, a traceback, a log line: it may quote a
    payload) in a form both backends store: a NUL as the four characters `\\x00`, a lone
    surrogate as its backslash escape. Text that needs neither is returned as it is."""
    if "\x00" not in value and value.isascii():
        return value
    value = value.replace("\x00", "\\x00")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value
