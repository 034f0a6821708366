"""Every metric corral exports: its name, type, labels and meaning. The one list the docs'
reference, the collectors and the test of the shipped dashboard and alert rules read.

Names follow Prometheus's rules: the `corral_` prefix, base units (seconds), `_total` on
counters. Labels are bounded: pools, task types, states and outcomes are few by nature; a group
label appears only on the top groups by backlog plus `other` (OTHER_GROUP), never a task id or a
host name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["gauge", "counter", "histogram"]
OTHER_GROUP = "other"
"""The label of every group outside the top groups, summed."""


@dataclass(frozen=True)
class MetricSpec:
    name: str
    kind: Kind
    labels: tuple[str, ...]
    help: str
    source: Literal["cluster", "worker", "scheduler"]
    """Who exports it: `cluster` (read from the store by a scheduler, worker or run process with
    --metrics-bind; the same figure from each, so query it with max()), `worker` (each worker
    process counts its own attempts; Prometheus sums them), `scheduler` (each scheduler process
    counts what it did while it led; Prometheus sums them)."""


CLUSTER: tuple[MetricSpec, ...] = (
    MetricSpec(
        "corral_tasks",
        "gauge",
        ("pool", "state"),
        "Unfinished tasks by pool and state (waiting, ready, admitted, running, retry_wait).",
        "cluster",
    ),
    MetricSpec(
        "corral_oldest_ready_age_seconds",
        "gauge",
        ("pool",),
        "Seconds the oldest ready task of the pool has waited since it became ready "
        "(0 with none ready).",
        "cluster",
    ),
    MetricSpec("corral_workers", "gauge", ("pool",), "Live workers serving the pool.", "cluster"),
    MetricSpec(
        "corral_worker_slots",
        "gauge",
        ("pool",),
        "Task slots (concurrency) of the live workers serving the pool.",
        "cluster",
    ),
    MetricSpec(
        "corral_worker_free_slots",
        "gauge",
        ("pool",),
        "Slots of the pool's live workers that run nothing now (a worker serving two "
        "pools counts its free slots in each).",
        "cluster",
    ),
    MetricSpec(
        "corral_desired_workers",
        "gauge",
        ("pool",),
        "Worker slots the admission policy could use now: the slots held (admitted and "
        "running) plus the ready tasks it could admit with unlimited slots, given group "
        "caps, rate limits and exclusive steps. The autoscaling signal.",
        "cluster",
    ),
    MetricSpec(
        "corral_group_tasks",
        "gauge",
        ("group", "state"),
        "Unfinished tasks of the top groups by backlog, and `other` for the rest.",
        "cluster",
    ),
    MetricSpec(
        "corral_group_active_tasks",
        "gauge",
        ("group",),
        "Admitted and running tasks of the top groups (and `other`): what the cap bounds.",
        "cluster",
    ),
    MetricSpec(
        "corral_group_max_parallel",
        "gauge",
        ("group",),
        "The cap (max_parallel) of the top groups that have one.",
        "cluster",
    ),
    MetricSpec(
        "corral_group_recent_wait_seconds",
        "gauge",
        ("group", "stat"),
        "Queue wait (enqueued to first start) of the top groups' tasks that started "
        "in the last 15 minutes: stat is mean, p95 or max.",
        "cluster",
    ),
    MetricSpec("corral_groups_backlogged", "gauge", (), "Groups that have ready tasks.", "cluster"),
    MetricSpec(
        "corral_metrics_read_seconds",
        "gauge",
        (),
        "Seconds the last read of the cluster figures took.",
        "cluster",
    ),
    MetricSpec(
        "corral_metrics_read_errors_total",
        "counter",
        (),
        "Reads of the cluster figures that failed (the scrape then has none of them).",
        "cluster",
    ),
)

WORKER: tuple[MetricSpec, ...] = (
    MetricSpec(
        "corral_task_wait_seconds",
        "histogram",
        ("pool", "task_type"),
        "Seconds from ready to started, observed by the worker that starts the attempt "
        "(every attempt: a retry's wait counts from its backoff's end).",
        "worker",
    ),
    MetricSpec(
        "corral_attempts_total",
        "counter",
        ("task_type", "outcome"),
        "Attempts ended, by outcome: succeeded, failed (no retry left), retried (failed, "
        "retried), timed_out, sliced, cancelled, released (at shutdown), stalled.",
        "worker",
    ),
    MetricSpec(
        "corral_attempt_duration_seconds",
        "histogram",
        ("task_type", "outcome"),
        "Seconds the handler ran, by outcome (process handlers: the child's run).",
        "worker",
    ),
    MetricSpec(
        "corral_worker_running_attempts",
        "gauge",
        (),
        "Attempts this worker process runs now.",
        "worker",
    ),
)

SCHEDULER: tuple[MetricSpec, ...] = (
    MetricSpec(
        "corral_scheduler_leader",
        "gauge",
        (),
        "1 while this scheduler process leads, else 0.",
        "scheduler",
    ),
    MetricSpec(
        "corral_scheduler_work_total",
        "counter",
        ("service",),
        "Work done by each leader service of this process: tasks released, promoted, "
        "reaped, dispatched; rows pruned; tables vacuumed or analyzed (upkeep).",
        "scheduler",
    ),
    MetricSpec(
        "corral_attempts_lost_total",
        "counter",
        ("task_type",),
        "Attempts whose worker was lost (their lease expired), by task type, found by this "
        "process's reaper while it led.",
        "scheduler",
    ),
)

SCHEDULES: tuple[MetricSpec, ...] = (
    MetricSpec(
        "corral_schedule_fires_total",
        "counter",
        ("schedule", "outcome"),
        "Fires the store recorded per schedule, by outcome (fired, skipped, missed): live, "
        "triggered and backfilled; the schedule's own counters, kept when old fires are pruned.",
        "cluster",
    ),
    MetricSpec(
        "corral_schedule_next_fire_timestamp_seconds",
        "gauge",
        ("schedule",),
        "Unix time of the schedule's next logical time (its next fire).",
        "cluster",
    ),
    MetricSpec(
        "corral_schedule_overdue_seconds",
        "gauge",
        ("schedule",),
        "Seconds the schedule's next fire is past due and not yet handled (0 when it is not "
        "due): grows while no scheduler leads or the clock falls behind.",
        "cluster",
    ),
    MetricSpec(
        "corral_schedule_paused",
        "gauge",
        ("schedule",),
        "1 while the schedule is paused (its due fires are recorded missed), else 0.",
        "cluster",
    ),
    MetricSpec(
        "corral_backfill_fires_made",
        "gauge",
        ("schedule",),
        "Fires made so far by the schedule's running backfills.",
        "cluster",
    ),
    MetricSpec(
        "corral_backfill_fires_planned",
        "gauge",
        ("schedule",),
        "Fires the schedule's running backfills make in all (made / planned: their progress).",
        "cluster",
    ),
    MetricSpec(
        "corral_schedule_fire_lateness_seconds",
        "histogram",
        ("schedule",),
        "Seconds from a fire's logical time to when this process's schedule clock made its "
        "tasks (live fires only, a held buffer_one fire included; not triggers or backfills).",
        "scheduler",
    ),
)
"""The schedule metrics: label `schedule` is bounded by the schedules the code declares.
Cluster ones come from corral.metrics.schedules.schedule_families, the lateness from the
schedule clock of a scheduler process (corral.metrics.schedules.watch_lateness)."""

ALL: tuple[MetricSpec, ...] = CLUSTER + WORKER + SCHEDULER + SCHEDULES

WAIT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200)
"""Seconds: queue waits from well under a second to the hours a capped backlog can wait."""
LATENESS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
"""Seconds: a fire made within a clock tick, to one held back an hour (buffer_one, a restart)."""
RUN_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 600, 1800, 3600, 7200)
"""Seconds: run times from a poll of a few seconds to a one-hour slice."""


def exported_names() -> set[str]:
    """Every series name corral exports (a histogram's _bucket, _sum and _count too)."""
    names = set()
    for spec in ALL:
        names.add(spec.name)
        if spec.kind == "histogram":
            names |= {f"{spec.name}_bucket", f"{spec.name}_sum", f"{spec.name}_count"}
    return names


def spec(name: str) -> MetricSpec:
    return next(s for s in ALL if s.name == name)
