"""`GET /metrics` on the web process: the cluster figures (corral.metrics.cluster: bounded
reads, cached between scrapes) for Prometheus, like `--metrics-bind` on a scheduler. Behind a
viewer token of every group like every other route: Prometheus sends it with
`authorization: {credentials: <token>}` in its scrape config. A scoped token is refused: the
figures name every group."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from ..metrics.cluster import ClusterCollector
from .deps import State, Viewer
from .problems import Problem

router = APIRouter(include_in_schema=False)


def registry_of(state: State) -> CollectorRegistry:
    registry: CollectorRegistry | None = state.metrics_registry
    if registry is None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(ClusterCollector(state.store, state.corral.clock))
        state.metrics_registry = registry
    return registry


@router.get("/metrics")
def metrics(principal: Viewer, state: State) -> Response:
    if principal.scope:
        raise Problem(403, "Forbidden", "the metrics name every group: use a token that is not "
                      "scoped")  # fmt: skip
    return Response(generate_latest(registry_of(state)), media_type=CONTENT_TYPE_LATEST)
