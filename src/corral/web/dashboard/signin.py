"""The dashboard's sign-in page: a form that takes an API token (POST signs in with the
foundation's session helpers and redirects to where the visitor was going), and sign-out (POST,
with the session's CSRF token: the Viewer dependency checks it and the Origin). The only routes
of the dashboard that change anything; everything else is the API's."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ..deps import State, Viewer, check_origin, record
from ..signin import sign_in, sign_out
from .render import templates

router = APIRouter(include_in_schema=False)


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of this site only (never another origin)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:
    return templates.TemplateResponse(
        request, "login.html", {"next": safe_next(next), "problem": None}
    )


@router.post("/login")
async def login(
    request: Request,
    state: State,
    token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    check_origin(request, state, required=False)
    if not token.strip():
        return _again(request, next, "Enter an API token.", 422)
    response = RedirectResponse(safe_next(next), status_code=303)
    made = await run_in_threadpool(sign_in, request, response, state, token)
    if made is None:
        return _again(request, next, "That token is unknown, revoked or expired.", 401)
    await run_in_threadpool(record, request, made[0], "session.create")
    return response


def _again(request: Request, next: str, problem: str, status: int) -> Response:
    """The sign-in page again, saying what was wrong."""
    context = {"next": safe_next(next), "problem": problem}
    return templates.TemplateResponse(request, "login.html", context, status_code=status)


@router.post("/logout")
def logout(request: Request, principal: Viewer, state: State) -> Response:
    response = RedirectResponse("/login", status_code=303)
    sign_out(request, response, state)
    record(request, principal, "session.delete")
    return response
