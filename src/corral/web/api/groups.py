"""Groups and rate limits: each group's figures (entitled share against actual share, cap and
cap use, ready and running, recent waits: the fairness of the scheduler made visible), its
settings (admin), and the named rate limits task types draw on (admin to change).

A scoped token sees only its groups (a group outside them is 404). Named rate limits are
shared by every group, so only an unscoped admin changes them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from ...errors import ConfigError
from ...limits import MAX_NAME
from ...model import GroupConfig
from ...ratelimit import RateLimit
from ...read_model import GroupFigures, Waits
from ...readside import busiest
from ...store.contract import PausedGroup
from ..auth import Principal
from ..deps import Admin, CorralApp, Operator, Reads, Viewer, record
from ..problems import TITLES, Problem, field_of
from .params import NO_NUL, PathName

router = APIRouter(tags=["groups"])


class WaitsOut(BaseModel):
    started: int
    """Tasks that first started in the window."""
    mean: float | None
    p95: float | None
    max: float | None

    @classmethod
    def of(cls, w: Waits) -> WaitsOut:
        return cls(started=w.started, mean=w.mean, p95=w.p95, max=w.max)


class PausedOut(BaseModel):
    name: str
    at: float
    by: str
    """Who paused it: `cli:<user>` or `web:<token name>`."""
    reason: str | None

    @classmethod
    def of(cls, p: PausedGroup) -> PausedOut:
        return cls(name=p.name, at=p.paused_at, by=p.paused_by, reason=p.reason)


class PauseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=1000, pattern=NO_NUL)


class GroupOut(BaseModel):
    name: str
    counts: dict[str, int]
    """Unfinished tasks by state."""
    ready: int
    running: int
    active: int
    """Admitted or running: the slots it holds."""
    max_parallel: int | None
    """Its cap (None: none)."""
    cap_use: float | None
    """active / max_parallel."""
    weight: float
    rate_limit: str | None
    entitled_share: float
    """Its weight over the weights of the groups with work."""
    actual_share: float
    """Its fraction of the slots held now across all groups."""
    waits: WaitsOut
    """Queue waits of the tasks that first started in the recent window."""
    paused: PausedOut | None = None
    """Set while an operator holds the group's admissions (`PUT /paused-groups/{name}`)."""

    @classmethod
    def of(cls, g: GroupFigures, paused: dict[str, PausedGroup] | None = None) -> GroupOut:
        cap = g.max_parallel
        pause = (paused or {}).get(g.group)
        return cls(
            name=g.group, counts=g.counts, ready=g.ready, running=g.counts.get("running", 0),
            active=g.active, max_parallel=cap, cap_use=None if not cap else g.active / cap,
            weight=g.weight, rate_limit=g.rate_limit, entitled_share=g.fair_share,
            actual_share=g.share, waits=WaitsOut.of(g.waits),
            paused=None if pause is None else PausedOut.of(pause),
        )  # fmt: skip


class GroupIn(BaseModel):
    """A group's settings; every one left out takes its default (the group's settings are
    replaced as a whole, as `app.groups.configure` does)."""

    model_config = ConfigDict(extra="forbid")

    max_parallel: int | None = Field(default=None, ge=1, le=2**31 - 1)
    weight: float = Field(default=1.0, gt=0)
    rate_limit: str | None = Field(default=None, max_length=100, examples=["100/minute"])
    burst: float | None = Field(default=None, gt=0)


class RateLimitOut(BaseModel):
    key: str
    rate_limit: str
    per_second: float
    burst: float

    @classmethod
    def of(cls, key: str, r: RateLimit) -> RateLimitOut:
        return cls(key=key, rate_limit=r.spec, per_second=r.per_second, burst=r.burst)


class RateLimitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rate_limit: str = Field(min_length=1, max_length=100, examples=["100/minute"])
    burst: float | None = Field(default=None, gt=0)


@router.get("/groups", response_model=list[GroupOut])
def list_groups(
    principal: Viewer,
    reads: Reads,
    app: CorralApp,
    name: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=MAX_NAME,
            pattern=NO_NUL,
            description="Only groups whose name contains this.",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many groups.")] = 100,
) -> list[GroupOut]:
    """The busiest groups first (the most ready tasks, then the most held, then by name), of
    those with unfinished tasks, settings, or recent starts: at most `limit`, so the answer stays
    small whatever the number of groups (`name` finds the others)."""
    paused = _paused(app)
    if name is None and not principal.scope:  # the bounded read: its cost follows `limit`
        return [GroupOut.of(g, paused) for g in reads.busiest_groups(limit)]
    seen = (g for g in reads.groups() if principal.sees(g.group))
    matching = [g for g in seen if name in g.group] if name else seen
    return [GroupOut.of(g, paused) for g in busiest(matching)[:limit]]


def _paused(app: CorralApp) -> dict[str, PausedGroup]:
    return {p.name: p for p in app.groups.paused()}


def _figures(reads: Reads, app: CorralApp, principal: Principal, name: str) -> GroupOut:
    if not principal.sees(name):
        raise Problem(404, "Not found", f"no group named {name!r}")
    paused = _paused(app)
    for g in reads.groups():
        if g.group == name:
            return GroupOut.of(g, paused)
    config = app.groups.get(name)  # no work and no settings of its own: the defaults
    return GroupOut.of(
        GroupFigures(name, {}, config.max_parallel, config.weight, _spec(config), 0.0, 0.0,
                     Waits(0, None, None, None)), paused
    )  # fmt: skip


