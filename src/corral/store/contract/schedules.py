"""Schedules in the store contract: the stored schedules, their fires and backfills.

A fire is a row keyed by (schedule, logical time) under a unique constraint, written in the same
transaction as its tasks (`schedule_fire`): a logical time fires at most once, however many
schedulers try, and the schedule's cursor moves in that transaction too, so a leader that dies
mid-tick leaves either the fire and its cursor or neither. The store computes no times: the
next fire, the catch-up and overlap decisions come from corral.schedules, as values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ...model import NewTask, NewWorkflow
from ...retention import PrunePlan

FIRED, SKIPPED, MISSED = "fired", "skipped", "missed"
OUTCOMES = (FIRED, SKIPPED, MISSED)


@dataclass(frozen=True, slots=True)
class ScheduleRow:
    """A stored schedule. `cursor_at`: the logical times up to it are handled (fired, skipped or
    missed); `next_at`: the first one after it, when the clock looks at the schedule again."""

    name: str
    spec: str
    target: str
    options: str
    paused: bool
    removed_at: float | None
    cursor_at: float
    next_at: float
    buffered_at: float | None
    trigger_at: float | None
    fired: int
    skipped: int
    missed: int
    last_logical: float | None
    last_outcome: str | None
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class ScheduleSave:
    """A declared schedule to create or update. `cursor_at` and `next_at` are written for a new
    schedule, for one revived after its removal, or when `reset` says so (its spec changed);
    otherwise the stored ones stay."""

    name: str
    spec: str
    target: str
    options: str
    cursor_at: float
    next_at: float
    reset: bool = False


@dataclass(frozen=True, slots=True)
class Fire:
    """One logical time of a schedule: `fired` with its tasks (or a workflow's), or recorded
    `skipped` / `missed` with its reason. `rerun`: a backfill runs a fire stored already again
    (the row gets the new tasks, its runs counted)."""

    logical_time: float
    data_start: float | None
    kind: str
    outcome: str
    reason: str | None = None
    tasks: Sequence[NewTask] = ()
    workflow: NewWorkflow | None = None
    backfill_id: int | None = None
    rerun: bool = False


@dataclass(frozen=True, slots=True)
class ScheduleMove:
    """How the fires of a batch move the schedule: its cursor (never backwards) and the next
    logical time after it; the fire held by buffer_one (`set_buffered`: write `buffered_at`);
    the trigger request handled (cleared if it is still `trigger_done`)."""

    cursor_at: float | None = None
    next_at: float | None = None
    set_buffered: bool = False
    buffered_at: float | None = None
    trigger_done: float | None = None


@dataclass(frozen=True, slots=True)
class BackfillMove:
    """How a batch of fires moves its backfill: the last logical time made, how many it made,
    and whether that was the last."""

    backfill_id: int
    cursor_at: float
    made: int
    done: bool


@dataclass(frozen=True, slots=True)
class FireBatch:
    """Fires of one schedule, written in one transaction with their tasks and the moves."""

    schedule_name: str
    fires: Sequence[Fire]
    now: float
    move: ScheduleMove | None = None
    backfill: BackfillMove | None = None


@dataclass(frozen=True, slots=True)
class FireResult:
    """What a fire wrote: `created` False when its logical time was stored already (nothing was
    written for it)."""

    logical_time: float
    created: bool
    task_ids: list[int] = field(default_factory=list)
    workflow_id: int | None = None


@dataclass(frozen=True, slots=True)
class FireRow:
    """A stored fire."""

    schedule_name: str
    logical_time: float
    data_start: float | None
    kind: str
    outcome: str
    reason: str | None
    task_ids: list[int]
    workflow_id: int | None
    backfill_id: int | None
    runs: int
    made_at: float


@dataclass(frozen=True, slots=True)
class NewBackfill:
    schedule_name: str
    start_at: float
    end_at: float
    reprocess: str
    forward: bool
    group: str
    total: int
    now: float


@dataclass(frozen=True, slots=True)
class BackfillRow:
    id: int
    schedule_name: str
    start_at: float
    end_at: float
    reprocess: str
    forward: bool
    group: str
    state: str
    cursor_at: float | None
    total: int
    made: int
    created_at: float
    updated_at: float


class ScheduleStore(Protocol):
    def schedule_save(
        self, rows: Sequence[ScheduleSave], removed: Sequence[str], now: float
    ) -> None:
        """Create or update the declared schedules (keeping paused and counters), and mark those
        named in `removed` as removed (they stop firing and keep their history). One
        transaction."""
        ...

    def schedule_list(self, names: Sequence[str] | None = None) -> list[ScheduleRow]:
        """The stored schedules (or those named), removed ones too, by name."""
        ...

    def schedule_due(self, now: float, limit: int) -> list[ScheduleRow]:
        """Up to `limit` schedules not removed whose next fire is due by `now`, earliest first,
        and those with a held (buffered) fire or a trigger request: indexed reads of the due
        and the pending, never a scan of all schedules."""
        ...

    def schedule_set_paused(self, name: str, paused: bool, now: float) -> bool:
        """Pause or resume a schedule; False if there is no such schedule."""
        ...

    def schedule_trigger(self, name: str, now: float) -> bool:
        """Ask for one fire of the schedule now (the clock makes it); False if there is none."""
        ...

    def schedule_fire(self, batch: FireBatch) -> list[FireResult]:
        """In one transaction: each fire's row unless its logical time is stored already (a
        `rerun` replaces the stored one's tasks), the tasks of those written (as
        task_insert_many or workflow_insert would), the schedule's counters and `move`, and
        the backfill's `move`. Returns one result per fire, in order."""
        ...

    def fire_list(self, schedule_name: str, before: float | None, limit: int) -> list[FireRow]:
        """A schedule's fires, latest first, before `before` (None: from the latest)."""
        ...

    def fire_get(self, schedule_name: str, logical_time: float) -> FireRow | None: ...

    def fire_last_run(self, schedule_name: str) -> FireRow | None:
        """The latest fire of the schedule that made tasks (live, triggered or backfilled)."""
        ...

    def backfill_create(self, backfill: NewBackfill) -> int: ...

    def backfill_get(self, backfill_id: int) -> BackfillRow | None: ...

    def backfill_list(self, running_only: bool) -> list[BackfillRow]:
        """Backfills, newest first; `running_only`: those whose fires are still being made."""
        ...

    def backfill_set_state(
        self, backfill_id: int, from_states: Sequence[str], state: str, now: float
    ) -> bool:
        """Move a backfill to `state` if it is in one of `from_states`; False otherwise."""
        ...

    def backfill_fires(self, backfill_id: int) -> list[FireRow]:
        """The fires a backfill made (or ran again), by logical time."""
        ...

    def fire_prune(self, plan: PrunePlan) -> int:
        """Delete up to `plan.batch` fires that corral.retention lets go (made before the
        default cutoff, none of their tasks stored, not the latest fire nor the latest run of
        their schedule, not part of a running or paused backfill), oldest first, then up to
        `plan.batch` backfills that ended before the cutoff with no fire left, in one
        transaction. Returns how many rows went."""
        ...
