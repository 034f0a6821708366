"""The tasks' pages: a live, filterable list (state, type, group, workflow; keyset "next page"),
with the bulk retry / cancel by that filter (preview the count, confirm, done: the same
POST /api/v1/tasks/bulk/{action} a script makes, dry run first), and one task's page: its
attempts, log lines, events and why it waits, with its cancel and retry buttons (the API's
POST /api/v1/tasks/{id}/cancel | retry). The pages only read; every change is an API call."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from ...errors import ConfigError, TaskNotFound
from ...lifecycle import TERMINAL, State
from ...read_model import TaskFilter
from ...scheduler.why import why
from ..deps import CorralApp, Reads, Viewer
from .render import page

router = APIRouter(include_in_schema=False)

PAGE = 50
STATES = [str(s) for s in State]
RETRYABLE = ("dead", "cancelled", "upstream_failed")
"""The states a retry starts again (what the bulk retry's preview counts by default)."""


def filter_fields(
    state: list[str], type: str | None, group: str | None, workflow: int | None
) -> dict[str, Any]:
    """The filter as the page shows it and the bulk API takes it (empty fields left out)."""
    fields: dict[str, Any] = {"states": state}
    if type:
        fields["type"] = type
    if group:
        fields["group"] = group
    if workflow is not None:
        fields["workflow"] = workflow
    return fields


@router.get("/tasks")
def task_list(
    request: Request,
    principal: Viewer,
    reads: Reads,
    state: Annotated[list[str], Query()] = [],  # noqa: B006
    type: str | None = None,
    group: str | None = None,
    workflow: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    after: str | None = None,
) -> Response:
    type, group = type or None, group or None
    fields = filter_fields(state, type, group, workflow)
    context: dict[str, Any] = {
        "title": "Tasks", "filter": fields, "states": STATES, "tasks": [], "next": None,
        "problem": None, "after": after, "actions": "tasks_actions.html",
    }  # fmt: skip
    try:
        f = TaskFilter(
            states=tuple(state),  # type: ignore[arg-type]  # checked by the read side
            name=type, group=group, workflow_id=workflow, scope=principal.scope,
        )  # fmt: skip
        got = reads.tasks(f, after=after, limit=PAGE)
        context.update(tasks=got.tasks, next=got.next)
    except ConfigError as exc:
        context["problem"] = str(exc)
    return page(
        request, principal, "tasks.html", status=422 if context["problem"] else 200, **context
    )


@router.get("/tasks/{task_id}")
def task_page(
    request: Request,
    principal: Viewer,
    app: CorralApp,
    reads: Reads,
    task_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
) -> Response:
    found = app.store.task_get(task_id)
    if found is None or not principal.sees(found.group):
        raise TaskNotFound(f"no task with id {task_id}")
    detail = reads.task(task_id)
    _, reasons = why(app.store, task_id, app.clock.now())
    return page(
        request,
        principal,
        "task.html",
        title=f"Task {task_id}: {detail.task.name}",
        detail=detail,
        task=detail.task,
        reasons=reasons,
        ended=detail.task.state in TERMINAL,
        actions="task_actions.html" if principal.allows("operator") else None,
        trigger=f"sse:task-{task_id} delay:200ms",
    )
