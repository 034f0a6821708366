"""The command line's metrics options (`--metrics-bind`, `--metrics-groups`,
`--metrics-cluster`) of `corral worker`, `corral scheduler` and `corral run`, and the exporter
and worker middleware they lead to."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import click

from .errors import ConfigError

if TYPE_CHECKING:  # imported when --metrics-bind asks: without it, no prometheus_client at all
    from .app import App
    from .metrics.server import Exporter
    from .worker.middleware import Middleware

F = TypeVar("F", bound=Callable[..., Any])


def metrics_options(*, worker: bool) -> Callable[[F], F]:
    """The options; `worker`: the command runs only a worker (it may add --metrics-cluster)."""

    def decorate(fn: F) -> F:
        fn = click.option(
            "--metrics-groups", default="20", show_default=True, metavar="N|all",
            envvar="CORRAL_METRICS_GROUPS",
            help="Groups shown by name on /metrics, the top N by backlog (the rest summed as "
            "`other`); `all` for every group (only when the set of groups is small).",
        )(fn)  # fmt: skip
        if worker:
            fn = click.option(
                "--metrics-cluster", is_flag=True,
                help="Serve the cluster figures too (by default a worker serves its own; the "
                "scheduler serves the cluster's, so N workers don't read them N times).",
            )(fn)  # fmt: skip
        fn = click.option(
            "--metrics-bind", metavar="HOST:PORT", envvar="CORRAL_METRICS_BIND",
            help="Serve Prometheus /metrics here (a port alone: on 127.0.0.1). [default: off]",
        )(fn)  # fmt: skip
        return fn

    return decorate


def top_groups(value: str) -> int | None:
    if value.strip().lower() == "all":
        return None
    try:
        n = int(value)
    except ValueError:
        raise ConfigError(
            f"--metrics-groups must be a whole number or 'all', got {value!r}"
        ) from None
    if not 0 <= n <= 1000:
        raise ConfigError(f"--metrics-groups must be within 0..1000 (or 'all'), got {n}")
    return n


@contextlib.contextmanager
def exporting(
    app: App, bind: str | None, groups: str, *, cluster: bool, worker: bool
) -> Iterator[Exporter | None]:
    """The process's exporter, serving while the block runs (None without --metrics-bind)."""
    if bind is None:
        yield None
        return
    from .metrics.server import Exporter, MetricsOptions, parse_bind

    options = MetricsOptions(parse_bind(bind), top_groups(groups))
    exporter = Exporter(app.store, app.clock, options, cluster=cluster, worker=worker)
    exporter.start()
    try:
        yield exporter
    finally:
        exporter.close()


def worker_middleware(exporter: Exporter | None, log_format: str) -> tuple[Middleware, ...]:
    """The middleware the options add to a worker: its metrics, and with `--log-format json`
    the per-attempt log lines."""
    added: list[Middleware] = []
    if exporter is not None and exporter.worker is not None:
        added.append(exporter.worker)
    if log_format == "json":
        from .worker.attempt_log import AttemptLog

        added.append(AttemptLog())
    return tuple(added)
