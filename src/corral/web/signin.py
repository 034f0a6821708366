"""Signing the dashboard in and out: a valid token in, a signed session cookie out (HttpOnly,
SameSite=Strict, Secure under TLS). The cookie never holds the token itself."""

from __future__ import annotations

from fastapi import Request, Response

from .auth import Principal
from .deps import own_origins
from .sessions import COOKIE, SESSION_AGE, Session
from .state import WebState


def secure(request: Request, state: WebState) -> bool:
    """Whether cookies are marked Secure: as set, else when the site is served over https."""
    if state.settings.secure_cookies is not None:
        return state.settings.secure_cookies
    return any(o.startswith("https://") for o in own_origins(request, state))


def sign_in(request: Request, response: Response, state: WebState, token: str
            ) -> tuple[Principal, str] | None:  # fmt: skip
    """Check `token` and set the session cookie on `response`: the principal and the session's
    CSRF token, or None (nothing set) if the token is not valid. Blocking: the store is read."""
    principal = state.tokens.authenticate(token.strip())
    if principal is None:
        return None
    cookie, session = state.signing.new_session(principal.token_id, principal.prefix)
    response.set_cookie(
        COOKIE,
        cookie,
        max_age=int(SESSION_AGE),
        httponly=True,
        samesite="strict",
        secure=secure(request, state),
        path="/",
    )
    return principal, state.signing.csrf_token(session)


def sign_out(request: Request, response: Response, state: WebState) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict",
                           secure=secure(request, state))  # fmt: skip


def csrf_of(request: Request, state: WebState) -> str | None:
    """The CSRF token of the request's session (set by `authenticate`), for a page to embed."""
    session: Session | None = getattr(request.state, "session", None)
    return None if session is None else state.signing.csrf_token(session)
