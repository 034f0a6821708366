"""A worker process's own figures, counted by a middleware (corral.worker.middleware) around
every attempt, whatever its executor: a `process` handler's run is timed and counted by its
parent worker, so the process executor's children are included without a registry of their
own. Each worker process exports its own series; Prometheus sums them across processes.

The wait histogram is observed here, by the worker that starts an attempt (its start less the
task's ready_at, both on the store's clock): the cheapest cluster-wide wait that counts every
attempt exactly once, with no read of the store and no event consumer to keep up."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ..clock import Clock
from ..lifecycle import State, next_state
from ..worker.middleware import Middleware, Run
from .names import RUN_BUCKETS, WAIT_BUCKETS, spec


def outcome_label(run: Run) -> str:
    """The attempt's outcome as counted: a failure with a retry left is `retried`."""
    outcome = run.outcome or "released"
    if outcome == "failed":
        task = run.task
        target = next_state(
            "failed", failures_before=task.failures, max_retries=task.max_retries,
            on_timeout="retry",
        )  # fmt: skip
        return "failed" if target == State.DEAD else "retried"
    return str(outcome)


class WorkerMetrics(Middleware):
    """Counts each attempt into `registry`: its wait at the start, its run time and outcome at
    the end. `clock`: the worker's (the store's) clock, the one ready_at was written with."""

    def __init__(self, registry: CollectorRegistry, clock: Clock) -> None:
        self.clock = clock
        w, a, d, r = (spec(n) for n in (
            "corral_task_wait_seconds", "corral_attempts_total",
            "corral_attempt_duration_seconds", "corral_worker_running_attempts",
        ))  # fmt: skip
        self.wait = Histogram(w.name, w.help, w.labels, registry=registry, buckets=WAIT_BUCKETS)
        self.attempts = Counter(a.name.removesuffix("_total"), a.help, a.labels,
                                registry=registry)  # fmt: skip
        self.duration = Histogram(d.name, d.help, d.labels, registry=registry, buckets=RUN_BUCKETS)
        self.running = Gauge(r.name, r.help, registry=registry)

    def before_run(self, run: Run) -> None:
        task = run.task
        self.running.inc()
        if task.ready_at is not None:
            wait = max(0.0, self.clock.now() - task.ready_at)
            self.wait.labels(task.pool, task.name).observe(wait)

    def after_run(self, run: Run) -> None:
        self.running.dec()
        outcome = outcome_label(run)
        self.attempts.labels(run.name, outcome).inc()
        if run.duration is not None:
            self.duration.labels(run.name, outcome).observe(run.duration)
