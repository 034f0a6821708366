"""The dashboard: server-rendered pages (Jinja2 and htmx, vendored) over the same API a script
calls. Its routes are added to `router`."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
