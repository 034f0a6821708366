"""The schedule clock: the leader service that makes the fires of the schedules that are due.

Each run reads the schedules due (an index on their next fire) and those with a held fire or a
trigger request (a partial index): its cost follows the schedules due, never how many there are.
For each, the catch-up rule (corral.schedules.policy) says which due fires run; the older ones
are recorded missed in bounded batches; each fire that runs is checked against the overlap rule
and written with its tasks and the schedule's cursor in one transaction (`schedule_fire`), keyed
by (schedule, logical time): a leader that dies mid-run leaves each fire made or not, never
half, and the next leader carries on from the cursor. However many leaders race, a logical time
fires at most once.

The service makes tasks through the declarations of the process it runs in (`Declared.make`):
a schedule stored but not declared here is left alone (another version of the code may lead).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ..errors import TransitionRefused
from ..lifecycle import TERMINAL
from ..model import NewTask, NewWorkflow
from ..store import Store
from ..store.contract import CancelParams, WorkflowCancelParams
from ..store.contract.schedules import (
    FIRED,
    MISSED,
    SKIPPED,
    Fire,
    FireBatch,
    FireRow,
    ScheduleMove,
    ScheduleRow,
    ScheduleSave,
)
from . import policy as rules
from . import spec as timing

log = logging.getLogger("corral.schedules")

MISSED_BATCH = 500
"""Missed fires recorded per transaction: a long downtime is recorded in bounded steps."""
DUE_BATCH = 200
"""Schedules looked at per run at most (the earliest due first; the rest at the next run)."""

Make = Callable[[int, int, str | None], tuple[list[NewTask], NewWorkflow | None]]
"""Builds a fire's tasks (or workflow) for (logical time, data interval start, the group of a
backfill or None: the schedule's own)."""


@dataclass(frozen=True)
class Declared:
    """A schedule as the code declares it: what the clock needs to fire it."""

    name: str
    spec: timing.Spec
    policy: rules.Policy
    target: str
    spec_json: str
    options_json: str
    make: Make = field(compare=False)
    start: float | None = None
    """The fires start after this moment (default: when the schedule is first synced)."""


@dataclass(frozen=True)
class SyncReport:
    added: list[str]
    changed: list[str]
    removed: list[str]


def sync(
    store: Store, declared: Mapping[str, Declared], now: float, *, remove: bool = True
) -> SyncReport:
    """Write the declared schedules into the store: new ones start at `start` (default now),
    one whose spec changed keeps its cursor, one no longer declared is marked removed (unless
    not `remove`: `declared` is then a part of the code's schedules)."""
    names = None if remove else list(declared)
    stored = {row.name: row for row in store.schedule_list(names)}
    saves, added, changed = [], [], []
    for decl in declared.values():
        old = stored.get(decl.name)
        fresh = old is None or old.removed_at is not None
        reset = not fresh and old is not None and old.spec != decl.spec_json
        cursor = old.cursor_at if (reset and old is not None) else _start(decl, now)
        saves.append(
            ScheduleSave(
                decl.name,
                decl.spec_json,
                decl.target,
                decl.options_json,
                cursor,
                timing.next_fire(decl.spec, cursor),
                reset,
            )
        )
        if fresh:
            added.append(decl.name)
        elif old is not None and (old.options, old.target, old.spec) != (
            decl.options_json,
            decl.target,
            decl.spec_json,
        ):
            changed.append(decl.name)
    removed = sorted(n for n, row in stored.items() if n not in declared and row.removed_at is None)
    if not remove:
        removed = []
    store.schedule_save(saves, removed, now)
    return SyncReport(sorted(added), sorted(changed), removed)


def _start(decl: Declared, now: float) -> float:
    return float(int(now if decl.start is None else decl.start))


def latest_due(spec: timing.Spec, cursor: float, now: float, count: int) -> list[int]:
    """Up to `count` of the latest logical times in (cursor, now], latest first."""
    out: list[int] = []
    when = timing.previous_fire(spec, int(now) + 1)
    while when > cursor and len(out) < count:
        out.append(when)
        when = timing.previous_fire(spec, when)
    return out


