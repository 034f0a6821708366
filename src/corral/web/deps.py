"""The dependencies every route declares: who is asking (and whether they may), the corral App
and its read side, and the audit log. Default deny: a route without `Viewer`, `Operator` or
`Admin` is reachable only if it is in `routes.PUBLIC` (the health check, signing in), and
tests/test_web_authz.py walks every route to hold that.

A request proves who it is with `Authorization: Bearer <token>` or the dashboard's session
cookie. A cookie is sent by the browser on its own, so an unsafe request (POST, PUT, PATCH,
DELETE) that relies on one must also carry the session's CSRF token and come from corral's own
origin; a foreign Origin is refused for bearer requests too (no page elsewhere may drive the API
through a visitor's browser)."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from .. import App
from ..readside import ReadSide
from ..store.contract.access import AuditEntry
from .auth import Principal, Role
from .problems import Problem
from .sessions import COOKIE
from .state import WebState

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"


def web_state(request: Request) -> WebState:
    state: WebState = request.app.state.web
    return state


def origin_of(url: str) -> str | None:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def own_origins(request: Request, state: WebState) -> set[str]:
    own = state.settings.public_origin or f"{request.url.scheme}://{request.url.netloc}"
    return {o.rstrip("/").lower() for o in (own, *state.settings.allowed_origins)}


def check_origin(request: Request, state: WebState, *, required: bool) -> None:
    """Refuse an unsafe request from a foreign origin (or, if `required`, from an unknown one)."""
    origin = request.headers.get("origin")
    if origin is None and request.headers.get("referer"):
        origin = origin_of(request.headers["referer"]) or "null"
    if origin is None:
        if required:
            raise Problem(403, "Forbidden", "a browser session's unsafe request must carry an "
                          "Origin (or Referer) header")  # fmt: skip
        return
    if origin.rstrip("/").lower() not in own_origins(request, state):
        raise Problem(403, "Forbidden", f"origin {origin!r} may not make this request")


async def _csrf_presented(request: Request) -> str | None:
    token = request.headers.get(CSRF_HEADER)
    if token is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        value = (await request.form()).get(CSRF_FIELD)
        token = value if isinstance(value, str) else None
    return token


async def authenticate(request: Request) -> Principal:
    """The request's principal; 401 if it proves none, 403 if an unsafe request fails the CSRF
    or Origin checks."""
    state = web_state(request)
    unsafe = request.method not in SAFE_METHODS
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise _unauthorized("the Authorization header must be 'Bearer <token>'")
        if unsafe:
            check_origin(request, state, required=False)
        principal = await run_in_threadpool(state.tokens.authenticate, secret.strip())
        if principal is None:
            raise _unauthorized("the token is unknown, revoked or expired")
        return principal
    session = state.signing.session(request.cookies.get(COOKIE))
    if session is None:
        raise _unauthorized("sign in, or send 'Authorization: Bearer <token>'")
    row = await run_in_threadpool(state.tokens.by_prefix, session.prefix)
    found = None if row is None or row.id != session.token_id else row
    principal = (
        None if found is None else await run_in_threadpool(state.tokens.principal, found, "session")
    )
    if principal is None:
        raise _unauthorized("the session's token is revoked or expired: sign in again")
    if unsafe:
        check_origin(request, state, required=True)
        if not state.signing.csrf_ok(session, await _csrf_presented(request)):
            raise Problem(403, "Forbidden", "the CSRF token is missing or wrong: reload the page")
    request.state.session = session
    return principal


def _unauthorized(detail: str) -> Problem:
    return Problem(401, "Unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


def require(role: Role) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency: the principal, if its role includes `role` (else 403)."""

    async def dependency(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if not principal.allows(role):
            raise Problem(403, "Forbidden", f"this needs the {role} role; the token's is "
                          f"{principal.role}")  # fmt: skip
        return principal

    dependency.corral_role = role  # type: ignore[attr-defined]  # read by the authz matrix
    return dependency


Viewer = Annotated[Principal, Depends(require("viewer"))]
Operator = Annotated[Principal, Depends(require("operator"))]
Admin = Annotated[Principal, Depends(require("admin"))]


def corral_app(request: Request) -> App:
    return web_state(request).corral


def read_side(request: Request) -> ReadSide:
    return web_state(request).reads


CorralApp = Annotated[App, Depends(corral_app)]
Reads = Annotated[ReadSide, Depends(read_side)]
State = Annotated[WebState, Depends(web_state)]


def record(
    request: Request,
    principal: Principal,
    action: str,
    *,
    target: str | None = None,
    filter: dict[str, Any] | None = None,
    changed: int = 0,
    detail: str | None = None,
) -> None:
    """Write one entry of the audit log: who did what, to what, under which filter, how many
    changed. Call it from a sync route (it writes to the store)."""
    state = web_state(request)
    entry = AuditEntry(
        state.corral.clock.now(),
        principal.actor,
        principal.role,
        action,
        target,
        None if filter is None else json.dumps(filter, sort_keys=True, default=str),
        changed,
        detail,
    )
    state.store.audit_append([entry])
