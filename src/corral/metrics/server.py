"""The /metrics endpoint of a corral process: one registry per process (no global), holding the
cluster collector (scheduler and run; a worker when asked) and the worker middleware's figures
(worker and run), served over HTTP by prometheus_client on `--metrics-bind HOST:PORT`."""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server

from ..clock import Clock
from ..errors import ConfigError
from ..scheduler.service import Scheduler
from ..store import Store
from .cluster import DEFAULT_TOP_GROUPS, DEFAULT_TTL, ClusterCollector
from .scheduler import SchedulerCollector
from .schedules import watch_lateness
from .worker import WorkerMetrics

log = logging.getLogger("corral.metrics")
LOOPBACK = "127.0.0.1"


def parse_bind(value: str, field: str = "--metrics-bind") -> tuple[str, int]:
    """HOST:PORT, [IPv6]:PORT, or PORT alone (on the loopback); ConfigError naming `field`."""
    text = value.strip()
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = LOOPBACK, text
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host:
        raise ConfigError(f"{field}: {value!r} has no host before the port (HOST:PORT)")
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(f"{field}: port must be a whole number, got {port_text!r}") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"{field}: port must be within 0..65535, got {port}")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if any(c.isspace() or c in "/[]@" for c in host):
            raise ConfigError(f"{field}: {host!r} is not a host name or address") from None
    return host, port


@dataclass
class MetricsOptions:
    bind: tuple[str, int]
    top_groups: int | None = DEFAULT_TOP_GROUPS
    """Groups shown by name (the rest: `other`); None: every group."""
    ttl: float = DEFAULT_TTL
    """Seconds the cluster figures are cached between scrapes."""


class Exporter:
    """A process's registry and, once `start`ed, its HTTP server."""

    def __init__(self, store: Store, clock: Clock, options: MetricsOptions, *, cluster: bool,
                 worker: bool) -> None:  # fmt: skip
        self.options = options
        self.registry = CollectorRegistry(auto_describe=False)
        self.cluster: ClusterCollector | None = None
        self.worker: WorkerMetrics | None = None
        if cluster:
            self.cluster = ClusterCollector(
                store, clock, top_groups=options.top_groups, ttl=options.ttl
            )
            self.registry.register(self.cluster)
        if worker:
            self.worker = WorkerMetrics(self.registry, clock)
        self._server: Any = None

    def add_scheduler(self, scheduler: Scheduler) -> None:
        """Serve this process's scheduler figures too (its schedule clock's fire lateness)."""
        self.registry.register(SchedulerCollector(scheduler))
        watch_lateness(self.registry, scheduler.services)

    def start(self) -> tuple[str, int]:
        """Serve /metrics; the address bound (a port 0 is given one)."""
        host, port = self.options.bind
        try:
            server, _thread = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            raise ConfigError(f"--metrics-bind: can't listen on {host}:{port}: {exc}") from None
        self._server = server
        bound = (host, int(server.server_port))
        log.info("metrics on http://%s:%d/metrics", *bound)
        return bound

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
