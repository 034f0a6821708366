"""Bulk cancel and retry by filter: POST /tasks/bulk/cancel and /tasks/bulk/retry (operator).

Count first: `dry_run: true` answers how many tasks the filter matches that the action takes,
and a confirmation (corral.web.confirmations: signed, for this filter, action and token, good
for ten minutes); the real request carries it, and acts on those tasks only (none submitted
since), in bounded batches (corral.bulk). A filter matching nothing is 409; one matching more
than the server's maximum is 422 without `allow_large` (on the dry run). A scoped token's filter
is bounded by its groups. Every execution is in the audit log, with its filter and count."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from ...bulk import Action, Bulk, BulkRefused, Preview
from ...errors import ConfigError
from ...limits import ID_MAX
from ...read_model import TaskFilter
from ...readside import check_filter
from .. import confirmations
from ..auth import Principal
from ..deps import Operator, record, web_state
from ..problems import Problem, renamed

router = APIRouter(tags=["bulk"])

FIELDS = {"states": "filter.states", "name": "filter.type", "group": "filter.group",
          "workflow_id": "filter.workflow", "pool": "filter.pool", "schedule": "filter.schedule",
          "created_from": "filter.created_from", "created_until": "filter.created_until",
          "finished_from": "filter.finished_from",
          "finished_until": "filter.finished_until"}  # fmt: skip
"""The read side's field names as the request body names them."""


class FilterIn(BaseModel):
    """Which tasks: every field left out matches all (times are UNIX seconds, a range includes
    its start and excludes its end)."""

    model_config = ConfigDict(extra="forbid")

    states: list[str] = Field(default_factory=list, max_length=20)
    type: str | None = None
    group: str | None = None
    workflow: int | None = Field(default=None, ge=1, le=ID_MAX)
    pool: str | None = None
    schedule: str | None = None
    created_from: float | None = None
    created_until: float | None = None
    finished_from: float | None = None
    finished_until: float | None = None


class BulkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    filter: FilterIn = Field(default_factory=FilterIn)
    dry_run: bool = False
    """Count only, and get the confirmation the real request must carry."""
    confirmation: Annotated[str | None, Field(max_length=8192)] = None
    allow_large: bool = False
    """Allow (on the dry run) more tasks than the server's maximum."""


class PreviewOut(BaseModel):
    action: str
    count: int
    """The tasks the action would take now."""
    confirmation: str
    """Pass it back, with the same filter and dry_run false, to act."""
    expires_at: float


class BulkDoneOut(BaseModel):
    action: str
    previewed: int
    changed: int
    """Tasks cancelled (or sent back to ready)."""
    requested: int
    """Running tasks asked to stop (a cancel)."""
    skipped: int
    """Tasks of the preview that had moved or left the filter when their batch ran."""
    batches: int


@router.post("/tasks/bulk/cancel", response_model=PreviewOut | BulkDoneOut)
def bulk_cancel(body: BulkIn, principal: Operator, request: Request) -> PreviewOut | BulkDoneOut:
    """Cancel every unfinished task the filter matches: dry run first, then confirmed."""
    return _bulk("cancel", body, principal, request)


@router.post("/tasks/bulk/retry", response_model=PreviewOut | BulkDoneOut)
def bulk_retry(body: BulkIn, principal: Operator, request: Request) -> PreviewOut | BulkDoneOut:
    """Retry every dead, cancelled or upstream-failed task the filter matches: dry run first,
    then confirmed."""
    return _bulk("retry", body, principal, request)


def _bulk(action: Action, body: BulkIn, principal: Principal, request: Request
          ) -> PreviewOut | BulkDoneOut:  # fmt: skip
    state = web_state(request)
    settings = state.settings
    bulk = Bulk(state.reads, batch=settings.bulk_batch, max_matches=settings.bulk_max)
    secret = state.signing.secret.encode()
    now = state.corral.clock.now()
    try:
        narrowed = bulk.narrowed(action, check_filter(_filter(body.filter, principal)))
        if body.dry_run:
            preview = bulk.preview(action, narrowed, allow_large=body.allow_large)
            token = confirmations.issue(
                secret, action=action, filter=preview.filter, principal=str(principal.token_id),
                high_water=preview.high_water, count=preview.count, now=now,
            )  # fmt: skip
            return PreviewOut(action=action, count=preview.count, confirmation=token,
                              expires_at=now + confirmations.TTL)  # fmt: skip
    except BulkRefused as exc:
        raise _refused(exc) from None
    except ConfigError as exc:
        raise renamed(exc, FIELDS) from None
    if body.confirmation is None:
        raise Problem(422, "Unprocessable content", "confirmation: run the request with "
                      "dry_run true first, and pass back its confirmation",
                      field="confirmation")  # fmt: skip
    try:
        seen = confirmations.check(secret, body.confirmation, action=action, filter=narrowed,
                                   principal=str(principal.token_id), now=now)  # fmt: skip
    except confirmations.ConfirmationRefused as exc:
        raise Problem(422, "Unprocessable content", str(exc), field="confirmation") from None
    done = bulk.execute(Preview(action, narrowed, seen.count, seen.high_water))
    record(request, principal, f"tasks.bulk_{action}", filter=confirmations.canonical(narrowed),
           changed=done.changed + done.requested,
           detail=f"previewed {done.previewed}, skipped {done.skipped}")  # fmt: skip
    return BulkDoneOut(action=action, previewed=done.previewed, changed=done.changed,
                       requested=done.requested, skipped=done.skipped,
                       batches=done.batches)  # fmt: skip


def _filter(f: FilterIn, principal: Principal) -> TaskFilter:
    return TaskFilter(
        states=tuple(f.states),  # type: ignore[arg-type]  # checked by check_filter
        name=f.type, group=f.group, workflow_id=f.workflow, pool=f.pool,
        created_from=f.created_from, created_until=f.created_until,
        finished_from=f.finished_from, finished_until=f.finished_until,
        scope=principal.scope, schedule=f.schedule,
    )  # fmt: skip


def _refused(exc: BulkRefused) -> Problem:
    if exc.field == "filter":
        return Problem(409, "Conflict", str(exc), field="filter")
    field = FIELDS.get(exc.field, exc.field)
    return Problem(422, "Unprocessable content", str(exc), field=field)
