"""API tokens over the API (admin): list, make, revoke; the audit log (admin). Only an admin
of every group manages tokens: a scoped admin could otherwise mint a token wider than its own
scope. A token's secret is in the answer to its creation, once, and nowhere else."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from ...errors import ConfigError
from ...limits import ID_MAX
from ...store.contract.access import AuditRow, TokenRow
from ..auth import Principal, Role, status
from ..deps import Admin, State
from ..problems import Problem, renamed
from .params import Limit, PathName

router = APIRouter(tags=["tokens"])


class TokenOut(BaseModel):
    prefix: str
    name: str
    role: str
    scope: list[str]
    status: str
    """active, revoked or expired."""
    created_at: float
    expires_at: float | None
    revoked_at: float | None
    last_used_at: float | None

    @classmethod
    def of(cls, row: TokenRow, now: float) -> TokenOut:
        return cls(prefix=row.prefix, name=row.name, role=row.role, scope=list(row.scope),
                   status=status(row, now), created_at=row.created_at,
                   expires_at=row.expires_at, revoked_at=row.revoked_at,
                   last_used_at=row.last_used_at)  # fmt: skip


class NewTokenIn(BaseModel):
    role: Role
    name: str | None = Field(default=None, min_length=1, max_length=200)
    groups: list[str] = Field(
        default_factory=list, max_length=100,
        description="Group names or prefixes ending in '*'; [] every group.",
    )  # fmt: skip
    expires: str | None = Field(
        default=None, min_length=1, max_length=32, description="A duration from now: 30d, 12h."
    )


class MadeTokenOut(BaseModel):
    token: str
    """The whole token: shown this once, never again."""
    details: TokenOut


class AuditOut(BaseModel):
    id: int
    at: float
    actor: str
    role: str
    action: str
    target: str | None
    filter: str | None
    changed: int
    detail: str | None

    @classmethod
    def of(cls, row: AuditRow) -> AuditOut:
        e = row.entry
        return cls(id=row.id, at=e.at, actor=e.actor, role=e.role, action=e.action,
                   target=e.target, filter=e.filter, changed=e.changed,
                   detail=e.detail)  # fmt: skip


class AuditPageOut(BaseModel):
    entries: list[AuditOut]
    next: int | None
    """Pass it back as `before` for the older entries."""


def _unscoped(principal: Principal) -> None:
    if principal.scope:
        raise Problem(403, "Forbidden", "tokens are managed by an admin of every group; this "
                      "token is scoped")  # fmt: skip


@router.get("/tokens", response_model=list[TokenOut])
def list_tokens(principal: Admin, state: State) -> list[TokenOut]:
    """Every token (never a secret), newest first."""
    _unscoped(principal)
    now = state.corral.clock.now()
    return [TokenOut.of(row, now) for row in state.tokens.list()]


@router.post("/tokens", response_model=MadeTokenOut, status_code=201)
def create_token(body: NewTokenIn, principal: Admin, state: State) -> MadeTokenOut:
    """Make a token. Its secret is in this answer only."""
    _unscoped(principal)
    try:
        made = state.tokens.create(body.role, name=body.name, scope=tuple(body.groups),
                                   expires=body.expires, actor=principal.actor)  # fmt: skip
    except ConfigError as exc:
        raise renamed(exc, {"scope": "groups"}) from None
    return MadeTokenOut(token=made.secret, details=TokenOut.of(made.row, made.row.created_at))


@router.delete("/tokens/{prefix}", response_model=TokenOut)
def revoke_token(prefix: PathName, principal: Admin, state: State) -> TokenOut:
    """Revoke a token (by its prefix): it and its sessions stop working at once."""
    _unscoped(principal)
    try:
        row = state.tokens.revoke(prefix, actor=principal.actor)
    except ConfigError:
        raise Problem(404, "Not found", f"no token has the prefix {prefix!r}") from None
    return TokenOut.of(row, state.corral.clock.now())


@router.get("/audit", response_model=AuditPageOut)
def audit_log(
    principal: Admin,
    state: State,
    before: Annotated[int | None, Query(ge=1, le=ID_MAX)] = None,
    limit: Limit = 100,
) -> AuditPageOut:
    """The audit log, newest first: who did what, to what, with which filter, how many."""
    _unscoped(principal)
    rows = state.store.audit_page(before, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return AuditPageOut(entries=[AuditOut.of(r) for r in rows],
                        next=rows[-1].id if more and rows else None)  # fmt: skip
