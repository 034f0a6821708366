"""The cluster-wide figures on /metrics: read from the store's bounded reads (never a scan of
history per scrape) and cached for `ttl` seconds, so any number of scrapes within it cost one
read. Each read is: the unfinished tasks counted by group, pool and state (each unfinished
state's partial index: the cost follows the backlog), the oldest ready task per pool (the ready
tasks' index), the live workers, the configured groups, the starts of the last 15 minutes (at
most 5000, the index on the first start), the desired-workers signal (corral.metrics.desired),
and the stored schedules and running backfills (corral.metrics.schedules: a row each).

Group labels stay bounded: the `top_groups` groups by backlog (ready, then admitted and running)
are shown by name, every other group is summed into `other`; `top_groups=None` shows every group
(for an operator whose set of groups is small)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..clock import Clock
from ..lifecycle import State
from ..model import DEFAULTS_GROUP, GroupConfig, WorkerRecord
from ..read_model import GroupCounts, RecentStart
from ..readside import SAMPLE, WINDOW, waits
from ..store import Store
from ..store.contract.schedules import BackfillRow, ScheduleRow
from .desired import desired_slots
from .names import OTHER_GROUP, spec
from .schedules import schedule_families

log = logging.getLogger("corral.metrics")
UNFINISHED = (State.WAITING, State.READY, State.ADMITTED, State.RUNNING, State.RETRY_WAIT)
DEFAULT_TOP_GROUPS = 20
DEFAULT_TTL = 5.0


@dataclass(frozen=True)
class Figures:
    """One read of the cluster figures."""

    now: float
    counts: GroupCounts
    """The pools' counts, and the top groups' (the `top` the read was asked for)."""
    oldest_ready: dict[str, float]
    workers: list[WorkerRecord]
    configs: dict[str, GroupConfig]
    starts: list[RecentStart]
    desired: dict[str, int]
    read_seconds: float
    schedules: list[ScheduleRow] = field(default_factory=list)
    backfills: list[BackfillRow] = field(default_factory=list)


def read_figures(store: Store, now: float, top: int | None = DEFAULT_TOP_GROUPS) -> Figures:
    """One read; `top`: the groups shown by name (None: every group)."""
    began = time.monotonic()
    counts = store.task_count_groups(top)
    configs = {c.name: c for c in store.group_list()}
    ready = {pool: n for (pool, state), n in counts.by_pool.items() if state == State.READY}
    return Figures(
        now=now,
        counts=counts,
        oldest_ready=store.task_oldest_ready(),
        workers=store.worker_list(now),
        configs=configs,
        starts=store.task_recent_starts(now - WINDOW, SAMPLE),
        desired=desired_slots(store, now, ready, configs),
        schedules=store.schedule_list(),
        backfills=store.backfill_list(True),
        read_seconds=time.monotonic() - began,
    )


def families(figures: Figures) -> list[Metric]:
    """The cluster metric families of one read (pure: the tests check them against the read).
    Its cost follows the pools and the groups shown, never the number of groups."""
    fam = {name: _gauge(name) for name in (
        "corral_tasks", "corral_oldest_ready_age_seconds", "corral_workers",
        "corral_worker_slots", "corral_worker_free_slots", "corral_desired_workers",
        "corral_group_tasks", "corral_group_active_tasks", "corral_group_max_parallel",
        "corral_group_recent_wait_seconds", "corral_groups_backlogged",
        "corral_metrics_read_seconds",
    )}  # fmt: skip
    by_pool = {(pool, str(state)): n for (pool, state), n in figures.counts.by_pool.items()}
    by_group: dict[tuple[str, str], int] = {}
    others = {str(state): 0 for state in UNFINISHED}
    for (_, state), n in figures.counts.by_pool.items():
        others[str(state)] = others.get(str(state), 0) + n
    shown = {c.group for c in figures.counts.groups}
    for c in figures.counts.groups:
        by_group[(c.group, str(c.state))] = by_group.get((c.group, str(c.state)), 0) + c.count
        others[str(c.state)] -= c.count
    if any(others.values()):
        by_group |= {(OTHER_GROUP, state): n for state, n in others.items()}
    pools = sorted(
        {p for p, _ in by_pool} | {p for w in figures.workers for p in w.pools}
        | set(figures.desired)
    )  # fmt: skip
    for pool in pools:
        for state in UNFINISHED:
            fam["corral_tasks"].add_metric([pool, str(state)], by_pool.get((pool, str(state)), 0))
        oldest = figures.oldest_ready.get(pool)
        age = 0.0 if oldest is None else max(0.0, figures.now - oldest)
        fam["corral_oldest_ready_age_seconds"].add_metric([pool], age)
        serving = [w for w in figures.workers if pool in w.pools]
        fam["corral_workers"].add_metric([pool], len(serving))
        fam["corral_worker_slots"].add_metric([pool], sum(w.concurrency for w in serving))
        free = sum(max(0, w.concurrency - w.running) for w in serving)
        fam["corral_worker_free_slots"].add_metric([pool], free)
        fam["corral_desired_workers"].add_metric([pool], figures.desired.get(pool, 0))
    labels = sorted({g for g, _ in by_group})
    for group in labels:
        for state in UNFINISHED:
            value = by_group.get((group, str(state)), 0)
            fam["corral_group_tasks"].add_metric([group, str(state)], value)
        active = by_group.get((group, "admitted"), 0) + by_group.get((group, "running"), 0)
        fam["corral_group_active_tasks"].add_metric([group], active)
        config = figures.configs.get(group) or figures.configs.get(DEFAULTS_GROUP)
        if group != OTHER_GROUP and config is not None and config.max_parallel is not None:
            fam["corral_group_max_parallel"].add_metric([group], config.max_parallel)
    recent: dict[str, list[float]] = {}
    for s in figures.starts:
        recent.setdefault(s.group if s.group in shown else OTHER_GROUP, []).append(s.wait)
    for group in sorted(recent):
        w = waits(recent[group])
        for stat, wait in (("mean", w.mean), ("p95", w.p95), ("max", w.max)):
            if wait is not None:
                fam["corral_group_recent_wait_seconds"].add_metric([group, stat], wait)
    fam["corral_groups_backlogged"].add_metric([], figures.counts.backlogged)
    fam["corral_metrics_read_seconds"].add_metric([], figures.read_seconds)
    schedules = schedule_families(figures.now, figures.schedules, figures.backfills)
    return [*fam.values(), *schedules]


class ClusterCollector(Collector):
    """The cluster figures as a prometheus_client collector: one store read per `ttl` seconds
    at most (monotonic), whatever the number of scrapes; a failed read is logged, counted
    (corral_metrics_read_errors_total) and gives no cluster figures for that scrape."""

    def __init__(
        self, store: Store, clock: Clock, *, top_groups: int | None = DEFAULT_TOP_GROUPS,
        ttl: float = DEFAULT_TTL,
    ) -> None:  # fmt: skip
        self.store = store
        self.clock = clock
        self.top = top_groups
        self.ttl = ttl
        self.reads = 0
        self.errors = 0
        self._lock = threading.Lock()
        self._cached: tuple[float, list[Metric]] | None = None

    def collect(self) -> Iterator[Metric]:
        errors = CounterMetricFamily(
            "corral_metrics_read_errors", spec("corral_metrics_read_errors_total").help
        )
        with self._lock:
            cached = self._cached
            if cached is None or time.monotonic() - cached[0] >= self.ttl:
                try:
                    figures = read_figures(self.store, self.clock.now(), self.top)
                    self.reads += 1
                    cached = self._cached = (time.monotonic(), families(figures))
                except Exception as exc:
                    self.errors += 1
                    log.warning("reading the cluster figures for /metrics failed: %s", exc)
                    cached = None
        errors.add_metric([], self.errors)
        yield errors
        if cached is not None:
            yield from cached[1]


def _gauge(name: str) -> GaugeMetricFamily:
    s = spec(name)
    return GaugeMetricFamily(name, s.help, labels=list(s.labels))
