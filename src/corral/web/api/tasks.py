"""Tasks: a filtered list with keyset paging, one task in detail (attempts, events, logs, and
why it waits), and the actions on one task (cancel, retry). A scoped token sees only its groups'
tasks: a list is bounded in SQL (TaskFilter.scope); a task outside the scope is 404, as if it
did not exist."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from ...admission import Reason
from ...errors import ConfigError
from ...model import AttemptRecord, Event, LogLine, TaskRecord
from ...read_model import TaskFilter
from ...scheduler.why import why
from ..auth import Principal
from ..deps import CorralApp, Operator, Reads, Viewer, record
from ..problems import Problem, renamed
from .params import Cursor, Limit, Name, OptionalId, TaskId, Time

router = APIRouter(tags=["tasks"])


class TaskOut(BaseModel):
    id: int
    name: str
    group: str
    pool: str
    state: str
    priority: int
    level: int
    args: Any
    kwargs: Any
    dedup_key: str | None
    attempt: int
    failures: int
    max_retries: int
    created_at: float
    ready_at: float | None
    first_started_at: float | None
    started_at: float | None
    finished_at: float | None
    worker_id: str | None
    cancel_requested: bool
    result: Any
    error: str | None
    workflow_id: int | None
    depends_on: list[int]
    exclusive: bool
    wait_seconds: float | None

    @classmethod
    def of(cls, t: TaskRecord) -> TaskOut:
        return cls(
            id=t.id, name=t.name, group=t.group, pool=t.pool, state=str(t.state),
            priority=t.priority, level=t.level, args=_json(t.args), kwargs=_json(t.kwargs),
            dedup_key=t.dedup_key, attempt=t.attempt, failures=t.failures,
            max_retries=t.max_retries, created_at=t.created_at, ready_at=t.ready_at,
            first_started_at=t.first_started_at, started_at=t.started_at,
            finished_at=t.finished_at, worker_id=t.worker_id,
            cancel_requested=t.cancel_requested, result=_json(t.result), error=t.error,
            workflow_id=t.workflow_id, depends_on=list(t.depends_on), exclusive=t.exclusive,
            wait_seconds=t.wait_seconds,
        )  # fmt: skip


class TaskPageOut(BaseModel):
    tasks: list[TaskOut]
    next: str | None
    """The cursor of the next page: pass it back as `after`."""


class AttemptOut(BaseModel):
    attempt: int
    worker_id: str | None
    started_at: float
    finished_at: float | None
    outcome: str | None
    error: str | None
    traceback: str | None
    isolated: bool

    @classmethod
    def of(cls, a: AttemptRecord) -> AttemptOut:
        return cls(attempt=a.attempt, worker_id=a.worker_id, started_at=a.started_at,
                   finished_at=a.finished_at, outcome=a.outcome, error=a.error,
                   traceback=a.traceback, isolated=a.isolated)  # fmt: skip


class EventOut(BaseModel):
    id: int
    at: float
    kind: str
    from_state: str | None
    to_state: str | None
    attempt: int
    detail: str | None

    @classmethod
    def of(cls, e: Event) -> EventOut:
        return cls(id=e.id, at=e.at, kind=e.kind, from_state=e.from_state,
                   to_state=e.to_state, attempt=e.attempt, detail=e.detail)  # fmt: skip


class LogOut(BaseModel):
    attempt: int
    at: float
    level: int
    message: str

    @classmethod
    def of(cls, line: LogLine) -> LogOut:
        return cls(attempt=line.attempt, at=line.at, level=line.level, message=line.message)


class ReasonOut(BaseModel):
    code: str
    text: str

    @classmethod
    def of(cls, r: Reason) -> ReasonOut:
        return cls(code=r.code, text=r.text)


class TaskDetailOut(BaseModel):
    task: TaskOut
    attempts: list[AttemptOut]
    events: list[EventOut]
    logs: list[LogOut]
    older_logs: str | None
    """The cursor of older log lines: pass it back as `logs_before`."""
    why: list[ReasonOut]
    """What holds the task back now (empty: nothing; it goes at the next round)."""


class ActionOut(BaseModel):
    id: int
    state: str
    """The task's state after the action."""
    requested: bool = False
    """A cancel of a running task: asked of its worker, which interrupts it."""


