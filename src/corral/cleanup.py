"""Clean-ups of client resources after an attempt ended badly: the rules. Pure: no I/O.

A task type's `on_cleanup(ctx, reason)` releases what a failed attempt started outside corral (a
warehouse query, a cloud job, a lock), from what the attempt recorded in `ctx.shared`. It runs
after every bad end of an attempt, wherever the end is noticed:

- the worker that ran the attempt reports an error, a timeout (`on_timeout` "retry" or "fail"),
  a cancel or a stalled slice; the reaper records a lost attempt (its worker crashed, was killed
  or cut off) once its lease expired;
- the transaction that records that end writes a clean-up row (task, attempt, reason, the
  attempt's last `shared`), so no crash can lose it; a task that goes to retry_wait is *held*
  there (its run_at NULL, which the release's index never reaches) and a lost task that would
  go back to ready goes to retry_wait, held, instead;
- a worker that has the task type registered claims the row under a lease (so two workers never
  run it at once), runs the clean-up within its time limit, and records the end: succeeded, or a
  failure retried with backoff up to `cleanup_retries` times, then `failed` with its error (a
  `cleanup_failed` event). Either end releases the held task: its next attempt starts only then.

A task type without a clean-up writes no row and runs no extra statement: its reports carry no
reason. A slice (`on_timeout="continue"`), a success and a release at shutdown are no bad ends.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from . import limits
from .backoff import Backoff
from .durations import Duration, seconds
from .errors import ConfigError
from .lifecycle import Outcome, State

Reason = Literal["error", "timeout", "cancelled", "lost", "stalled"]
REASONS: dict[Outcome, Reason] = {
    "failed": "error",
    "timed_out": "timeout",
    "cancelled": "cancelled",
    "lost": "lost",
    "stalled": "stalled",
}
"""How an attempt ended -> the reason its clean-up is given (the others need none)."""

CleanupState = Literal["pending", "running", "succeeded", "failed"]
CLEANUP_TIMEOUT = 60.0
"""Default: seconds a clean-up may run before its try counts as failed."""
CLEANUP_RETRIES = 5
"""Default: failed tries retried before the clean-up is recorded as failed."""
CLEANUP_BACKOFF = Backoff(base=1.0, factor=2.0, cap=60.0, jitter=0.5)
"""Default: the delay before each retry of a failed clean-up."""
SUCCEEDED_EVENT = "cleanup_succeeded"
FAILED_EVENT = "cleanup_failed"


@dataclass(frozen=True)
class CleanupSpec:
    """A task type's clean-up: `fn(ctx, reason)`, its time limit per try, how many failed tries
    are retried, and the backoff between them."""

    fn: Callable[..., Any]
    timeout: float = CLEANUP_TIMEOUT
    retries: int = CLEANUP_RETRIES
    backoff: Backoff = CLEANUP_BACKOFF


def check_spec(
    task_name: str,
    fn: Any,
    *,
    on_cancel: Any = None,
    timeout: Duration = CLEANUP_TIMEOUT,
    retries: int = CLEANUP_RETRIES,
    backoff: Backoff | None = None,
) -> CleanupSpec | None:
    """A task type's clean-up options checked (ConfigError names the field); None without one."""
    if fn is None:
        return None
    if not callable(fn):
        raise ConfigError(f"task {task_name!r}: on_cleanup must be a function, got {fn!r}")
    if on_cancel is not None:
        raise ConfigError(
            f"task {task_name!r}: give on_cleanup or on_cancel, not both (on_cleanup is called "
            "with reason 'cancelled' after a cancel)"
        )
    limit = seconds(timeout, name="cleanup_timeout")
    if not 0 < limit <= limits.MAX_SECONDS:
        raise ConfigError(f"cleanup_timeout must be > 0 seconds, got {timeout!r}")
    if backoff is not None and not isinstance(backoff, Backoff):
        raise ConfigError(f"cleanup_backoff must be a corral.Backoff, got {backoff!r}")
    tries = limits.whole("cleanup_retries", retries, 0, 1000)
    return CleanupSpec(fn, limit, tries, backoff or CLEANUP_BACKOFF)


def reason_for(outcome: Outcome) -> Reason | None:
    """The clean-up reason of an attempt that ended with `outcome`; None: it ended well (or was
    a slice, or released at shutdown)."""
    return REASONS.get(outcome)


def held_target(target: State) -> State:
    """Where an attempt that leaves a clean-up goes: a lost task due back in ready waits in
    retry_wait instead (held until the clean-up ended); any other target is kept."""
    return State.RETRY_WAIT if target == State.READY else target


@dataclass(frozen=True)
class TryEnd:
    """What a try of a clean-up leaves: its new state and, for a retry, when it is next due."""

    state: CleanupState
    next_try_at: float | None = None


def after_try(*, ok: bool, tries: int, retries: int, delay: float, now: float) -> TryEnd:
    """The end of try number `tries` (1-based): succeeded; failed once `retries` retries are
    spent; otherwise pending again `delay` seconds from `now` (the backoff's for retry `tries`)."""
    if ok:
        return TryEnd("succeeded")
    if tries > retries:
        return TryEnd("failed")
    return TryEnd("pending", now + delay)
