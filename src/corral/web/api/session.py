"""The dashboard's session: sign in with a token (POST: the cookie is set, the CSRF token
returned), see who is signed in (GET), sign out (DELETE). A script needs none of this: it sends
its token as a bearer on every request."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ..deps import State, Viewer, check_origin, record
from ..problems import Problem
from ..signin import csrf_of, sign_in, sign_out

router = APIRouter(tags=["session"])


class SignIn(BaseModel):
    token: str = Field(min_length=1, max_length=200, description="An API token.")


class SessionOut(BaseModel):
    prefix: str
    name: str
    role: str
    scope: list[str]
    csrf_token: str | None
    """Send it back as the X-CSRF-Token header on every unsafe request of this session."""


@router.post("/session", response_model=SessionOut)
async def create_session(body: SignIn, request: Request, response: Response, state: State
                         ) -> SessionOut:  # fmt: skip
    """Sign in: the session cookie is set (HttpOnly, SameSite=Strict, Secure under TLS)."""
    check_origin(request, state, required=False)
    made = await run_in_threadpool(sign_in, request, response, state, body.token)
    if made is None:
        raise Problem(401, "Unauthorized", "token: unknown, revoked or expired", field="token")
    principal, csrf = made
    await run_in_threadpool(record, request, principal, "session.create")
    return SessionOut(prefix=principal.prefix, name=principal.name, role=principal.role,
                      scope=list(principal.scope), csrf_token=csrf)  # fmt: skip


@router.get("/session", response_model=SessionOut)
def get_session(principal: Viewer, request: Request, state: State) -> SessionOut:
    """Who is asking (a token or a session), and the session's CSRF token if it is one."""
    return SessionOut(prefix=principal.prefix, name=principal.name, role=principal.role,
                      scope=list(principal.scope), csrf_token=csrf_of(request, state))  # fmt: skip


@router.delete("/session", status_code=204)
def delete_session(principal: Viewer, request: Request, state: State) -> Response:
    """Sign out: the cookie is cleared."""
    response = Response(status_code=204)
    sign_out(request, response, state)
    return response
