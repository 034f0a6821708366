"""The backfill maker: the leader service that makes the fires of running backfills.

Each run takes the running backfills (a partial index) and makes the next `BATCH` logical times
of each, forward or backwards, in one transaction per batch: each fire's row (keyed like a live
fire, so a logical time stored already is not made again), its tasks in the backfill's own group,
and the backfill's cursor. A logical time stored already runs again only as `reprocess` says:
`none` never runs one that ran; `failed` runs one whose tasks ended and did not all succeed;
`all` runs one whose tasks ended. A fire recorded missed or skipped never ran: it is run. A fire
whose tasks are still unfinished is never run again. Cost per run: the batch, never the range.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from ..lifecycle import TERMINAL, State
from ..store import Store
from ..store.contract.schedules import (
    FIRED,
    BackfillMove,
    BackfillRow,
    Fire,
    FireBatch,
    FireRow,
)
from . import spec as timing
from .service import Declared

log = logging.getLogger("corral.schedules")

BATCH = 200
"""Logical times a backfill makes per transaction."""


def logical_times(
    spec: timing.Spec,
    start_at: float,
    end_at: float,
    forward: bool,
    after: float | None,
    limit: int,
) -> list[int]:
    """Up to `limit` logical times in [start_at, end_at], in the backfill's order, after the
    cursor `after` (None: from the first)."""
    if forward:
        low = start_at - 1 if after is None else after
        return timing.fires(spec, low, end_at, limit)
    out: list[int] = []
    high = end_at + 1 if after is None else after
    while len(out) < limit:
        when = timing.previous_fire(spec, high)
        if when < start_at:
            break
        out.append(when)
        high = when
    return out


def runs_again(existing: FireRow, states: Mapping[int, State], reprocess: str) -> bool | None:
    """Whether a backfill runs a stored fire again (True), leaves it (False), or must wait for it
    (None: its tasks are unfinished)."""
    if existing.outcome != FIRED:
        return True  # missed or skipped: it never ran
    ended = [states.get(i) for i in existing.task_ids]
    if any(state is not None and state not in TERMINAL for state in ended):
        return None if reprocess != "none" else False
    if reprocess == "all":
        return True
    if reprocess == "failed":
        return any(state is not None and state != State.SUCCEEDED for state in ended)
    return False


class BackfillMaker:
    """The leader service (see the module docstring)."""

    name = "backfills"

    def __init__(
        self, store: Store, declared: Mapping[str, Declared], *, interval: float = 0.25
    ) -> None:
        self.store = store
        self.declared = declared
        self.interval = interval

    def run(self, now: float) -> int:
        done = 0
        for row in self.store.backfill_list(running_only=True):
            decl = self.declared.get(row.schedule_name)
            if decl is not None:
                done += self.step(row, decl, now)
        return done

    def step(self, row: BackfillRow, decl: Declared, now: float) -> int:
        """Make the next batch of one backfill's fires."""
        times = logical_times(
            decl.spec, row.start_at, row.end_at, row.forward, row.cursor_at, BATCH
        )
        if not times:
            move = BackfillMove(row.id, row.cursor_at or row.start_at, 0, done=True)
            self.store.schedule_fire(FireBatch(decl.name, [], now, backfill=move))
            return 0
        fires, handled = [], 0
        for t in times:
            existing = self.store.fire_get(decl.name, t)
            rerun = False
            if existing is not None:
                states = self.store.task_states(existing.task_ids) if existing.task_ids else {}
                again = runs_again(existing, states, row.reprocess)
                if again is None:
                    break  # wait for it: the next run looks again
                if not again:
                    handled += 1
                    continue
                rerun = True
            start = timing.previous_fire(decl.spec, t)
            tasks, workflow = decl.make(t, start, row.group)
            fires.append(Fire(t, start, "backfill", FIRED, None, tasks, workflow, row.id, rerun))
            handled += 1
        if handled == 0:
            return 0
        last = times[handled - 1]
        finished = handled == len(times) and len(times) < BATCH
        move = BackfillMove(row.id, last, handled, done=finished)
        results = self.store.schedule_fire(FireBatch(decl.name, fires, now, backfill=move))
        return sum(r.created for r in results) or handled
