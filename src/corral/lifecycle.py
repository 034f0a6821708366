"""The task lifecycle: the states, the transitions allowed between them, and the rule that decides
where a finished attempt goes. Pure: no I/O. Every store enforces exactly this table."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal


class State(StrEnum):
    WAITING = "waiting"
    READY = "ready"
    ADMITTED = "admitted"
    RUNNING = "running"
    RETRY_WAIT = "retry_wait"
    SUCCEEDED = "succeeded"
    DEAD = "dead"
    CANCELLED = "cancelled"
    UPSTREAM_FAILED = "upstream_failed"


TERMINAL: frozenset[State] = frozenset(
    {State.SUCCEEDED, State.DEAD, State.CANCELLED, State.UPSTREAM_FAILED}
)
ACTIVE: frozenset[State] = frozenset({State.ADMITTED, State.RUNNING})
"""States that hold a slot: they count against a group's cap and a pool's capacity."""

ALLOWED: dict[State, frozenset[State]] = {
    State.WAITING: frozenset({State.READY, State.CANCELLED, State.UPSTREAM_FAILED}),
    State.READY: frozenset({State.ADMITTED, State.CANCELLED}),
    State.ADMITTED: frozenset({State.RUNNING, State.READY, State.CANCELLED}),
    State.RUNNING: frozenset(
        {State.SUCCEEDED, State.RETRY_WAIT, State.DEAD, State.READY, State.CANCELLED}
    ),
    State.RETRY_WAIT: frozenset({State.READY, State.CANCELLED}),
    State.SUCCEEDED: frozenset(),
    State.DEAD: frozenset({State.READY}),
    State.CANCELLED: frozenset({State.READY}),
    State.UPSTREAM_FAILED: frozenset({State.READY}),
}
"""from-state -> the states it may move to. Terminal -> ready is only the manual `retry`."""


HANDLER_RUNS: frozenset[State] = frozenset({State.RUNNING})
"""States in which a handler runs: a cancel is a request its worker carries out."""

CANCELLABLE_AT_ONCE: frozenset[State] = frozenset(
    s for s, targets in ALLOWED.items() if State.CANCELLED in targets and s not in HANDLER_RUNS
)
"""Non-terminal states with no handler running: a cancel ends them in the same transaction."""

RETRYABLE: frozenset[State] = frozenset(s for s in TERMINAL if State.READY in ALLOWED[s])
"""Terminal states that the manual `retry` sends back to ready."""


def is_allowed(source: State, target: State) -> bool:
    return target in ALLOWED[source]


Outcome = Literal[
    "succeeded", "failed", "timed_out", "sliced", "cancelled", "released", "lost", "stalled"
]
"""How an attempt ended, as the worker (or the reaper, for `lost`) saw it. `stalled`: a time
slice ended with the checkpoint unchanged too many slices in a row."""

OnTimeout = Literal["retry", "fail", "continue"]


def counts_as_failure(outcome: Outcome, on_timeout: OnTimeout) -> bool:
    if outcome in ("failed", "lost"):
        return True
    return outcome == "timed_out" and on_timeout == "retry"


def next_state(
    outcome: Outcome, *, failures_before: int, max_retries: int, on_timeout: OnTimeout
) -> State:
    """Where a running task goes when its attempt ends.

    `failures_before` counts the failed attempts before this one. A slice (`on_timeout="continue"`)
    and a release at shutdown are not failures: the task goes straight back to ready.
    """
    if outcome == "succeeded":
        return State.SUCCEEDED
    if outcome == "stalled":
        return State.DEAD
    if outcome == "cancelled":
        return State.CANCELLED
    if outcome in ("sliced", "released"):
        return State.READY
    if outcome == "timed_out" and on_timeout == "continue":
        return State.READY
    if outcome == "timed_out" and on_timeout == "fail":
        return State.DEAD
    retries_left = max_retries - failures_before
    if retries_left <= 0:
        return State.DEAD
    return State.READY if outcome == "lost" else State.RETRY_WAIT


def slice_stall(
    stalled_before: int, checkpoint_changed: bool, *, flag_after: int, fail_after: int | None
) -> tuple[int, bool, bool]:
    """After a time slice: the count of consecutive slices with the checkpoint unchanged, whether
    to flag the task as stalled now (when the count reaches `flag_after`, and again as it fails),
    and whether to fail it (the count reached `fail_after`; None: never)."""
    count = 0 if checkpoint_changed else stalled_before + 1
    fail = fail_after is not None and count >= fail_after
    return count, count == flag_after or fail, fail
