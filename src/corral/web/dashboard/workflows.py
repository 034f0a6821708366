"""A workflow's page: its DAG as an inline SVG coloured by state (corral.web.dashboard.graph
lays it out; no JS library), its counts by state, and for an operator its cancel button (the
API's POST /api/v1/workflows/{id}/cancel). A workflow outside a scoped
token's groups is 404, as if it did not exist."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from ...errors import TaskNotFound
from ...readside import MAX_PAGE
from ..deps import Reads, Viewer
from .graph import NODE_H, NODE_W, layout
from .render import page

router = APIRouter(include_in_schema=False)

GRAPH_MAX = 300
"""The most tasks a workflow's graph draws (its newest)."""


@router.get("/workflows/{workflow_id}")
def workflow_page(
    request: Request,
    principal: Viewer,
    reads: Reads,
    workflow_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
) -> Response:
    graph = reads.workflow(workflow_id, limit=min(GRAPH_MAX, MAX_PAGE), scope=principal.scope)
    if not principal.sees(graph.status.group):
        raise TaskNotFound(f"no workflow with id {workflow_id}")
    return page(
        request,
        principal,
        "workflow.html",
        title=f"Workflow {workflow_id}: {graph.status.name}",
        graph=graph,
        wf=graph.status,
        layout=layout(graph.tasks, graph.edges),
        node_w=NODE_W,
        node_h=NODE_H,
        actions="workflow_actions.html" if principal.allows("operator") else None,
    )
