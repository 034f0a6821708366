"""The schedules' pages: every stored schedule with its next and last fires and its fires by
outcome (fired, skipped, missed), with pause / resume / trigger buttons and a start-backfill
form; and one backfill's page: its progress and a grid of its logical times coloured by outcome
(corral.web.dashboard.grid), with pause / resume / cancel. Every button is the API's call
(POST /api/v1/schedules/{name}/..., POST /api/v1/backfills, POST /api/v1/backfills/{id}/...).

A schedule belongs to the group its fires' tasks go to (ScheduleInfo.group): a token scoped to
groups sees the schedules of its groups and their backfills only; another's backfill is 404."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from ...errors import TaskNotFound
from ..deps import CorralApp, Viewer
from . import grid
from .render import page

router = APIRouter(include_in_schema=False)

BACKFILLS_SHOWN = 50
"""The latest backfills the schedules page lists."""


@router.get("/schedules")
def schedules(request: Request, principal: Viewer, app: CorralApp) -> Response:
    listed = [
        s for s in app.schedules.list() if s.row.removed_at is None and principal.sees(s.group)
    ]
    names = {s.name for s in listed}
    backfills = [b for b in app.backfills.list() if b.schedule_name in names]
    return page(
        request,
        principal,
        "schedules.html",
        title="Schedules",
        schedules=listed,
        backfills=sorted(backfills, key=lambda b: -b.id)[:BACKFILLS_SHOWN],
        actions="backfill_form.html" if principal.allows("operator") else None,
    )


@router.get("/backfills/{backfill_id}")
def backfill(
    request: Request,
    principal: Viewer,
    app: CorralApp,
    backfill_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
) -> Response:
    row = app.store.backfill_get(backfill_id)
    schedule = app.schedules.get(row.schedule_name) if row is not None else None
    if row is None or schedule is None or not principal.sees(schedule.group):
        raise TaskNotFound(f"no backfill with id {backfill_id}")
    spec = schedule.spec
    times = grid.planned(spec, row)
    fires = app.store.backfill_fires(backfill_id)
    ids = [i for f in fires for i in f.task_ids]
    cells = grid.cells(spec, row, times, fires, app.store.task_states(ids) if ids else {})
    return page(
        request,
        principal,
        "backfill.html",
        title=f"Backfill {backfill_id} of {row.schedule_name}",
        row=row,
        progress=app.backfills.status(backfill_id),
        cells=cells,
        tally=grid.tally(cells),
        shown_all=len(times) >= row.total,
        outcomes=grid.OUTCOMES,
        actions="backfill_actions.html" if principal.allows("operator") else None,
    )
