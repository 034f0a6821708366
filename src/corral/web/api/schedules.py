"""Schedules: the stored ones with their counters and next fire, one with its recent fires, and
pause, resume and trigger (operator). A schedule belongs to the group its tasks go to: a scoped
token sees only the schedules of its groups (another is 404, as if it did not exist)."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from ...schedules.declare import ScheduleInfo
from ...store.contract.schedules import FireRow
from ..auth import Principal
from ..deps import CorralApp, Operator, Viewer, record
from ..problems import Problem
from .params import PathName, Time

router = APIRouter(tags=["schedules"])


class ScheduleOut(BaseModel):
    name: str
    target: str
    """The task type, or `workflow:<builder>`."""
    spec: dict[str, object]
    """{"cron", "tz"} or {"every", "anchor", "tz"}."""
    group: str
    paused: bool
    removed: bool
    """No longer declared in the code: it fires no more."""
    declared: bool
    """Whether this web process's app declares it."""
    next_fire: str | None
    """ISO time in the schedule's zone."""
    next_at: float | None
    last_fire: str | None
    last_outcome: str | None
    fired: int
    skipped: int
    missed: int

    @classmethod
    def of(cls, info: ScheduleInfo) -> ScheduleOut:
        row = info.row
        nxt, last = info.next_fire, info.last_fire
        return cls(
            name=row.name, target=row.target, spec=json.loads(row.spec), group=info.group,
            paused=row.paused, removed=row.removed_at is not None, declared=info.declared,
            next_fire=None if nxt is None else nxt.isoformat(),
            next_at=None if row.removed_at is not None else row.next_at,
            last_fire=None if last is None else last.isoformat(), last_outcome=row.last_outcome,
            fired=row.fired, skipped=row.skipped, missed=row.missed,
        )  # fmt: skip


class FireOut(BaseModel):
    logical_time: float
    kind: str
    """scheduled, trigger or backfill."""
    outcome: str
    """fired, skipped or missed."""
    reason: str | None
    task_ids: list[int]
    workflow_id: int | None
    backfill_id: int | None
    runs: int
    made_at: float

    @classmethod
    def of(cls, f: FireRow) -> FireOut:
        return cls(logical_time=f.logical_time, kind=f.kind, outcome=f.outcome, reason=f.reason,
                   task_ids=f.task_ids, workflow_id=f.workflow_id, backfill_id=f.backfill_id,
                   runs=f.runs, made_at=f.made_at)  # fmt: skip


class ScheduleDetailOut(BaseModel):
    schedule: ScheduleOut
    fires: list[FireOut]
    """The latest fires, latest first."""


class ScheduleActionOut(BaseModel):
    name: str
    paused: bool
    trigger_pending: bool
    """A trigger asked for and not yet fired by the leader."""


def visible(app: CorralApp, principal: Principal, name: str) -> ScheduleInfo:
    """The stored schedule if the principal sees its group; 404 otherwise."""
    if not app.store.schedule_list([name]):
        raise Problem(404, "Not found", f"no schedule named {name!r}")
    info = app.schedules.get(name)
    if not principal.sees(info.group):
        raise Problem(404, "Not found", f"no schedule named {name!r}")
    return info


@router.get("/schedules", response_model=list[ScheduleOut])
def list_schedules(principal: Viewer, app: CorralApp) -> list[ScheduleOut]:
    """Every stored schedule, by name."""
    found = [i for i in app.schedules.list() if principal.sees(i.group)]
    return [ScheduleOut.of(i) for i in sorted(found, key=lambda i: i.name)]


@router.get("/schedules/{name}", response_model=ScheduleDetailOut)
def get_schedule(
    name: PathName,
    principal: Viewer,
    app: CorralApp,
    fires: Annotated[int, Query(ge=1, le=1000, description="How many recent fires.")] = 20,
    before: Time = None,
) -> ScheduleDetailOut:
    """One schedule and its latest fires."""
    info = visible(app, principal, name)
    rows = app.schedules.fires(name, fires, before)
    return ScheduleDetailOut(schedule=ScheduleOut.of(info), fires=[FireOut.of(f) for f in rows])


def _action(app: CorralApp, name: str) -> ScheduleActionOut:
    row = app.schedules.get(name).row
    return ScheduleActionOut(name=name, paused=row.paused, trigger_pending=row.trigger_at
                             is not None)  # fmt: skip


@router.post("/schedules/{name}/pause", response_model=ScheduleActionOut)
def pause_schedule(name: PathName, principal: Operator, app: CorralApp, request: Request
                   ) -> ScheduleActionOut:  # fmt: skip
    """Stop firing; the fires due while paused are recorded missed."""
    visible(app, principal, name)
    app.schedules.pause(name)
    record(request, principal, "schedule.pause", target=f"schedule:{name}", changed=1)
    return _action(app, name)


@router.post("/schedules/{name}/resume", response_model=ScheduleActionOut)
def resume_schedule(name: PathName, principal: Operator, app: CorralApp, request: Request
                    ) -> ScheduleActionOut:  # fmt: skip
    visible(app, principal, name)
    app.schedules.resume(name)
    record(request, principal, "schedule.resume", target=f"schedule:{name}", changed=1)
    return _action(app, name)


@router.post("/schedules/{name}/trigger", response_model=ScheduleActionOut, status_code=202)
def trigger_schedule(name: PathName, principal: Operator, app: CorralApp, request: Request
                     ) -> ScheduleActionOut:  # fmt: skip
    """Fire once now: the leader makes the fire within a second (its overlap rule applies)."""
    info = visible(app, principal, name)
    if info.row.removed_at is not None:
        raise Problem(409, "Conflict", f"schedule {name!r} was removed from the code: it can't "
                      "fire")  # fmt: skip
    app.schedules.trigger(name)
    record(request, principal, "schedule.trigger", target=f"schedule:{name}", changed=1)
    return _action(app, name)
