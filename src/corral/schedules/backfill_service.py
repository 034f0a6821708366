"""The backfill maker: the leader service that makes the fires of running backfills.

Each run takes the running backfills (a partial index) and makes the next logical times of each,
forward or backwards, in one transaction per batch: each fire's row (keyed like a live fire, so a
logical time stored already is not made again), its tasks in the backfill's own group, and the
backfill's cursor. It keeps only a window of a backfill's fires unfinished (twice its cap, or
`WINDOW`): fires are made as the workers take them, so a backfill of 10,000 never floods the
queue, and the leader's round (which dispatches live work too) stays short. It paces itself by
what its runs cost (`DUTY`): as fast as the workers take the fires while that stays a quarter of
the leader's time, so its throughput follows the idle capacity and the database, not a rate.

A logical time stored already runs again only as `reprocess` says: `none` never runs one that
ran; `failed` runs one whose tasks ended and did not all succeed; `all` runs one whose tasks
ended. A fire recorded missed or skipped never ran: it is run. A fire whose tasks are still
unfinished is never run again. Cost per run: the window, never the range.
"""

from __future__ import annotations

import logging
import time
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

BATCH = 16
"""Logical times a backfill makes per transaction at most: short writes, so the claims, reports
and dispatch of live work never queue long behind one (200 raised the live small pipelines'
wait several times; 16 leaves it at a live group's, BENCHMARKS.md)."""
WINDOW = 64
"""Unfinished fires a backfill without a cap keeps ahead of its workers (with a cap: twice it)."""
DUTY = 0.25
"""The share of the leader's time the maker takes while a backfill runs: after a run that took
`spent` seconds it rests `spent * (1 - DUTY) / DUTY` (a run that makes no fire at least doubles
its rest, up to the service's interval). Its pace follows what its writes cost on this database
under this load, and the capacity the workers give it (the window), never a fixed rate."""
FASTEST = 0.005
"""The shortest rest between two runs (seconds)."""


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
        self.longest = interval
        """The rest when no backfill runs, and the longest rest while one does."""
        self.interval = interval
        """The rest before the next run (the scheduler reads it): see DUTY."""
        self._ahead: dict[int, list[int]] = {}
        """Per backfill, the tasks this leader made that may be unfinished (a new leader starts
        with none: it makes at most one window more)."""

    def run(self, now: float) -> int:
        began = time.perf_counter()
        done, running = 0, False
        for row in self.store.backfill_list(running_only=True):
            decl = self.declared.get(row.schedule_name)
            if decl is not None:
                running = True
                done += self.step(row, decl, now)
        self.interval = self._rest(time.perf_counter() - began, running, done > 0)
        return done

    def _rest(self, spent: float, running: bool, made: bool) -> float:
        """How long to rest after a run that took `spent` (see DUTY)."""
        if not running:
            return self.longest
        paced = max(FASTEST, spent * (1 - DUTY) / DUTY)
        if not made:  # the window is full: look again later, and later
            paced = max(paced, 2 * min(self.interval, self.longest))
        return min(paced, self.longest)

    def _room(self, row: BackfillRow) -> int:
        """How many more fires the backfill may have unfinished now."""
        ahead = self._ahead.get(row.id, [])
        if ahead:
            states = self.store.task_states(ahead)
            ahead = [i for i in ahead if i in states and states[i] not in TERMINAL]
            self._ahead[row.id] = ahead
        config = self.store.group_get(row.group)
        cap = None if config is None else config.max_parallel
        window = WINDOW if cap is None else max(2 * cap, 4)
        return min(BATCH, window - len(ahead))

    def step(self, row: BackfillRow, decl: Declared, now: float) -> int:
        """Make the next batch of one backfill's fires, as far as its window has room."""
        room = self._room(row)
        if room <= 0:
            return 0
        times = logical_times(decl.spec, row.start_at, row.end_at, row.forward, row.cursor_at, room)
        if not times:
            move = BackfillMove(row.id, row.cursor_at or row.start_at, 0, done=True)
            self.store.schedule_fire(FireBatch(decl.name, [], now, backfill=move))
            return 0
        fires, handled = [], 0
        stored = self.store.fire_list(decl.name, max(times) + 1, len(times))
        found = {int(f.logical_time): f for f in stored if f.logical_time >= min(times)}
        ids = [i for f in found.values() for i in f.task_ids]
        states = self.store.task_states(ids) if ids else {}
        for t in times:
            existing = found.get(t)
            rerun = False
            if existing is not None:
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
        finished = handled == len(times) and len(times) < room
        move = BackfillMove(row.id, last, handled, done=finished)
        results = self.store.schedule_fire(FireBatch(decl.name, fires, now, backfill=move))
        self._ahead.setdefault(row.id, []).extend(i for r in results for i in r.task_ids)
        return sum(r.created for r in results) or handled
