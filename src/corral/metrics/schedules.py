"""The schedule metrics (names in corral.metrics.names.SCHEDULES).

Cluster figures come with the cluster read (corral.metrics.cluster): the stored schedules (one
row each: their counters, next fire and pause) and the running backfills (their progress), so
a scrape reads one row per schedule and per running backfill, never their fires. The fires by
outcome are the schedule rows' own counters, which the store moves in the fire's transaction
and keeps when retention prunes old fires: a counter that never goes back.

The lateness histogram is observed by the schedule clock of the scheduler process that made
the fire (its `on_fire` hook), as the worker observes the wait: no read, each fire counted once
(a logical time fires once, by the leader of the moment), so Prometheus sums it over the
schedulers."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from ..schedules.service import ScheduleClock
from ..store.contract.schedules import OUTCOMES, BackfillRow, ScheduleRow
from .names import LATENESS_BUCKETS, spec


def schedule_families(
    now: float, schedules: Sequence[ScheduleRow], backfills: Sequence[BackfillRow]
) -> list[Metric]:
    """The cluster schedule families of one read (pure). Removed schedules are left out; a
    running backfill counts under its schedule."""
    live = [row for row in schedules if row.removed_at is None]
    fires = CounterMetricFamily(
        "corral_schedule_fires", spec("corral_schedule_fires_total").help,
        labels=["schedule", "outcome"],
    )  # fmt: skip
    gauges = {name: _gauge(name) for name in (
        "corral_schedule_next_fire_timestamp_seconds", "corral_schedule_overdue_seconds",
        "corral_schedule_paused", "corral_backfill_fires_made", "corral_backfill_fires_planned",
    )}  # fmt: skip
    for row in live:
        counts = {"fired": row.fired, "skipped": row.skipped, "missed": row.missed}
        for outcome in OUTCOMES:
            fires.add_metric([row.name, outcome], counts[outcome])
        gauges["corral_schedule_next_fire_timestamp_seconds"].add_metric([row.name], row.next_at)
        overdue = max(0.0, now - row.next_at)
        gauges["corral_schedule_overdue_seconds"].add_metric([row.name], overdue)
        gauges["corral_schedule_paused"].add_metric([row.name], 1.0 if row.paused else 0.0)
    made: dict[str, int] = {}
    planned: dict[str, int] = {}
    for b in backfills:
        made[b.schedule_name] = made.get(b.schedule_name, 0) + b.made
        planned[b.schedule_name] = planned.get(b.schedule_name, 0) + b.total
    for name in sorted(made):
        gauges["corral_backfill_fires_made"].add_metric([name], made[name])
        gauges["corral_backfill_fires_planned"].add_metric([name], planned[name])
    return [fires, *gauges.values()]


def watch_lateness(registry: CollectorRegistry, services: Iterable[object]) -> Histogram | None:
    """Observe the lateness of every live fire the schedule clocks among `services` make, into
    a histogram of `registry`; None (and no histogram) without a schedule clock."""
    clocks = [s for s in services if isinstance(s, ScheduleClock)]
    if not clocks:
        return None
    s = spec("corral_schedule_fire_lateness_seconds")
    histogram = Histogram(s.name, s.help, s.labels, registry=registry, buckets=LATENESS_BUCKETS)

    def observe(schedule: str, lateness: float) -> None:
        histogram.labels(schedule).observe(lateness)

    for clock in clocks:
        clock.on_fire = observe
    return histogram


def _gauge(name: str) -> GaugeMetricFamily:
    s = spec(name)
    return GaugeMetricFamily(name, s.help, labels=list(s.labels))