class ScheduleClock:
    """The leader service (see the module docstring). `declared`: the schedules of this
    process's code, by name; they are synced into the store at the service's first run."""

    name = "schedules"

    def __init__(
        self, store: Store, declared: Mapping[str, Declared], *, interval: float = 0.25
    ) -> None:
        self.store = store
        self.declared = declared
        self.interval = interval
        self._synced = False
        self._unknown: set[str] = set()
        self.on_fire: Callable[[str, float], None] | None = None
        """Called with (schedule, lateness in seconds) for each live fire this clock makes
        (corral.metrics.schedules observes the lateness with it)."""

    def run(self, now: float) -> int:
        if not self._synced:
            sync(self.store, self.declared, now)
            self._synced = True
        done = 0
        for row in self.store.schedule_due(now, DUE_BATCH):
            decl = self.declared.get(row.name)
            if decl is None:
                if row.name not in self._unknown:
                    self._unknown.add(row.name)
                    log.warning(
                        "schedule %r is stored but not declared in this scheduler's "
                        "code: its fires wait for a scheduler that has it",
                        row.name,
                    )
                continue
            done += self.tick(row, decl, now)
        return done

    def tick(self, row: ScheduleRow, decl: Declared, now: float) -> int:
        """Handle one schedule: its trigger request, its held fire, then its due fires."""
        done = 0
        buffered = row.buffered_at
        if row.trigger_at is not None:
            move = ScheduleMove(trigger_done=row.trigger_at)
            done += self._fire(decl, int(row.trigger_at), now, "trigger", move, buffered)
        if buffered is not None and not row.paused and not self._running(decl.name)[0]:
            move = ScheduleMove(set_buffered=True, buffered_at=None)
            done += self._make(decl, int(buffered), now, "scheduled", move)
            buffered = None
        if row.next_at > now:
            return done
        spec, policy = decl.spec, decl.policy
        latest = latest_due(spec, row.cursor_at, now, rules.how_many(policy))
        ran = rules.runs(policy, latest, now, row.paused)
        until = ran[0] - 1 if ran else now
        missed = timing.fires(spec, row.cursor_at, until, MISSED_BATCH)
        if missed:
            fires = []
            previous = timing.previous_fire(spec, missed[0])
            for t in missed:
                reason = rules.missed_reason(policy, t, now, row.paused, ran, t in latest)
                fires.append(Fire(t, previous, "scheduled", MISSED, reason))
                previous = t
            move = ScheduleMove(missed[-1], timing.next_fire(spec, missed[-1]))
            self.store.schedule_fire(FireBatch(decl.name, fires, now, move))
            done += len(missed)
            if len(missed) == MISSED_BATCH and missed[-1] < until:
                return done  # more to record: the next run goes on
        for t in ran:
            move = ScheduleMove(t, timing.next_fire(spec, t))
            done += self._fire(decl, t, now, "scheduled", move, buffered)
            if decl.policy.overlap == "buffer_one" and buffered is None:
                buffered = self._held(decl.name)
        return done

    def _held(self, name: str) -> float | None:
        rows = self.store.schedule_list([name])
        return rows[0].buffered_at if rows else None

    def _running(self, name: str) -> tuple[bool, FireRow | None]:
        """Whether the schedule's latest run has unfinished tasks, and that run."""
        last = self.store.fire_last_run(name)
        if last is None or not last.task_ids:
            return False, last
        states = self.store.task_states(last.task_ids)
        return any(state not in TERMINAL for state in states.values()), last

    def _fire(
        self,
        decl: Declared,
        logical: int,
        now: float,
        kind: str,
        move: ScheduleMove,
        buffered: float | None,
    ) -> int:
        """One due fire, through the overlap rule."""
        running, last = (False, None)
        if decl.policy.overlap != "allow":
            running, last = self._running(decl.name)
        action = rules.overlap_action(decl.policy, running, buffered is not None)
        if action == "skip" and last is not None:
            start = timing.previous_fire(decl.spec, logical)
            reason = rules.skipped_reason(decl.policy, decl.spec, last.logical_time, buffered)
            fire = Fire(logical, start, kind, SKIPPED, reason)
            self.store.schedule_fire(FireBatch(decl.name, [fire], now, move))
            return 1
        if action == "buffer":
            held = ScheduleMove(move.cursor_at, move.next_at, True, logical, move.trigger_done)
            self.store.schedule_fire(FireBatch(decl.name, [], now, held))
            return 1
        if action == "cancel_previous" and last is not None:
            self._cancel(last, now)
        return self._make(decl, logical, now, kind, move)

    def _make(self, decl: Declared, logical: int, now: float, kind: str, move: ScheduleMove) -> int:
        start = timing.previous_fire(decl.spec, logical)
        tasks, workflow = decl.make(logical, start, None)
        fire = Fire(logical, start, kind, FIRED, None, tasks, workflow)
        made = self.store.schedule_fire(FireBatch(decl.name, [fire], now, move))
        if not made[0].created:
            return 0
        if self.on_fire is not None and kind == "scheduled":
            self.on_fire(decl.name, max(0.0, now - logical))
        return 1

    def _cancel(self, last: FireRow, now: float) -> None:
        """cancel_previous: the previous run's unfinished tasks, through corral's cancellation
        (a running one is interrupted and its on_cancel clean-up runs)."""
        if last.workflow_id is not None:
            self.store.workflow_cancel(WorkflowCancelParams(last.workflow_id, now))
            return
        states = self.store.task_states(last.task_ids)
        for task_id, state in states.items():
            if state in TERMINAL:
                continue
            try:
                self.store.task_cancel(CancelParams(task_id, now))
            except TransitionRefused:  # it ended meanwhile
                continue
