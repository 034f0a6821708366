"""corral web: the REST API and the dashboard (extra `corral[web]`), secure by default: every
route but the health check needs a token; see docs/web-security.md. `create_app` needs the
extra; the tokens (corral.web.auth) need only the core, so `corral tokens` runs without it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import create_app
    from .state import WebSettings

__all__ = ["WebSettings", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from .app import create_app

        return create_app
    if name == "WebSettings":
        from .state import WebSettings

        return WebSettings
    raise AttributeError(name)
