"""Prometheus metrics of corral (prometheus_client): the cluster figures read from the store
(corral.metrics.cluster), the autoscaling signal (corral.metrics.desired), a worker's own figures
(corral.metrics.worker) and the endpoint (corral.metrics.server). Every name: .names."""

from __future__ import annotations

from .names import ALL, CLUSTER, SCHEDULES, WORKER, MetricSpec, exported_names
from .server import Exporter, MetricsOptions, parse_bind

__all__ = [
    "ALL",
    "CLUSTER",
    "SCHEDULES",
    "WORKER",
    "Exporter",
    "MetricSpec",
    "MetricsOptions",
    "exported_names",
    "parse_bind",
]
