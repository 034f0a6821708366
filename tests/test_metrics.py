"""Prometheus metrics on every backend: each cluster figure checked against what the test did
(submit N, start S, cap C, workers W), the desired-workers signal on a capped, a rate-limited and
an exclusive backlog, bounded group labels with 10,000 groups, a worker's own figures (attempts
by outcome, the wait histogram's count equal to the attempts started, the process executor's
runs included), the endpoint's cache between scrapes, and bad input."""

from __future__ import annotations

import random
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import T0, Services, new_task, register_worker, start, submit, wait_until
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

import corral
from corral import ratelimit
from corral.admission import admissible, decide
from corral.clock import ManualClock
from corral.errors import ConfigError
from corral.lifecycle import State
from corral.metrics import Exporter, MetricsOptions, exported_names, parse_bind
from corral.metrics.cluster import ClusterCollector, families, read_figures
from corral.metrics.names import ALL, OTHER_GROUP
from corral.metrics.scheduler import SchedulerCollector
from corral.metrics.worker import WorkerMetrics
from corral.model import DispatchSnapshot, GroupConfig, ReadyTask
from corral.scheduler.service import Scheduler
from corral.store import Store
from corral.store.contract import InsertParams
from corral.worker.worker import WorkerConfig


def samples(registry_or_families: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample as {(name, sorted labels): value}."""
    fams = (
        registry_or_families.collect()
        if isinstance(registry_or_families, CollectorRegistry)
        else registry_or_families
    )
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for fam in fams for s in fam.samples}


def value(found: dict[Any, float], name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def figures_of(store: Store, now: float = T0 + 100, top: int | None = 20) -> dict[Any, float]:
    return samples(families(read_figures(store, now, top)))


# -- the admission policy's count (pure) ---------------------------------------------------------


def snap(**kw: Any) -> DispatchSnapshot:
    kw.setdefault("capacity", {})
    kw.setdefault("active_by_pool", {})
    kw.setdefault("active_by_group", {})
    kw.setdefault("groups", {})
    return DispatchSnapshot(**kw)


def test_admissible_counts_a_capped_group_only_up_to_its_cap() -> None:
    snapshot = snap(groups={"big": GroupConfig("big", max_parallel=3)},
                    active_by_group={"big": 1}, active_by_pool={"p": 1})  # fmt: skip
    assert admissible(snapshot, {("p", "big"): 1000, ("p", "small"): 4}) == {"p": 2 + 4}


def test_admissible_counts_rate_limit_tokens_and_exclusive_steps() -> None:
    rl = ratelimit.parse("10/minute", 5)
    ready = [ReadyTask(i, "p", "ex", 0, T0, exclusive=True) for i in range(1, 3)]
    ready += [ReadyTask(10 + i, "p", "typed", 0, T0, rate_key="api") for i in range(3)]
    snapshot = snap(
        groups={"limited": GroupConfig("limited", rate_limit=rl)},
        ready=ready,
        rate_limits={"api": ratelimit.parse("1/minute", 2)},
    )
    counts = {("p", "limited"): 50, ("p", "ex"): 2, ("p", "typed"): 3}
    # limited: 5 tokens in its full bucket; ex: one exclusive step at a time; typed: 2 tokens
    assert admissible(snapshot, counts, T0) == {"p": 5 + 1 + 2}
    held = snap(active_by_group={"ex": 1}, ready=ready[:1])
    assert admissible(held, {("p", "ex"): 1}) == {"p": 0}


@pytest.mark.parametrize("seed", range(40))
def test_admissible_equals_what_decide_admits_with_unlimited_slots(seed: int) -> None:
    """The same rules: on a snapshot holding every ready task, the count is what `decide`
    admits when every pool has more slots than tasks."""
    rng = random.Random(seed)
    groups = [f"g{i}" for i in range(rng.randint(1, 6))]

    def limit() -> ratelimit.RateLimit | None:
        return rng.choice([None, ratelimit.parse("1/minute", rng.randint(1, 4))])

    configs = {
        g: GroupConfig(g, max_parallel=rng.choice([None, 1, 2, 5]), rate_limit=limit())
        for g in groups
    }
    ready, counts = [], {}
    for i in range(rng.randint(1, 40)):
        group, pool = rng.choice(groups), rng.choice(["p", "q"])
        exclusive, key = rng.random() < 0.1, rng.choice([None, None, "api"])
        ready.append(ReadyTask(i + 1, pool, group, rng.randint(0, 2), T0 + i, exclusive=exclusive,
                               rate_key=key))  # fmt: skip
        counts[(pool, group)] = counts.get((pool, group), 0) + 1
    held = {g: rng.randint(0, 2) for g in groups if rng.random() < 0.4}
    snapshot = snap(groups=configs, ready=ready, active_by_group=held,
                    rate_limits={"api": ratelimit.parse("1/minute", rng.randint(1, 6))},
                    exclusive_groups=frozenset(g for g in held if rng.random() < 0.2))  # fmt: skip
    unlimited = replace(snapshot, capacity={"p": 1000, "q": 1000})
    admitted = decide(unlimited, T0).decisions
    expected = {p: sum(d.pool == p for d in admitted) for p in ("p", "q")}
    got = admissible(snapshot, counts, T0)
    assert {p: got.get(p, 0) for p in ("p", "q")} == expected


# -- cluster figures, on both backends -----------------------------------------------------------


def test_cluster_figures_match_what_the_test_did(store: Store) -> None:
    register_worker(store, "w1", concurrency=4)
    register_worker(store, "w2", concurrency=6)
    store.group_configure(GroupConfig("capped", max_parallel=2))
    ids = [submit(store, now=T0 + i, group="capped") for i in range(7)]
    ids += [submit(store, now=T0 + 10 + i, group="free") for i in range(3)]
    submit(store, now=T0, group="free", pool="other")
    started = [start(store, ids[0], T0 + 20), start(store, ids[7], T0 + 20)]
    assert len(started) == 2
    found = figures_of(store, now=T0 + 100)
    assert value(found, "corral_tasks", pool="default", state="ready") == 8
    assert value(found, "corral_tasks", pool="default", state="running") == 2
    assert value(found, "corral_tasks", pool="other", state="ready") == 1
    # the oldest ready task of `default` is capped's second, ready since T0 + 1
    assert value(found, "corral_oldest_ready_age_seconds", pool="default") == pytest.approx(99)
    assert value(found, "corral_oldest_ready_age_seconds", pool="other") == pytest.approx(100)
    assert value(found, "corral_workers", pool="default") == 2
    assert value(found, "corral_worker_slots", pool="default") == 10
    assert value(found, "corral_worker_free_slots", pool="default") == 8  # one each running
    assert value(found, "corral_group_tasks", group="capped", state="ready") == 6
    assert value(found, "corral_group_active_tasks", group="capped") == 1
    assert value(found, "corral_group_max_parallel", group="capped") == 2
    assert ("corral_group_max_parallel", (("group", "free"),)) not in found
    assert value(found, "corral_groups_backlogged") == 2
    # desired: 2 held + capped's one free slot under its cap + free's 2 ready tasks
    assert value(found, "corral_desired_workers", pool="default") == 2 + 1 + 2
    assert value(found, "corral_desired_workers", pool="other") == 1
    # waits of the recent starts: capped's first waited 20 s, free's first 10 s
    assert value(found, "corral_group_recent_wait_seconds", group="capped", stat="max") == 20
    assert value(found, "corral_group_recent_wait_seconds", group="free", stat="mean") == 10


def test_desired_sums_the_groups_nothing_bounds_and_counts_each_under_a_default_cap(
    store: Store,
) -> None:
    """The signal reads the bounded groups' own counts and sums the rest per pool (past the
    heads it reads: 300 groups); with a default cap every group is bounded and counted."""
    store.group_configure(GroupConfig("capped", max_parallel=2))
    tasks = [new_task(group=f"g{i:03d}") for i in range(300) for _ in range(3)]
    tasks += [new_task(group="capped")] * 10 + [new_task(group="other-pool", pool="p2")] * 4
    store.task_insert_many(InsertParams(tasks, T0))
    found = figures_of(store)
    assert value(found, "corral_desired_workers", pool="default") == 900 + 2
    assert value(found, "corral_desired_workers", pool="p2") == 4
    store.group_configure(GroupConfig(corral.model.DEFAULTS_GROUP, max_parallel=1))
    found = figures_of(store)
    assert value(found, "corral_desired_workers", pool="default") == 300 + 2
    assert value(found, "corral_desired_workers", pool="p2") == 1


def test_a_backlog_held_back_by_one_groups_cap_asks_for_no_more_workers(store: Store) -> None:
    register_worker(store, "w1", concurrency=4)
    store.group_configure(GroupConfig("pipeline", max_parallel=3))
    store.task_insert_many(InsertParams([new_task(group="pipeline")] * 500, T0))
    before = figures_of(store)
    assert value(before, "corral_tasks", pool="default", state="ready") == 500
    assert value(before, "corral_desired_workers", pool="default") == 3
    first = store.task_list(corral.model.TaskQuery(limit=1000))[-1].id
    start(store, first, T0 + 1)
    after = figures_of(store)
    assert value(after, "corral_desired_workers", pool="default") == 3  # 1 held + 2 under cap


def test_desired_workers_honours_named_rate_limits_and_exclusive_steps(store: Store) -> None:
    register_worker(store, "w1", concurrency=4)
    store.rate_limit_configure("warehouse", ratelimit.parse("1/minute", 4))
    store.task_insert_many(InsertParams([new_task(group="g", rate_key="warehouse")] * 30, T0))
    store.task_insert_many(InsertParams([new_task(group="steps", exclusive=True)] * 5, T0))
    store.ready_groups_refresh(1000)  # what the leader does each round
    found = figures_of(store, now=T0 + 1)
    assert value(found, "corral_desired_workers", pool="default") == 4 + 1


def test_group_labels_stay_bounded_with_10000_groups(store: Store) -> None:
    tasks = [new_task(group=f"g{i:05d}") for i in range(10_000)]
    tasks += [new_task(group="g00042")] * 5  # the top group by backlog
    store.task_insert_many(InsertParams(tasks, T0))
    found = figures_of(store, top=20)
    groups = {dict(labels).get("group") for (name, labels) in found if name == "corral_group_tasks"}
    assert len(groups) == 21 and OTHER_GROUP in groups and "g00042" in groups
    total = sum(v for (n, labels), v in found.items()
                if n == "corral_group_tasks" and dict(labels)["state"] == "ready")  # fmt: skip
    assert total == 10_005
    assert value(found, "corral_group_tasks", group="g00042", state="ready") == 6
    assert value(found, "corral_group_tasks", group=OTHER_GROUP, state="ready") == 10_005 - 6 - 19
    everyone = figures_of(store, top=None)
    assert len({dict(lb)["group"] for (n, lb) in everyone if n == "corral_group_tasks"}) == 10_000


def test_the_collector_reads_once_per_ttl_whatever_the_scrapes(store: Store) -> None:
    submit(store)
    collector = ClusterCollector(store, ManualClock(T0), ttl=60)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    for _ in range(5):
        assert value(samples(registry), "corral_tasks", pool="default", state="ready") == 1
    assert collector.reads == 1
    collector.ttl = 0
    submit(store)
    assert value(samples(registry), "corral_tasks", pool="default", state="ready") == 2
    assert collector.reads == 2


def test_a_failed_read_is_counted_and_gives_no_cluster_figures(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    collector = ClusterCollector(store, ManualClock(T0), ttl=0)

    def down(*_: object) -> None:
        raise corral.errors.DatabaseError("the database is down")

    monkeypatch.setattr(store, "task_count_groups", down)
    found = samples(list(collector.collect()))
    assert value(found, "corral_metrics_read_errors_total") == 1
    assert not any(name == "corral_tasks" for name, _ in found)


# -- a worker's own figures, on both backends ----------------------------------------------------


@pytest.fixture
def metered(app: corral.App) -> Iterator[tuple[corral.App, CollectorRegistry, WorkerMetrics]]:
    registry = CollectorRegistry(auto_describe=False)
    yield app, registry, WorkerMetrics(registry, app.clock)


def test_worker_counts_attempts_by_outcome_and_the_wait_of_each_start(
    metered: tuple[corral.App, CollectorRegistry, WorkerMetrics], services: Any
) -> None:
    app, registry, middleware = metered

    @app.task(name="ok")
    def ok(ctx: corral.Context) -> int:
        return 1

    @app.task(name="boom", max_retries=1, backoff=corral.Backoff(base=0.01, jitter=0.0))
    def boom(ctx: corral.Context) -> None:
        raise ValueError("no")

    @app.task(name="child", executor="process", pool="proc")
    def child(ctx: corral.Context) -> int:
        return 2

    n, k, c = 6, 3, 2
    ids = [ok.submit() for _ in range(n)] + [boom.submit() for _ in range(k)]
    ids += [child.submit() for _ in range(c)]
    config = WorkerConfig(concurrency=4, heartbeat=0.1, grace=2.0, pools=("default", "proc"),
                          middleware=[middleware])  # fmt: skip
    svc: Services = services(app, worker=config)
    done = {State.SUCCEEDED, State.DEAD}
    wait_until(lambda: all(app.get(i).state in done for i in ids), timeout=30)
    svc.stop()
    found = samples(registry)
    assert value(found, "corral_attempts_total", task_type="ok", outcome="succeeded") == n
    assert value(found, "corral_attempts_total", task_type="boom", outcome="retried") == k
    assert value(found, "corral_attempts_total", task_type="boom", outcome="failed") == k
    assert value(found, "corral_attempts_total", task_type="child", outcome="succeeded") == c
    assert value(found, "corral_attempt_duration_seconds_count", task_type="child",
                 outcome="succeeded") == c  # fmt: skip
    started = n + 2 * k + c
    waits = sum(v for (name, _), v in found.items() if name == "corral_task_wait_seconds_count")
    assert waits == started
    assert value(found, "corral_task_wait_seconds_count", pool="proc", task_type="child") == c
    assert value(found, "corral_worker_running_attempts") == 0


# -- the endpoint --------------------------------------------------------------------------------


def test_the_endpoint_serves_cluster_and_worker_figures(app: corral.App) -> None:
    app.store.task_insert_many(InsertParams([new_task()] * 3, app.clock.now()))
    exporter = Exporter(app.store, app.clock, MetricsOptions(("127.0.0.1", 0)),
                        cluster=True, worker=True)  # fmt: skip
    host, port = exporter.start()
    try:
        body = urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=10).read().decode()
    finally:
        exporter.close()
    names = {s.name for fam in text_string_to_metric_families(body) for s in fam.samples}
    assert 'corral_tasks{pool="default",state="ready"} 3.0' in body
    assert "corral_desired_workers" in names and "corral_worker_running_attempts" in names
    assert names <= exported_names()


def test_every_exported_name_follows_the_naming_rules() -> None:
    for spec in ALL:
        assert spec.name.startswith("corral_")
        assert spec.name.endswith("_total") == (spec.kind == "counter"), spec.name
        assert not {"task_id", "host", "hostname", "worker_id"} & set(spec.labels)


@pytest.mark.parametrize(
    ("bind", "message"),
    [
        ("127.0.0.1:http", "port must be a whole number"),
        ("127.0.0.1:70000", "within 0..65535"),
        (":9000", "no host"),
        ("bad host:9000", "is not a host name"),
    ],
)
def test_a_bad_bind_is_refused_naming_the_option(bind: str, message: str) -> None:
    with pytest.raises(ConfigError, match=f"--metrics-bind: .*{message}"):
        parse_bind(bind)


def test_a_bind_without_host_is_on_the_loopback() -> None:
    assert parse_bind("9464") == ("127.0.0.1", 9464)
    assert parse_bind("[::1]:9464") == ("::1", 9464)


def test_the_reference_lists_every_metric_with_its_type_and_labels() -> None:
    doc = (Path(__file__).parent.parent / "docs" / "metrics.md").read_text()
    for spec in ALL:
        row = next((line for line in doc.splitlines() if line.startswith(f"| `{spec.name}` |")),
                   None)  # fmt: skip
        assert row is not None, f"{spec.name} is not in docs/metrics.md's reference"
        cells = [c.strip() for c in row.split("|")[1:-1]]
        assert cells[1] == spec.kind and cells[2] == ", ".join(spec.labels), row


def test_a_scheduler_counts_the_lost_attempts_its_reaper_found(store: Store) -> None:
    register_worker(store, "w1", concurrency=4, lease=10)
    lost = [submit(store, name=name) for name in ("load", "load", "send")]
    for task_id in lost:
        start(store, task_id, T0)  # leases until T0 + 30
    scheduler = Scheduler(store, clock=ManualClock(T0))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SchedulerCollector(scheduler))
    scheduler.run_once(T0 + 10)
    assert [n for n, _ in samples(registry) if n == "corral_attempts_lost_total"] == []
    scheduler.run_once(T0 + 60)
    found = samples(registry)
    assert value(found, "corral_attempts_lost_total", task_type="load") == 2
    assert value(found, "corral_attempts_lost_total", task_type="send") == 1
    assert value(found, "corral_scheduler_work_total", service="reap") == 3
    assert value(found, "corral_scheduler_leader") == 0  # run_once alone takes no leadership
