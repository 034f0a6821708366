"""Schedule metrics on both backends, checked against what the test did with a moved clock:
fires by outcome (the schedules' stored counters), next fire, overdue, paused, the running
backfills' progress, and the lateness histogram the scheduler's schedule clock observes (its
count equals the live fires it made, its sum their lateness)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from schedule_apps import services, three_schedules

import corral
from corral.clock import ManualClock
from corral.metrics import Exporter, MetricsOptions
from corral.metrics.cluster import families, read_figures
from corral.metrics.schedules import watch_lateness
from corral.scheduler.service import Scheduler

HOUR = 3600
T0 = 1_795_000_000 - 1_795_000_000 % HOUR


def samples(fams: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for fam in fams for s in fam.samples}


def value(found: dict[Any, float], name: str, **labels: str) -> float | None:
    return found.get((name, tuple(sorted(labels.items()))))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def app(app_url: str, clock: ManualClock) -> Iterator[corral.App]:
    application = three_schedules(app_url, clock)
    yield application
    application.close()


def cluster(app: corral.App, now: float) -> dict[Any, float]:
    return samples(families(read_figures(app.store, now, 20)))


def test_fires_by_outcome_next_fire_overdue_and_paused(app: corral.App, clock: ManualClock) -> None:
    ticker, _ = services(app)
    ticker.run(T0)
    found = cluster(app, T0)
    for name in ("hourly", "latest"):
        for outcome in ("fired", "skipped", "missed"):
            assert value(found, "corral_schedule_fires_total", schedule=name, outcome=outcome) == 0
        assert value(found, "corral_schedule_next_fire_timestamp_seconds", schedule=name) == (
            T0 + HOUR
        )
    clock.set(T0 + 5 * HOUR + 1)
    ticker.run(clock.now())
    app.schedules.pause("latest")
    found = cluster(app, T0 + 6 * HOUR + 100)  # the next fire, 100 s past due, not yet handled
    assert value(found, "corral_schedule_fires_total", schedule="hourly", outcome="fired") == 5
    assert value(found, "corral_schedule_fires_total", schedule="latest", outcome="fired") == 1
    assert value(found, "corral_schedule_fires_total", schedule="latest", outcome="missed") == 4
    assert value(found, "corral_schedule_next_fire_timestamp_seconds", schedule="hourly") == (
        T0 + 6 * HOUR
    )
    assert value(found, "corral_schedule_overdue_seconds", schedule="hourly") == 100
    assert value(found, "corral_schedule_overdue_seconds", schedule="daily") == 0
    assert value(found, "corral_schedule_paused", schedule="latest") == 1
    assert value(found, "corral_schedule_paused", schedule="hourly") == 0
    names = {dict(labels).get("schedule") for (n, labels) in found if n.startswith("corral_sch")}
    assert names == {"hourly", "latest", "daily"}


def test_a_running_backfills_progress(app: corral.App, clock: ManualClock) -> None:
    _, maker = services(app)
    assert value(cluster(app, T0), "corral_backfill_fires_planned", schedule="daily") is None
    going = app.backfill("daily", start=date(2025, 3, 1), end=date(2025, 6, 8))
    found = cluster(app, T0)
    assert value(found, "corral_backfill_fires_planned", schedule="daily") == going.total == 100
    assert value(found, "corral_backfill_fires_made", schedule="daily") == 0
    made = maker.run(T0)
    assert 0 < made < going.total
    found = cluster(app, T0)
    assert value(found, "corral_backfill_fires_made", schedule="daily") == made
    assert value(found, "corral_schedule_fires_total", schedule="daily", outcome="fired") == made
    app.backfills.pause(going.id)  # a paused backfill is not running: no progress shown
    assert value(cluster(app, T0), "corral_backfill_fires_made", schedule="daily") is None


def test_the_schedule_clock_observes_each_live_fires_lateness(
    app: corral.App, clock: ManualClock
) -> None:
    ticker, _ = services(app)
    registry = CollectorRegistry(auto_describe=False)
    assert watch_lateness(registry, [ticker]) is not None
    assert watch_lateness(CollectorRegistry(), []) is None  # no schedule clock, no histogram
    ticker.run(T0)
    clock.set(T0 + 5 * HOUR + 1)
    ticker.run(clock.now())
    app.schedules.trigger("hourly")  # a trigger is not a live fire: no lateness
    ticker.run(clock.now())
    found = samples(registry.collect())
    name = "corral_schedule_fire_lateness_seconds"
    assert value(found, f"{name}_count", schedule="hourly") == 5
    assert value(found, f"{name}_sum", schedule="hourly") == 10 * HOUR + 5  # 4h+1 .. 0h+1
    assert value(found, f"{name}_count", schedule="latest") == 1  # its missed ones made nothing
    assert value(found, f"{name}_sum", schedule="latest") == 1
    assert value(found, f"{name}_bucket", schedule="latest", le="1.0") == 1


def test_a_scheduler_process_exports_the_lateness(app: corral.App, clock: ManualClock) -> None:
    scheduler = Scheduler(app.store, clock=clock, services=app.schedules.services())
    exporter = Exporter(app.store, clock, MetricsOptions(("127.0.0.1", 0)), cluster=True,
                        worker=False)  # fmt: skip
    exporter.add_scheduler(scheduler)
    scheduler.run_once(T0)
    clock.set(T0 + HOUR + 30)
    scheduler.run_once(clock.now())
    found = samples(exporter.registry.collect())
    assert value(found, "corral_schedule_fire_lateness_seconds_count", schedule="hourly") == 1
    assert value(found, "corral_schedule_fire_lateness_seconds_sum", schedule="hourly") == 30
    assert value(found, "corral_schedule_fires_total", schedule="hourly", outcome="fired") == 1
