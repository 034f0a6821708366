"""Every operation a web app answers, with the role it requires: what the authorisation tests
walk (each route must declare a role or be public) and what the API reference lists."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

PUBLIC = frozenset({
    ("GET", "/api/v1/health"),
    ("POST", "/api/v1/session"),
    ("GET", "/login"),
    ("POST", "/login"),
})  # fmt: skip
"""The operations answered without credentials: the health check, signing in, and the sign-in
page (and the static files, a mount of their own: htmx, the style sheet)."""


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    role: str | None
    """The role its dependencies require; None: none (it must then be public)."""
    route: APIRoute

    @property
    def public(self) -> bool:
        return (self.method, self.path) in PUBLIC


def operations(app: FastAPI) -> list[Operation]:
    found = []
    for prefix, route in _walk(app.routes, ""):
        for method in sorted(route.methods or ()):
            if method != "HEAD":
                found.append(Operation(method, prefix + route.path, _role(route.dependant), route))
    return found


def _walk(routes: Sequence[Any], prefix: str) -> Iterator[tuple[str, APIRoute]]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield prefix, route
        elif hasattr(route, "original_router"):  # an included router (FastAPI >= 0.160)
            context = getattr(route, "include_context", None)
            inner = prefix + (getattr(context, "prefix", "") or "")
            yield from _walk(route.original_router.routes, inner)


def _role(dependant: Dependant) -> str | None:
    for sub in dependant.dependencies:
        role = getattr(sub.call, "corral_role", None)
        if role is None:
            role = _role(sub)
        if role is not None:
            return str(role)
    return None
