"""The transitions a store performs, decided once for every backend. Pure: no I/O.

A `Move` names one transition: the event kind it writes and the states it moves between. Each is
checked against `lifecycle.ALLOWED` when it is made, so a store can only perform moves that the
table allows. What a transition may do is planned here: which states a cancel ends at once or
only asks to end, which a retry takes back, which event rows a transition writes (SQLite inserts
the rows these functions return; PostgreSQL's one-statement CTEs embed the same literals,
`Move.sql`), the terminal set as SQL, and which id each task of a submitted batch gets (dedup).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from .codec import dumps
from .errors import TransitionRefused
from .failures import end_detail
from .lifecycle import CANCELLABLE_AT_ONCE, HANDLER_RUNS, RETRYABLE, TERMINAL, State, is_allowed
from .model import AttemptReport, NewTask, Submitted

INITIAL: frozenset[State] = frozenset({State.WAITING, State.READY})
"""The states a submitted task starts in."""


class EventRow(NamedTuple):
    """One row of the events table, in its column order (both backends' INSERT_EVENT)."""

    task_id: int
    at: float
    kind: str
    from_state: str | None
    to_state: str | None
    attempt: int
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class Move:
    """A named transition: `source` -> `target` writing an event of `kind`. A `target` of None
    is a request that changes no state (a running task asked to cancel)."""

    kind: str
    source: State
    target: State | None

    def __post_init__(self) -> None:
        if self.target is not None and not is_allowed(self.source, self.target):
            raise ValueError(f"{self.source} -> {self.target} is not in lifecycle.ALLOWED")

    def row(self, task_id: int, attempt: int, at: float, detail: str | None = None) -> EventRow:
        target = None if self.target is None else str(self.target)
        return EventRow(task_id, at, self.kind, str(self.source), target, attempt, detail)

    def rows(self, moved: Iterable[Sequence[int]], at: float) -> list[EventRow]:
        """The event rows of the (task id, attempt) pairs that made this move at `at`."""
        kind, source = self.kind, str(self.source)
        target = None if self.target is None else str(self.target)
        return [EventRow(int(m[0]), at, kind, source, target, int(m[1])) for m in moved]

    @property
    def sql(self) -> str:
        """`kind, from_state, to_state` as SQL literals, for a statement that writes the events
        itself."""
        target = "NULL" if self.target is None else f"'{self.target}'"
        return f"'{self.kind}', '{self.source}', {target}"


def move(source: State, target: State, kind: str | None = None) -> Move:
    """The move `source` -> `target` (its event kind: the target's name); refused unless ALLOWED
    has it. Each allowed move is made once and kept (a completion asks twice a report)."""
    made = _MADE.get((source, target, kind))
    if made is not None:
        return made
    if not is_allowed(source, target):
        raise TransitionRefused(f"a task can't go from {source} to {target}")
    made = _MADE[(source, target, kind)] = Move(kind or str(target), source, target)
    return made


_MADE: dict[tuple[State, State, str | None], Move] = {}
"""The moves `move` made, by its arguments (a Move is immutable; ALLOWED does not change)."""


ADMIT = Move("admitted", State.READY, State.ADMITTED)
CLAIM = Move("running", State.ADMITTED, State.RUNNING)
RELEASE_WAITING = Move("ready", State.WAITING, State.READY)
RELEASE_RETRY = Move("ready", State.RETRY_WAIT, State.READY)
FAIL_UPSTREAM = Move("upstream_failed", State.WAITING, State.UPSTREAM_FAILED)
REQUEST_CANCEL = Move("cancel_requested", State.RUNNING, None)
RETRIED = dumps({"retried": True})
"""The detail of a retry's event."""


def sql_states(states: Iterable[State]) -> str:
    """A SQL list of state literals, in lifecycle order: `('a', 'b')`."""
    wanted = set(states)
    return "(" + ", ".join(f"'{s}'" for s in State if s in wanted) + ")"


TERMINAL_SQL = sql_states(TERMINAL)
ENDED_SQL = "t.finished_at IS NOT NULL"
"""A task of `corral_tasks t` has ended: `finished_at` is set by every move into a terminal state
and cleared by the one move out (retry), so it is not null exactly when the state is terminal.
The indexes over history are partial on it rather than on the state (migration 0015): a change of
state that does not end a task (admit, claim, a retry's wait) then leaves them alone, where a
predicate on `state` made every such update look at each of them."""
CANCELLABLE_AT_ONCE_SQL = sql_states(CANCELLABLE_AT_ONCE)


def submitted(task_id: int, state: str, at: float) -> EventRow:
    """The `submitted` event of a new task, which starts waiting or ready."""
    if State(state) not in INITIAL:
        raise TransitionRefused(f"a task can't start {state}")
    return EventRow(task_id, at, "submitted", None, state, 0)


@dataclass(frozen=True, slots=True)
class CancelPlan:
    """What a cancel does: `after` is cancelled (ended at once) or None (a running task asked to
    stop; its worker interrupts it). `event`: the row to write."""

    before: State
    after: State | None
    event: EventRow


def plan_cancel(task_id: int, state: State, attempt: int, now: float) -> CancelPlan:
    """Cancel a task found `state`: refused if it ended, at once if no handler runs it, else a
    request."""
    if state in TERMINAL:
        raise TransitionRefused(f"task {task_id} already ended: it is {state}")
    if state in CANCELLABLE_AT_ONCE:
        event = move(state, State.CANCELLED).row(task_id, attempt, now)
        return CancelPlan(state, State.CANCELLED, event)
    assert state in HANDLER_RUNS, state
    return CancelPlan(state, None, REQUEST_CANCEL.row(task_id, attempt, now))


def plan_retry(task_id: int, state: State, attempt: int, now: float) -> EventRow:
    """Retry a task found `state`: only the states ALLOWED takes back to ready (RETRYABLE). The
    event row to write."""
    if state not in RETRYABLE:
        names = [str(s) for s in State if s in RETRYABLE]
        raise TransitionRefused(
            f"task {task_id} is {state}: only {', '.join(names[:-1])} or {names[-1]} tasks "
            "can be retried"
        )
    return move(state, State.READY).row(task_id, attempt, now, RETRIED)


def check_completions(reports: Iterable[AttemptReport]) -> None:
    """Every report ends a running attempt in a state ALLOWED has."""
    for report in reports:
        move(State.RUNNING, report.target)


def flag_detail(report: AttemptReport) -> str:
    """The detail of a report's extra event (`stalled`, `suspect`, `quarantined`)."""
    return dumps({"error": report.error, "stalled_slices": report.stalled_slices})


def completion_events(report: AttemptReport, now: float) -> list[EventRow]:
    """The events a recorded report writes: its flag (if any), then its move out of running."""
    events = []
    if report.flag is not None:
        events.append(
            EventRow(report.task_id, now, report.flag, "running", None, report.attempt,
                     flag_detail(report))
        )  # fmt: skip
    detail = end_detail(report.outcome, report.error, report.traceback)
    events.append(move(State.RUNNING, report.target).row(report.task_id, report.attempt, now,
                                                         detail))  # fmt: skip
    return events


def plan_ids(
    tasks: Sequence[NewTask], holders: Mapping[str, int], fresh: Iterator[int]
) -> list[Submitted]:
    """Each task's id in a submitted batch: a dedup key held by an unfinished task (`holders`)
    or by an earlier task of the batch gives that task's id (not created); any other task takes
    the next id of `fresh`."""
    if all(task.dedup_key is None for task in tasks):
        return [Submitted(next(fresh), created=True) for _ in tasks]
    held = dict(holders)
    planned: list[Submitted] = []
    for task in tasks:
        key = task.dedup_key
        if key is not None and key in held:
            planned.append(Submitted(held[key], created=False))
            continue
        task_id = next(fresh)
        if key is not None:
            held[key] = task_id
        planned.append(Submitted(task_id, created=True))
    return planned
