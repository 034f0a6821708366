"""Alerts: the rules this app declares (and their silences), the incidents they opened, the
notices sent, silencing a rule (operator) and resolving an incident by hand (operator). Rules
and channels are declared in code (corral.alerts), so configuring them is a deploy, not a
request. Alerts span every group, so a scoped token can't read or change them (403)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from ...durations import seconds
from ...errors import ConfigError
from ...limits import ID_MAX
from ...store.contract.alerts import IncidentRow, NotificationRow
from ..auth import Principal
from ..deps import CorralApp, Operator, Viewer, record
from ..problems import Problem, renamed
from .params import Limit, PathName

router = APIRouter(tags=["alerts"])

IncidentId = Annotated[int, Path(ge=1, le=ID_MAX, description="The incident's id.")]
MAX_SILENCE = 366 * 86400.0
Before = Annotated[int | None, Query(ge=1, le=ID_MAX, description="Rows before this id.")]


class RuleOut(BaseModel):
    name: str
    kind: str
    channels: list[str]
    task: str | None
    group: str | None
    pool: str | None
    schedule: str | None
    group_by: list[str]
    """The subject labels that split its incidents into notice groups ([]: one group, the rule;
    ["..."]: one per subject)."""
    silenced_until: float | None


class IncidentOut(BaseModel):
    id: int
    rule: str
    subject: str
    state: str
    """pending, firing or resolved."""
    summary: str
    cause: Any
    opened_at: float
    firing_at: float | None
    resolved_at: float | None
    resolved_by: str | None
    notified_at: float | None
    notices: int
    group_key: str
    """Its notice group: "" (the rule's one group), `label=value,...` of the rule's group_by, or
    its subject (group_by ["..."])."""

    @classmethod
    def of(cls, i: IncidentRow) -> IncidentOut:
        return cls(id=i.id, rule=i.rule, subject=i.subject, state=i.state, summary=i.summary,
                   cause=json.loads(i.cause), opened_at=i.opened_at, firing_at=i.firing_at,
                   resolved_at=i.resolved_at, resolved_by=i.resolved_by,
                   notified_at=i.notified_at, notices=i.notices,
                   group_key=i.group_key)  # fmt: skip


class IncidentPageOut(BaseModel):
    incidents: list[IncidentOut]
    next: int | None
    """Pass it back as `before` for the older ones."""


class NotificationOut(BaseModel):
    id: int
    incident_id: int
    rule: str
    channel: str
    transition: str
    state: str
    tries: int
    due_at: float
    last_error: str | None
    created_at: float
    sent_at: float | None
    group_key: str
    """Its incident's notice group: the due notices of one group and channel go as one message."""

    @classmethod
    def of(cls, n: NotificationRow) -> NotificationOut:
        return cls(id=n.id, incident_id=n.incident_id, rule=n.rule, channel=n.channel,
                   transition=n.transition, state=n.state, tries=n.tries, due_at=n.due_at,
                   last_error=n.last_error, created_at=n.created_at,
                   sent_at=n.sent_at, group_key=n.group_key)  # fmt: skip


class SilenceOut(BaseModel):
    rule: str
    until: float


class SilenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    rule: str = Field(min_length=1, max_length=200)
    for_: str = Field(alias="for", min_length=1, max_length=40, examples=["2h", "30m", "1d"])
    """How long: 30m, 2h, 1d, or seconds."""


def _unscoped(principal: Principal) -> None:
    if principal.scope:
        raise Problem(403, "Forbidden", "alerts span every group: a scoped token can't use "
                      "them")  # fmt: skip


@router.get("/alerts/rules", response_model=list[RuleOut])
def list_rules(principal: Viewer, app: CorralApp) -> list[RuleOut]:
    """The rules this app declares, with the end of each one's silence."""
    _unscoped(principal)
    silences = app.store.alert_silences(app.clock.now())
    return [
        RuleOut(name=r.name, kind=r.kind, channels=list(r.channels), task=r.task, group=r.group,
                pool=r.pool, schedule=r.schedule, group_by=list(r.group_by),
                silenced_until=silences.get(r.name))
        for r in sorted(app.alerts.rules.values(), key=lambda r: r.name)
    ]  # fmt: skip


@router.get("/alerts/incidents", response_model=IncidentPageOut)
def list_incidents(
    principal: Viewer,
    app: CorralApp,
    open: Annotated[bool, Query(description="Only the incidents not resolved.")] = False,
    before: Before = None,
    limit: Limit = 50,
) -> IncidentPageOut:
    """Incidents, newest first, a page at a time (or every open one)."""
    _unscoped(principal)
    if open:
        rows = sorted(app.store.alert_open(), key=lambda i: -i.id)
        return IncidentPageOut(incidents=[IncidentOut.of(i) for i in rows], next=None)
    rows = app.store.alert_incidents(before, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return IncidentPageOut(incidents=[IncidentOut.of(i) for i in rows],
                           next=rows[-1].id if more and rows else None)  # fmt: skip


@router.post("/alerts/incidents/{incident_id}/resolve", response_model=IncidentOut)
def resolve_incident(incident_id: IncidentId, principal: Operator, app: CorralApp,
                     request: Request) -> IncidentOut:  # fmt: skip
    """Resolve an open incident by hand (no resolve notice is sent); 409 if it is not open."""
    _unscoped(principal)
    if app.store.alert_incident_get(incident_id) is None:
        raise Problem(404, "Not found", f"no incident with id {incident_id}")
    if not app.alerts.resolve(incident_id, by=principal.actor):
        raise Problem(409, "Conflict", f"incident {incident_id} is not open")
    record(request, principal, "alert.resolve", target=f"incident:{incident_id}", changed=1)
    found = app.store.alert_incident_get(incident_id)
    assert found is not None
    return IncidentOut.of(found)


@router.get("/alerts/notifications", response_model=list[NotificationOut])
def list_notifications(principal: Viewer, app: CorralApp, before: Before = None,
                       limit: Limit = 50) -> list[NotificationOut]:  # fmt: skip
    """The notices sent or due, newest first."""
    _unscoped(principal)
    return [NotificationOut.of(n) for n in app.store.alert_notifications(before, limit)]


@router.get("/alerts/silences", response_model=list[SilenceOut])
def list_silences(principal: Viewer, app: CorralApp) -> list[SilenceOut]:
    """The rules silenced now, and until when."""
    _unscoped(principal)
    found = app.store.alert_silences(app.clock.now())
    return [SilenceOut(rule=r, until=u) for r, u in sorted(found.items())]


@router.post("/alerts/silences", response_model=SilenceOut, status_code=201)
def create_silence(body: SilenceIn, principal: Operator, app: CorralApp, request: Request
                   ) -> SilenceOut:  # fmt: skip
    """Silence a declared rule's notices for a while (its incidents still open and show)."""
    _unscoped(principal)
    try:
        duration = seconds(body.for_, name="for")
    except ConfigError as exc:
        raise Problem(422, "Unprocessable content", str(exc), field="for") from None
    if not 0 < duration <= MAX_SILENCE:
        raise Problem(422, "Unprocessable content", "for: a silence lasts more than 0 seconds "
                      "and at most a year (DELETE the silence to end it)", field="for")  # fmt: skip
    try:
        until = app.alerts.silence(body.rule, duration)
    except ConfigError as exc:
        raise Problem(422, "Unprocessable content", str(exc), field="rule") from None
    record(request, principal, "alert.silence", target=f"rule:{body.rule}", changed=1,
           detail=f"until {until}")  # fmt: skip
    return SilenceOut(rule=body.rule, until=until)


@router.delete("/alerts/silences/{rule}", status_code=204)
def end_silence(rule: PathName, principal: Operator, app: CorralApp, request: Request) -> None:
    """End a rule's silence now; 404 if it is not silenced."""
    _unscoped(principal)
    if rule not in app.store.alert_silences(app.clock.now()):
        raise Problem(404, "Not found", f"rule {rule!r} is not silenced")
    try:
        app.alerts.silence(rule, 0)
    except ConfigError as exc:
        raise renamed(exc, {}) from None
    record(request, principal, "alert.unsilence", target=f"rule:{rule}", changed=1)
