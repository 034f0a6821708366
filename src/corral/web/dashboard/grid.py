"""A backfill's grid: one cell per logical time of its range, coloured by outcome (pure).

The planned logical times come from the schedule's spec in the backfill's order
(corral.schedules.backfill_service.logical_times), at most `GRID_MAX` of them; each cell's
outcome is its fire's (corral.schedules.backfills.fire_progress, the rule the status counts
with): `done`, `failed`, `running`, `waiting`; a time the backfill passed without a fire of
its own ran already and was left (`left`); a time it has not reached is `pending`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from ...lifecycle import State
from ...schedules import spec as timing
from ...schedules.backfill_service import logical_times
from ...schedules.backfills import fire_progress
from ...store.contract.schedules import FIRED, BackfillRow, FireRow

GRID_MAX = 2000
"""The most cells a grid shows (a longer backfill shows its first ones, and says so)."""
OUTCOMES = ("done", "failed", "running", "waiting", "left", "pending", "skipped", "missed")


@dataclass(frozen=True)
class Cell:
    logical_time: float
    local: datetime
    outcome: str
    task_ids: tuple[int, ...]


def planned(spec: timing.Spec, row: BackfillRow, limit: int = GRID_MAX) -> list[int]:
    """The backfill's logical times in its order, at most `limit`."""
    return logical_times(spec, row.start_at, row.end_at, row.forward, None, limit)


def cells(
    spec: timing.Spec,
    row: BackfillRow,
    times: Sequence[int],
    fires: Sequence[FireRow],
    states: Mapping[int, State],
) -> list[Cell]:
    """The grid's cells for the `times` planned, from the backfill's fires and their tasks'
    states now."""
    by_time = {f.logical_time: f for f in fires}
    out = []
    for t in times:
        fire = by_time.get(float(t))
        if fire is not None:
            own = [states.get(i) for i in fire.task_ids]
            outcome = fire_progress(own) if fire.outcome == FIRED else fire.outcome
            ids = tuple(fire.task_ids)
        else:
            outcome, ids = ("left" if _passed(row, t) else "pending"), ()
        out.append(Cell(float(t), timing.local_time(spec, t), outcome, ids))
    return out


def tally(grid: Sequence[Cell]) -> dict[str, int]:
    """Cells per outcome, every outcome listed."""
    counts = dict.fromkeys(OUTCOMES, 0)
    for cell in grid:
        counts[cell.outcome] = counts.get(cell.outcome, 0) + 1
    return counts


def _passed(row: BackfillRow, t: int) -> bool:
    """The backfill's cursor is at or beyond `t` in its order."""
    if row.cursor_at is None:
        return False
    return t <= row.cursor_at if row.forward else t >= row.cursor_at