@router.get("/paused-groups", response_model=list[PausedOut])
def list_paused_groups(principal: Viewer, app: CorralApp) -> list[PausedOut]:
    """The paused groups (of the token's scope), by name."""
    return [PausedOut.of(p) for p in app.groups.paused() if principal.sees(p.name)]


@router.put("/paused-groups/{name:path}", response_model=PausedOut)
def pause_group(name: PathName, principal: Operator, app: CorralApp, request: Request,
                body: PauseIn | None = None) -> PausedOut:  # fmt: skip
    """Pause a group: none of its tasks is admitted until the pause is deleted (what runs
    finishes; its alert rules are muted). Putting a pause that exists changes nothing (the first
    pause's author and reason stay)."""
    if not principal.sees(name):
        raise Problem(404, "Not found", f"no group named {name!r}")
    body = body or PauseIn()
    try:
        changed = app.groups.pause(name, by=f"web:{principal.name}", reason=body.reason)
    except ConfigError as exc:
        raise _invalid(exc, "name") from None
    record(request, principal, "group.pause", target=f"group:{name}", changed=int(changed),
           detail=body.model_dump_json())  # fmt: skip
    pause = next((p for p in app.groups.paused() if p.name == name), None)
    if pause is None:  # resumed by someone else between the two calls
        raise Problem(409, TITLES[409], f"group {name!r} was resumed meanwhile")
    return PausedOut.of(pause)


@router.delete("/paused-groups/{name:path}", status_code=204)
def resume_group(name: PathName, principal: Operator, app: CorralApp, request: Request) -> None:
    """Resume a paused group: its tasks are admitted again from the scheduler's next round; 404
    if it is not paused."""
    if not principal.sees(name):
        raise Problem(404, "Not found", f"no group named {name!r}")
    try:
        resumed = app.groups.resume(name)
    except ConfigError as exc:
        raise _invalid(exc, "name") from None
    if not resumed:
        raise Problem(404, "Not found", f"group {name!r} is not paused")
    record(request, principal, "group.resume", target=f"group:{name}", changed=1)


@router.get("/groups/{name:path}", response_model=GroupOut)
def get_group(name: PathName, principal: Viewer, app: CorralApp, reads: Reads) -> GroupOut:
    """One group's figures (a group never seen shows the defaults and no work)."""
    return _figures(reads, app, principal, name)


@router.put("/groups/{name:path}", response_model=GroupOut)
def configure_group(name: PathName, body: GroupIn, principal: Admin, app: CorralApp, reads: Reads,
                    request: Request) -> GroupOut:  # fmt: skip
    """Set a group's cap, weight and rate limit; the scheduler applies them at its next round."""
    if not principal.sees(name):
        raise Problem(404, "Not found", f"no group named {name!r}")
    try:
        app.groups.configure(name, max_parallel=body.max_parallel, weight=body.weight,
                             rate_limit=body.rate_limit, burst=body.burst)  # fmt: skip
    except ConfigError as exc:
        raise _invalid(exc, "rate_limit" if body.rate_limit else "name") from None
    record(request, principal, "group.configure", target=f"group:{name}", changed=1,
           detail=body.model_dump_json())  # fmt: skip
    return _figures(reads, app, principal, name)


@router.get("/rate-limits", response_model=list[RateLimitOut])
def list_rate_limits(principal: Viewer, app: CorralApp) -> list[RateLimitOut]:
    """The named rate limits, by key."""
    return [RateLimitOut.of(k, r) for k, r in sorted(app.rate_limits.list().items())]


@router.get("/rate-limits/{key}", response_model=RateLimitOut)
def get_rate_limit(key: PathName, principal: Viewer, app: CorralApp) -> RateLimitOut:
    found = app.rate_limits.list().get(key)
    if found is None:
        raise Problem(404, "Not found", f"no rate limit named {key!r}")
    return RateLimitOut.of(key, found)


def _unscoped(principal: Principal) -> None:
    if principal.scope:
        raise Problem(403, "Forbidden", "a named rate limit is shared by every group: only an "
                      "unscoped admin token changes it")  # fmt: skip


@router.put("/rate-limits/{key}", response_model=RateLimitOut)
def set_rate_limit(key: PathName, body: RateLimitIn, principal: Admin, app: CorralApp,
                   request: Request) -> RateLimitOut:  # fmt: skip
    """Create or change a named rate limit ("100/minute", `burst` tokens at once)."""
    _unscoped(principal)
    try:
        app.rate_limits.configure(key, body.rate_limit, burst=body.burst)
    except ConfigError as exc:
        raise _invalid(exc, "rate_limit") from None
    record(request, principal, "rate_limit.configure", target=f"rate_limit:{key}", changed=1,
           detail=body.model_dump_json())  # fmt: skip
    return get_rate_limit(key, principal, app)


@router.delete("/rate-limits/{key}", status_code=204)
def delete_rate_limit(key: PathName, principal: Admin, app: CorralApp, request: Request) -> None:
    """Remove a named rate limit; 404 if there is none."""
    _unscoped(principal)
    get_rate_limit(key, principal, app)
    app.rate_limits.remove(key)
    record(request, principal, "rate_limit.remove", target=f"rate_limit:{key}", changed=1)


def _invalid(exc: ConfigError, fallback: str) -> Problem:
    """A 422 naming the field the message starts with, else `fallback` (a bad rate limit's
    message quotes the value, not the field)."""
    return Problem(422, TITLES[422], str(exc), field=field_of(str(exc)) or fallback)


def _spec(config: GroupConfig) -> str | None:
    return None if config.rate_limit is None else config.rate_limit.spec
