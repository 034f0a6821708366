"""The REST API under /api/v1: one router module a resource, listed in ROUTERS. Every route
declares its role (corral.web.deps: Viewer, Operator, Admin); errors are problem documents."""

from __future__ import annotations

import importlib

from fastapi import APIRouter

from ..problems import RESPONSES

ROUTERS = (
    "health",
    "session",
    "bulk",
    "tasks",
    "submit",
    "workflows",
    "groups",
    "pools",
    "schedules",
    "backfills",
    "alerts",
    "tokens",
)
"""The modules under corral.web.api, each with a `router`. `bulk` comes before `tasks`: its
/tasks/bulk/... paths must match before /tasks/{task_id}/..."""


def api_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1", responses=RESPONSES)
    for name in ROUTERS:
        module = importlib.import_module(f"{__name__}.{name}")
        router.include_router(module.router)
    return router
