"""A scheduler process's own figures: whether it leads, the work of each leader service, and the
lost attempts its reaper found (each is found once, by the leader of the moment, so Prometheus's
sum over the schedulers counts each lost attempt once)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..scheduler.reaper import Reaper
from ..scheduler.service import Scheduler
from .names import spec


class SchedulerCollector(Collector):
    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler

    def collect(self) -> Iterator[Metric]:
        work = dict(self.scheduler.work)
        leader = GaugeMetricFamily("corral_scheduler_leader", spec("corral_scheduler_leader").help)
        leader.add_metric([], 1.0 if self.scheduler.is_leader else 0.0)
        yield leader
        services = CounterMetricFamily(
            "corral_scheduler_work", spec("corral_scheduler_work_total").help, labels=["service"]
        )
        for service in self.scheduler.services:
            services.add_metric([service.name], work.get(service.name, 0))
        yield services
        lost = CounterMetricFamily(
            "corral_attempts_lost", spec("corral_attempts_lost_total").help, labels=["task_type"]
        )
        for service in self.scheduler.services:
            if isinstance(service, Reaper):
                for task_type, count in sorted(dict(service.lost).items()):
                    lost.add_metric([task_type], count)
        yield lost
