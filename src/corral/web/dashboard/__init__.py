"""The dashboard: server-rendered pages (Jinja2 and htmx, vendored) over the same API a script
calls. Its routes are added to `router`: one module a concept (the cluster's figures, tasks,
workflows, schedules and backfills, the live feed, signing in)."""

from __future__ import annotations

from fastapi import APIRouter

from . import cluster, live, schedules, signin, tasks, workflows

router = APIRouter(include_in_schema=False)
for _module in (signin, cluster, tasks, workflows, schedules, live):
    router.include_router(_module.router)