QUERY_NAMES = {"states": "state", "name": "type", "workflow_id": "workflow"}
"""The read side's field names as this route's query parameters call them."""


def _json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


@router.get("/tasks", response_model=TaskPageOut)
def list_tasks(
    principal: Viewer,
    reads: Reads,
    state: Annotated[list[str], Query(description="Repeatable: any of these states.")] = [],  # noqa: B006
    type: Name = None,
    group: Name = None,
    workflow: OptionalId = None,
    pool: Name = None,
    schedule: Name = None,
    created_from: Time = None,
    created_until: Time = None,
    finished_from: Time = None,
    finished_until: Time = None,
    order: Literal["created", "finished"] = "created",
    after: Cursor = None,
    limit: Limit = 50,
) -> TaskPageOut:
    """A page of tasks, newest first; `next` is the cursor of the page after."""
    checked = TaskFilter(
        states=tuple(state),  # type: ignore[arg-type]  # checked by the read side
        name=type, group=group, workflow_id=workflow, pool=pool,
        created_from=created_from, created_until=created_until,
        finished_from=finished_from, finished_until=finished_until,
        scope=principal.scope, schedule=schedule,
    )  # fmt: skip
    try:
        page = reads.tasks(checked, order=order, after=after, limit=limit)
    except ConfigError as exc:
        raise renamed(exc, QUERY_NAMES) from None
    return TaskPageOut(tasks=[TaskOut.of(t) for t in page.tasks], next=page.next)


def visible(app: CorralApp, principal: Principal, task_id: int) -> TaskRecord:
    """The task if the principal sees its group; 404 otherwise (as if it did not exist)."""
    found = app.store.task_get(task_id)
    if found is None or not principal.sees(found.group):
        raise Problem(404, "Not found", f"no task with id {task_id}")
    return found


@router.get("/tasks/{task_id}", response_model=TaskDetailOut)
def get_task(
    task_id: TaskId,
    principal: Viewer,
    app: CorralApp,
    reads: Reads,
    logs: Limit = 100,
    logs_before: Cursor = None,
) -> TaskDetailOut:
    """One task with its attempts, events, latest log lines and why it waits."""
    visible(app, principal, task_id)
    detail = reads.task(task_id, logs=logs, logs_before=logs_before)
    _, reasons = why(app.store, task_id, app.clock.now())
    return TaskDetailOut(
        task=TaskOut.of(detail.task),
        attempts=[AttemptOut.of(a) for a in detail.attempts],
        events=[EventOut.of(e) for e in detail.events],
        logs=[LogOut.of(line) for line in detail.logs],
        older_logs=detail.older_logs,
        why=[ReasonOut.of(r) for r in reasons],
    )


@router.post("/tasks/{task_id}/cancel", response_model=ActionOut)
def cancel_task(task_id: TaskId, principal: Operator, app: CorralApp, request: Request
                ) -> ActionOut:  # fmt: skip
    """Cancel a task: one not running ends at once; a running one is interrupted by its worker
    (`requested`). A task that ended is 409."""
    visible(app, principal, task_id)
    after = app.cancel(task_id)
    record(request, principal, "task.cancel", target=f"task:{task_id}", changed=1)
    state = str(after) if after is not None else str(app.get(task_id).state)
    return ActionOut(id=task_id, state=state, requested=after is None)


@router.post("/tasks/{task_id}/retry", response_model=ActionOut)
def retry_task(task_id: TaskId, principal: Operator, app: CorralApp, request: Request
               ) -> ActionOut:  # fmt: skip
    """Run a dead, cancelled or upstream-failed task again with a fresh retry budget; 409 for
    a task in another state."""
    visible(app, principal, task_id)
    app.retry(task_id)
    record(request, principal, "task.retry", target=f"task:{task_id}", changed=1)
    return ActionOut(id=task_id, state=str(app.get(task_id).state))
