"""Backfills: start one (operator) over a range of a schedule's logical times, list them, one
with its progress and a grid of its logical times by outcome, and pause, resume or cancel it.
A backfill belongs to its schedule's group (corral.web.api.schedules): a scoped token sees and
starts only those of its groups' schedules."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from ...errors import ConfigError
from ...lifecycle import State
from ...limits import ID_MAX
from ...schedules.backfills import BackfillStatus, fire_progress
from ...schedules.declare import options_group
from ...store.contract.schedules import BackfillRow
from ..auth import Principal
from ..deps import CorralApp, Operator, Viewer, record
from ..problems import Problem, renamed
from .schedules import visible as visible_schedule

router = APIRouter(tags=["backfills"])

BackfillId = Annotated[int, Path(ge=1, le=ID_MAX, description="The backfill's id.")]
GRID_MAX = 10_000
"""The most logical times one grid shows."""


class BackfillIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schedule: str = Field(min_length=1, max_length=200)
    start: str = Field(max_length=40, examples=["2026-03-01"])
    """An ISO date (its first second, in the schedule's zone) or datetime."""
    end: str = Field(max_length=40, examples=["2026-03-31"])
    """An ISO date (included whole) or datetime."""
    max_parallel: int | None = Field(default=None, ge=1, le=2**31 - 1)
    weight: float = Field(default=1.0, gt=0)
    reprocess: str = "none"
    """none | failed | all: whether a logical time that ran runs again."""
    order: str = "forward"
    limit: int = Field(default=10_000, ge=1, le=10**7)
    allow_large: bool = False
    dry_run: bool = False


class BackfillMadeOut(BaseModel):
    id: int | None
    """None for a dry run."""
    group: str | None
    total: int
    dry_run: bool
    logical_times: list[str]
    """A dry run's logical times, ISO, in the schedule's zone."""


class BackfillOut(BaseModel):
    id: int
    schedule: str
    state: str
    """running, paused, cancelled or done (every fire made)."""
    start_at: float
    end_at: float
    reprocess: str
    forward: bool
    group: str
    total: int
    made: int
    created_at: float

    @classmethod
    def of(cls, b: BackfillRow) -> BackfillOut:
        return cls(id=b.id, schedule=b.schedule_name, state=b.state, start_at=b.start_at,
                   end_at=b.end_at, reprocess=b.reprocess, forward=b.forward, group=b.group,
                   total=b.total, made=b.made, created_at=b.created_at)  # fmt: skip


class ProgressOut(BaseModel):
    done: int
    failed: int
    running: int
    waiting: int
    skipped: int
    eta_seconds: float | None

    @classmethod
    def of(cls, s: BackfillStatus) -> ProgressOut:
        return cls(done=s.done, failed=s.failed, running=s.running, waiting=s.waiting,
                   skipped=s.skipped, eta_seconds=s.eta)  # fmt: skip


class CellOut(BaseModel):
    logical_time: float
    outcome: str
    """done, failed, running, waiting (where its tasks stand), or the fire's skipped / missed."""
    task_ids: list[int]


class BackfillDetailOut(BaseModel):
    backfill: BackfillOut
    progress: ProgressOut
    grid: list[CellOut]
    """Its fires made so far, by logical time."""


class BackfillActionOut(BaseModel):
    id: int
    state: str
    cancelled_tasks: int = 0


def visible(app: CorralApp, principal: Principal, backfill_id: int) -> BackfillRow:
    row = app.store.backfill_get(backfill_id)
    if row is None:
        raise Problem(404, "Not found", f"no backfill with id {backfill_id}")
    try:
        visible_schedule(app, principal, row.schedule_name)
    except Problem:
        raise Problem(404, "Not found", f"no backfill with id {backfill_id}") from None
    return row


@router.post("/backfills", response_model=BackfillMadeOut, status_code=201)
def start_backfill(body: BackfillIn, principal: Operator, app: CorralApp, request: Request
                   ) -> BackfillMadeOut:  # fmt: skip
    """Run the schedule for every logical time in [start, end]; `dry_run` lists them."""
    declared = app.schedules.declared.get(body.schedule)
    if declared is not None and not principal.sees(options_group(declared.options_json)):
        raise Problem(404, "Not found", f"no schedule named {body.schedule!r}")
    try:
        made = app.backfill(
            body.schedule, start=body.start, end=body.end, max_parallel=body.max_parallel,
            weight=body.weight, reprocess=body.reprocess, order=body.order, limit=body.limit,
            allow_large=body.allow_large, dry_run=body.dry_run,
        )  # fmt: skip
    except ConfigError as exc:
        raise renamed(exc, {"backfill": "schedule"}) from None
    if not made.dry_run:
        record(request, principal, "backfill.start", target=f"backfill:{made.id}",
               changed=made.total, detail=body.model_dump_json())  # fmt: skip
    return BackfillMadeOut(
        id=None if made.dry_run else made.id, group=None if made.dry_run else made.group,
        total=made.total, dry_run=made.dry_run,
        logical_times=[t.isoformat() for t in made.logical_times],
    )  # fmt: skip


@router.get("/backfills", response_model=list[BackfillOut])
def list_backfills(principal: Viewer, app: CorralApp) -> list[BackfillOut]:
    """Every stored backfill, newest first."""
    seen: dict[str, bool] = {}
    out = []
    for row in sorted(app.backfills.list(), key=lambda b: -b.id):
        if row.schedule_name not in seen:
            try:
                visible_schedule(app, principal, row.schedule_name)
                seen[row.schedule_name] = True
            except Problem:
                seen[row.schedule_name] = False
        if seen[row.schedule_name]:
            out.append(BackfillOut.of(row))
    return out


@router.get("/backfills/{backfill_id}", response_model=BackfillDetailOut)
def get_backfill(backfill_id: BackfillId, principal: Viewer, app: CorralApp
                 ) -> BackfillDetailOut:  # fmt: skip
    """A backfill, its progress, and the grid of its logical times by outcome."""
    row = visible(app, principal, backfill_id)
    fires = sorted(app.store.backfill_fires(backfill_id), key=lambda f: f.logical_time)
    fires = fires[:GRID_MAX]
    ids = [i for f in fires for i in f.task_ids]
    states = app.store.task_states(ids) if ids else {}
    grid = [
        CellOut(logical_time=f.logical_time, task_ids=f.task_ids,
                outcome=_outcome(f.outcome, [states.get(i) for i in f.task_ids]))
        for f in fires
    ]  # fmt: skip
    return BackfillDetailOut(backfill=BackfillOut.of(row),
                             progress=ProgressOut.of(app.backfills.status(backfill_id)),
                             grid=grid)  # fmt: skip


def _outcome(fire_outcome: str, states: list[State | None]) -> str:
    """A cell's outcome: a fire skipped or missed says so; a made one, where its tasks stand
    (corral.schedules.backfills.fire_progress: done, failed, running, waiting)."""
    return fire_outcome if fire_outcome != "fired" else fire_progress(states)


def _move(app: CorralApp, principal: Principal, request: Request, backfill_id: int, verb: str
          ) -> BackfillActionOut:  # fmt: skip
    visible(app, principal, backfill_id)
    cancelled = 0
    try:
        if verb == "pause":
            app.backfills.pause(backfill_id)
        elif verb == "resume":
            app.backfills.resume(backfill_id)
        else:
            cancelled = app.backfills.cancel(backfill_id)
    except ConfigError as exc:
        raise Problem(409, "Conflict", str(exc)) from None
    record(request, principal, f"backfill.{verb}", target=f"backfill:{backfill_id}",
           changed=max(1, cancelled))  # fmt: skip
    state = app.backfills.get(backfill_id).state
    return BackfillActionOut(id=backfill_id, state=state, cancelled_tasks=cancelled)


@router.post("/backfills/{backfill_id}/pause", response_model=BackfillActionOut)
def pause_backfill(backfill_id: BackfillId, principal: Operator, app: CorralApp,
                   request: Request) -> BackfillActionOut:  # fmt: skip
    """Stop making its fires; those made run on. 409 unless it is running."""
    return _move(app, principal, request, backfill_id, "pause")


@router.post("/backfills/{backfill_id}/resume", response_model=BackfillActionOut)
def resume_backfill(backfill_id: BackfillId, principal: Operator, app: CorralApp,
                    request: Request) -> BackfillActionOut:  # fmt: skip
    """Make its fires again. 409 unless it is paused."""
    return _move(app, principal, request, backfill_id, "resume")


@router.post("/backfills/{backfill_id}/cancel", response_model=BackfillActionOut)
def cancel_backfill(backfill_id: BackfillId, principal: Operator, app: CorralApp,
                    request: Request) -> BackfillActionOut:  # fmt: skip
    """Stop it and cancel its unfinished tasks. 409 if it was cancelled already."""
    return _move(app, principal, request, backfill_id, "cancel")
