"""Errors as RFC 9457 problem details (`application/problem+json`): every error the web answers
names what is wrong and, where one field is to blame, which (`field`). corral's own errors map
onto statuses here, once: a bad value 422, an unknown id 404, a refused transition 409, the
database away 503."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from ..errors import (
    ConfigError,
    DatabaseError,
    PayloadError,
    TaskNotFound,
    TransitionRefused,
    UnknownTaskError,
)

log = logging.getLogger("corral.web")
MEDIA_TYPE = "application/problem+json"
_FIELD = re.compile(r"^([A-Za-z_][\w.\[\]]*)(?::| must| is| has| needs| of)")
TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


class Problem(Exception):
    """An error answered as a problem document."""

    def __init__(
        self, status: int, title: str, detail: str, *, field: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:  # fmt: skip
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail
        self.field, self.headers = field, dict(headers or {})


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "field": {"type": "string"},
    },
}
RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {
        "description": TITLES[status],
        "content": {MEDIA_TYPE: {"schema": PROBLEM_SCHEMA}},
    }
    for status in (400, 401, 403, 404, 409, 422, 503)
}
"""The problem answers every API route may give, for its OpenAPI operation."""


def response(problem: Problem) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
    }
    if problem.field is not None:
        body["field"] = problem.field
    return JSONResponse(body, problem.status, headers=problem.headers, media_type=MEDIA_TYPE)


def field_of(message: str) -> str | None:
    """The field a corral error message starts with ('limit must be ...' -> 'limit')."""
    found = _FIELD.match(message)
    return found.group(1) if found else None


def renamed(exc: ConfigError, names: dict[str, str]) -> Problem:
    """A ConfigError as a 422 whose field (and the message's first word) is named as the
    request names it (`names`: the core's name -> the request's)."""
    message, field = str(exc), field_of(str(exc))
    if field in names:
        message = names[field] + message[len(field) :]
        field = names[field]
    return Problem(422, TITLES[422], message, field=field)


def from_corral(exc: Exception) -> Problem:
    message = str(exc)
    if isinstance(exc, TaskNotFound | UnknownTaskError):
        return Problem(404, TITLES[404], message)
    if isinstance(exc, TransitionRefused):
        return Problem(409, TITLES[409], message)
    if isinstance(exc, ConfigError | PayloadError):
        return Problem(422, TITLES[422], message, field=field_of(message))
    if isinstance(exc, DatabaseError):
        log.warning("web: database error: %s", message)
        return Problem(503, TITLES[503], "the database can't be reached; try again")
    raise exc


def _wants_page(request: Request) -> bool:
    """A browser's page request (not the API's): a 401 there sends it to the sign-in page."""
    accept = request.headers.get("accept", "")
    return not request.url.path.startswith("/api/") and "text/html" in accept


def allowed_methods(request: Request) -> list[str]:
    """The methods some route of the app answers at the request's path."""
    from .routes import operations

    app = request.app
    table = getattr(app.state, "path_methods", None)
    if table is None:
        table = [(compile_path(op.path)[0], op.method) for op in operations(app)]
        app.state.path_methods = table
    return sorted({m for regex, m in table if regex.match(request.url.path)})


def install(app: FastAPI) -> None:
    """Answer every error of `app` as a problem document."""

    async def on_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Problem)
        if exc.status == 401 and _wants_page(request) and request.method == "GET":
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
        return response(exc)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        title = TITLES.get(exc.status_code, "Error")
        detail = exc.detail if isinstance(exc.detail, str) else title
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no route {request.url.path}"
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # every method of the path, not only one route's
            allowed = allowed_methods(request)
            headers["Allow"] = ", ".join(allowed)
            detail = f"{request.method} is not allowed here; use {' or '.join(allowed)}"
        return response(Problem(exc.status_code, title, detail, headers=headers))

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {}
        where = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
        field = ".".join(where) or None
        message = first.get("msg", "invalid input")
        detail = f"{field}: {message}" if field else str(message)
        return response(Problem(422, TITLES[422], detail, field=field))

    async def on_corral(request: Request, exc: Exception) -> Response:
        return response(from_corral(exc))

    async def on_error(request: Request, exc: Exception) -> Response:
        log.exception("web: %s %s failed", request.method, request.url.path)
        return response(Problem(500, TITLES[500], "the server failed; the error is in its log"))

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)
    for kind in (ConfigError, PayloadError, TaskNotFound, UnknownTaskError, TransitionRefused,
                 DatabaseError):  # fmt: skip
        app.add_exception_handler(kind, on_corral)
    app.add_exception_handler(Exception, on_error)
