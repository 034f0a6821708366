"""Submitting a task over HTTP: POST /tasks, the same call as `app.submit(name, ...)`.

An `Idempotency-Key` header names the call (corral's submit id, kept per token so two clients'
keys never meet): the same key again returns the task stored the first time, whatever became
of it, and stores nothing (201 the first time, 200 after). A dedup key already held by an
unfinished task also answers 200 with that task. A scoped token submits only into its groups and
depends only on tasks it sees."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from ...errors import ConfigError, UnknownTaskError
from ...limits import ID_MAX
from ...model import DEFAULT_GROUP
from ..auth import Principal
from ..deps import CorralApp, Operator, record
from ..problems import Problem, renamed

router = APIRouter(tags=["tasks"])

OPTIONS = frozenset({"group", "priority", "aging", "dedup_key", "delay", "run_at", "depends_on",
                     "exclusive", "on_upstream_failure", "connection", "submit_id"})  # fmt: skip
"""Keywords `submit` takes for itself: a handler's keyword argument can't be named so."""
MAX_KEY = 150
TaskId = Annotated[int, Field(ge=1, le=ID_MAX)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        min_length=1,
        max_length=MAX_KEY,
        description="Names the call: a repeat returns the task stored the first time.",
    ),
]


class SubmitIn(BaseModel):
    """One task to submit: its type, its arguments, and the options of `app.submit`."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(min_length=1, max_length=200, description="The registered task type.")
    args: list[Any] = Field(default_factory=list)
    kwargs: dict[str, Any] = Field(default_factory=dict)
    group: str = DEFAULT_GROUP
    priority: int | None = Field(default=None, ge=0)
    dedup_key: str | None = None
    delay: float | None = Field(default=None, ge=0, description="Seconds before it may run.")
    run_at: float | None = Field(default=None, description="A UNIX time it may run from.")
    depends_on: list[TaskId] = Field(default_factory=list, max_length=1000)
    exclusive: bool = False
    on_upstream_failure: str | None = None


class SubmittedOut(BaseModel):
    id: int
    created: bool
    """False: an earlier call with the same Idempotency-Key, or a held dedup key, gave it."""
    state: str


@router.post(
    "/tasks",
    status_code=201,
    response_model=SubmittedOut,
    responses={200: {"model": SubmittedOut, "description": "Stored before: the same task"}},
)
def submit_task(
    body: SubmitIn,
    principal: Operator,
    app: CorralApp,
    request: Request,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> SubmittedOut:
    """Submit one task; 201 with its id, or 200 with the task an earlier call with the same
    Idempotency-Key (or a held dedup key) stored."""
    if not principal.sees(body.group):
        raise Problem(403, "Forbidden", f"group: this token may not submit to {body.group!r}",
                      field="group")  # fmt: skip
    clash = sorted(OPTIONS & set(body.kwargs))
    if clash:
        raise Problem(422, "Unprocessable content", f"kwargs: {clash[0]!r} is an option of "
                      "submit, not a handler argument: give it at the top level",
                      field="kwargs")  # fmt: skip
    _check_dependencies(app, principal, body.depends_on)
    try:
        task_type = app.task_type(body.type)
    except UnknownTaskError as exc:
        raise Problem(422, "Unprocessable content", f"type: {exc}", field="type") from None
    options = body.model_dump(exclude={"type", "args", "kwargs"}, exclude_none=True)
    try:
        prepared = task_type.prepare(*body.args, **options, **body.kwargs)
        key = None if idempotency_key is None else f"web:{principal.token_id}:{idempotency_key}"
        stored = app.submit_stored([prepared], submit_id=key)[0]
    except ConfigError as exc:
        raise renamed(exc, {"name": "type"}) from None
    response.status_code = 201 if stored.created else 200
    if stored.created:
        record(request, principal, "task.submit", target=f"task:{stored.id}", changed=1)
    return SubmittedOut(id=stored.id, created=stored.created, state=str(app.get(stored.id).state))


def _check_dependencies(app: CorralApp, principal: Principal, ids: list[int]) -> None:
    """Every dependency exists and is seen by the principal (else 422 naming it, as if it did
    not exist)."""
    for task_id in dict.fromkeys(ids):
        found = app.store.task_get(task_id)
        if found is None or not principal.sees(found.group):
            raise Problem(422, "Unprocessable content",
                          f"depends_on: no task with id {task_id}", field="depends_on")  # fmt: skip
