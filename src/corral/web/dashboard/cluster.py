"""The cluster's pages: the overview (throughput, failures, backlog and waits per pool), the
groups (entitled against actual share: the fairness of the scheduler made visible), the workers
and pools, and the alerts (open incidents, recent notifications).

Every figure comes from the read side's bounded reads: the unfinished tasks' counts, the starts
and ends of the last 15 minutes (at most one page of `MAX_PAGE` ends each, shown as "1000+"
beyond), the failed attempts of the window. A token scoped to groups sees its groups' figures
only; the pools, workers and alerts sum every group, so they are shown to unscoped tokens only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from ...lifecycle import State
from ...read_model import GroupFigures, TaskFilter
from ...readside import MAX_PAGE, WINDOW, ReadSide, busiest
from ..auth import Principal
from ..deps import CorralApp, Reads, Viewer
from .render import page

router = APIRouter(include_in_schema=False)

RECENT = 50
"""Incidents and notifications shown on the alerts page."""
GROUPS_SHOWN = 200
"""The most groups the groups page lists (the busiest; a name filter finds the others)."""


@dataclass(frozen=True)
class Ended:
    """Tasks that ended in a state within the window, counted up to one page."""

    count: int
    more: bool

    @property
    def text(self) -> str:
        return f"{self.count}+" if self.more else str(self.count)

    @property
    def per_minute(self) -> str:
        rate = self.count / (WINDOW / 60)
        return f"{rate:.1f}{'+' if self.more else ''}"


def ended(reads: ReadSide, principal: Principal, state: State, since: float) -> Ended:
    """How many tasks the principal sees ended in `state` since `since` (one page at most)."""
    f = TaskFilter(states=(state,), finished_from=since, scope=principal.scope)
    got = reads.tasks(f, order="finished", limit=MAX_PAGE)
    return Ended(len(got.tasks), got.next is not None)


def seen_groups(reads: ReadSide, principal: Principal) -> list[GroupFigures]:
    return [g for g in reads.groups() if principal.sees(g.group)]


@router.get("/")
def overview(request: Request, principal: Viewer, reads: Reads, app: CorralApp) -> Response:
    since = reads.clock.now() - WINDOW
    failed = [
        a for a in app.store.alert_failed_attempts(since, MAX_PAGE) if principal.sees(a.group)
    ]
    groups = seen_groups(reads, principal)
    return page(
        request,
        principal,
        "overview.html",
        title="Overview",
        window=WINDOW,
        succeeded=ended(reads, principal, State.SUCCEEDED, since),
        dead=ended(reads, principal, State.DEAD, since),
        failed_attempts=len(failed),
        failed_more=len(failed) >= MAX_PAGE,
        pools=reads.pools() if not principal.scope else [],
        groups=busiest(groups)[:10],
        ready=sum(g.ready for g in groups),
        active=sum(g.active for g in groups),
    )


@router.get("/groups")
def groups(
    request: Request,
    principal: Viewer,
    reads: Reads,
    app: CorralApp,
    name: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    """The groups by backlog, at most `GROUPS_SHOWN` (a name filter finds the others). Without
    a filter or a scope, the bounded read (its cost follows GROUPS_SHOWN, not the groups)."""
    if not name and not principal.scope:
        shown, matching, total = reads.busiest_groups(GROUPS_SHOWN), None, None
    else:
        every = seen_groups(reads, principal)
        found = [g for g in every if name in g.group] if name else every
        shown, matching, total = busiest(found)[:GROUPS_SHOWN], len(found), len(every)
    return page(
        request,
        principal,
        "groups.html",
        title="Groups",
        actions="groups_actions.html",
        groups=shown,
        paused={p.name: p for p in app.groups.paused() if principal.sees(p.name)},
        matching=matching,
        total=total,
        name=name,
    )


@router.get("/workers")
def workers(request: Request, principal: Viewer, reads: Reads) -> Response:
    if principal.scope:
        return page(request, principal, "cluster_only.html", title="Workers and pools")
    return page(
        request,
        principal,
        "workers.html",
        title="Workers and pools",
        workers=reads.workers(),
        pools=reads.pools(),
        trigger="sse:task delay:300ms, every 5s",
    )


@router.get("/alerts")
def alerts(request: Request, principal: Viewer, app: CorralApp) -> Response:
    if principal.scope:
        return page(request, principal, "cluster_only.html", title="Alerts")
    store = app.store
    return page(
        request,
        principal,
        "alerts.html",
        title="Alerts",
        open=store.alert_open(),
        incidents=store.alert_incidents(None, RECENT),
        notifications=store.alert_notifications(None, RECENT),
    )
