"""Workflows: one workflow as a whole and its DAG (its tasks as nodes with their states, its
dependency links as edges), and cancelling it (operator). A workflow outside a scoped token's
groups is 404, as if it did not exist; a task of the DAG outside them is left out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel

from ...limits import ID_MAX
from ...model import WorkflowStatus
from ..auth import Principal
from ..deps import CorralApp, Operator, Reads, Viewer, record
from ..problems import Problem

router = APIRouter(tags=["workflows"])

WorkflowId = Annotated[int, Path(ge=1, le=ID_MAX, description="The workflow's id.")]
MAX_NODES = 5000
"""The most tasks one DAG shows (`truncated` past it)."""


class NodeOut(BaseModel):
    id: int
    name: str
    group: str
    state: str


class EdgeOut(BaseModel):
    upstream: int
    """The task depended on."""
    downstream: int
    """The task that waits for it."""


class WorkflowOut(BaseModel):
    id: int
    name: str
    group: str
    created_at: float
    state: str
    counts: dict[str, int]
    total: int
    nodes: list[NodeOut]
    edges: list[EdgeOut]
    truncated: bool
    """More than MAX_NODES tasks: the newest shown."""


class WorkflowCancelOut(BaseModel):
    id: int
    cancelled: int
    """Tasks ended at once."""
    requested: int
    """Running tasks asked to stop."""


def visible(app: CorralApp, principal: Principal, workflow_id: int) -> WorkflowStatus:
    status = app.store.workflow_get(workflow_id)
    if status is None or not principal.sees(status.group):
        raise Problem(404, "Not found", f"no workflow with id {workflow_id}")
    return status


@router.get("/workflows/{workflow_id}", response_model=WorkflowOut)
def get_workflow(workflow_id: WorkflowId, principal: Viewer, app: CorralApp, reads: Reads
                 ) -> WorkflowOut:  # fmt: skip
    """A workflow: its state, its tasks counted by state, and its DAG."""
    status = visible(app, principal, workflow_id)
    graph = reads.workflow(workflow_id, limit=MAX_NODES, scope=principal.scope)
    nodes = [NodeOut(id=t.id, name=t.name, group=t.group, state=str(t.state))
             for t in reversed(graph.tasks)]  # fmt: skip  # oldest first: as they were added
    edges = [EdgeOut(upstream=up, downstream=down) for down, up in graph.edges]
    return WorkflowOut(
        id=status.id, name=status.name, group=status.group, created_at=status.created_at,
        state=status.state, counts=status.counts, total=status.total, nodes=nodes, edges=edges,
        truncated=graph.truncated,
    )  # fmt: skip


@router.post("/workflows/{workflow_id}/cancel", response_model=WorkflowCancelOut)
def cancel_workflow(workflow_id: WorkflowId, principal: Operator, app: CorralApp,
                    request: Request) -> WorkflowCancelOut:  # fmt: skip
    """Cancel every unfinished task of the workflow, in one transaction."""
    visible(app, principal, workflow_id)
    stopped, asked = app.cancel_workflow(workflow_id)
    record(request, principal, "workflow.cancel", target=f"workflow:{workflow_id}",
           changed=stopped + asked)  # fmt: skip
    return WorkflowCancelOut(id=workflow_id, cancelled=stopped, requested=asked)
