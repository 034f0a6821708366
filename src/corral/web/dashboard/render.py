"""Rendering the dashboard's pages: one Jinja2 environment over the package's templates
(autoescaped), the filters the templates share, and `page`, which adds what every page needs:
the principal, the session's CSRF token (the <body>'s hx-headers send it on every htmx request)
and the live feed's starting cursor."""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.responses import Response

from ..auth import Principal
from ..deps import web_state
from ..signin import csrf_of

NAV = (
    ("/", "Overview"),
    ("/groups", "Groups"),
    ("/tasks", "Tasks"),
    ("/schedules", "Schedules"),
    ("/workers", "Workers"),
    ("/alerts", "Alerts"),
)


def when(value: float | None) -> str:
    """A UNIX time as UTC, to the second."""
    if value is None:
        return "—"
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S")


def seconds(value: float | None) -> str:
    """A duration, short: 850ms, 12.5s, 4m05s, 3h10m."""
    if value is None or not math.isfinite(value):
        return "—"
    if value < 1:
        return f"{value * 1000:.0f}ms"
    if value < 60:
        return f"{value:.1f}s"
    if value < 3600:
        return f"{int(value // 60)}m{int(value % 60):02d}s"
    return f"{int(value // 3600)}h{int(value % 3600 // 60):02d}m"


def ago(value: float | None, now: float) -> str:
    if value is None:
        return "—"
    delta = now - value
    return f"in {seconds(-delta)}" if delta < 0 else f"{seconds(delta)} ago"


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


def level(value: int) -> str:
    """A log line's level by its name (INFO, WARNING, ...)."""
    return logging.getLevelName(value)


def tenths(value: float | None) -> str:
    """A share as the class of its bar's width (w0 .. w10): the CSP allows no inline style."""
    if value is None or not math.isfinite(value):
        return "w0"
    return f"w{max(0, min(10, round(value * 10)))}"


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("corral.web.dashboard", "templates"),
        autoescape=select_autoescape(["html", "svg"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        when=when, seconds=seconds, ago=ago, percent=percent, tenths=tenths, level=level
    )
    return env


templates = Jinja2Templates(env=_environment())


def live(request: Request) -> bool:
    """Whether htmx asks (the live refresh of a page's body): answer the body only."""
    return request.headers.get("hx-request") == "true"


def page(
    request: Request, principal: Principal, template: str, status: int = 200, **context: Any
) -> Response:
    """A page for a signed-in principal: the layout around the body `template`, or for htmx's
    live refresh the body alone. Context: `title`; `actions`, a template shown above the body
    that the refresh leaves alone (forms in progress); `trigger`, the events that refresh the
    body (default: any task event; "" never). Blocking (a full page reads the event head): call
    from a sync route."""
    state = web_state(request)
    body_only = live(request)
    context.setdefault("title", "")
    context.setdefault("actions", None)
    context.setdefault("trigger", "sse:task delay:300ms")
    return templates.TemplateResponse(
        request,
        template if body_only else "layout.html",
        {
            "body": template,
            "principal": principal,
            "csrf": csrf_of(request, state) or "",
            "head": 0 if body_only else state.reads.event_head(),  # the layout's feed only
            "nav": NAV,
            "path": request.url.path,
            "now": state.corral.clock.now(),
            "can_operate": principal.allows("operator"),
            **context,
        },
        status_code=status,
    )
