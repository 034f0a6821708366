"""`create_app`: the web process's FastAPI app: the REST API under /api/v1 and the dashboard,
behind default-deny authentication, strict security headers and no CORS at all (a page on
another origin can't read a response, and unsafe requests from one are refused: deps.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import App, __version__
from . import problems
from .api import api_router
from .deps import Viewer
from .state import WebSettings, WebState

STATIC = Path(__file__).parent / "static"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; "
    "object-src 'none'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]


class SecurityHeaders:
    """Adds the security headers to every response (a plain ASGI middleware, so streamed
    responses such as the live feed pass through untouched)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(k, v) for k, v in HEADERS if k not in present]
                if not scope["path"].startswith("/static/"):
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(corral_app: App, settings: WebSettings | None = None) -> FastAPI:
    """The web app serving `corral_app`'s store."""
    web = FastAPI(
        title="corral",
        version=__version__,
        description="The REST API of corral: tasks, workflows, groups, schedules, backfills "
        "and alerts. Every route but /api/v1/health needs a token: "
        "`Authorization: Bearer <token>` (`corral tokens create`).",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    web.state.web = WebState(corral_app, settings or WebSettings())
    problems.install(web)
    web.include_router(api_router())

    @web.get("/api/v1/openapi.json", include_in_schema=False)
    def openapi(principal: Viewer) -> dict[str, Any]:
        return web.openapi()

    from .dashboard import router as dashboard_router
    from .metrics import router as metrics_router

    web.include_router(metrics_router)
    web.include_router(dashboard_router)
    if STATIC.is_dir():
        web.mount("/static", StaticFiles(directory=STATIC), name="static")
    web.add_middleware(SecurityHeaders)
    return web
