"""The demo's workload, shaped like the reference one (WORKLOAD.md): one big pipeline submitted
just before many small ones, a few medium ones, each group capped; and the special cases."""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace

from ..app import Submission
from .tasks import (
    SLICE,
    app,
    binlog_catchup,
    broken_source,
    flaky_api,
    historical_load,
    load_table,
    model_refresh,
    poll_source,
    warehouse_check,
    warehouse_query,
)


@dataclass(frozen=True)
class Pipeline:
    group: str
    kind: str  # "big", "medium" or "small"
    cap: int
    at: float  # seconds after the start when it is submitted
    size: int


def plan(scale: float, time_scale: float, seed: int = 7) -> list[Pipeline]:
    """The pipelines and when they arrive: the big one first, the rest right behind it."""
    rng = random.Random(seed)
    window = 16.0 * time_scale * min(1.0, max(scale, 0.3))
    big = Pipeline("big-pipeline", "big", 6, 0.0, max(3, round(300 * scale)))
    pipelines = [big]
    for i, (size, at) in enumerate([(60, 0.05), (45, 0.35), (30, 0.65)], start=1):
        pipelines.append(
            Pipeline(f"medium-{i}", "medium", 4, at * window, max(2, round(size * scale)))
        )
    smalls = max(2, round(40 * scale))
    for i in range(smalls):
        at = window * (0.02 + 0.9 * (i // 3) / max(1, (smalls - 1) // 3))
        pipelines.append(Pipeline(f"small-{i + 1:02d}", "small", 2, at, rng.randint(2, 9)))
    return sorted(pipelines, key=lambda p: p.at)


def pipeline_tasks(pipeline: Pipeline, rng: random.Random, time_scale: float) -> list[Submission]:
    """Polls, loads and checks of one pipeline (submitted together); its model refresh, which
    depends on all of them, is prepared by `refresh_task`."""
    n = pipeline.size - (1 if pipeline.size >= 3 else 0)
    polls = max(1, round(n * 0.1))
    checks = round(n * 0.15)
    subs = []
    for i in range(n):
        name = f"{pipeline.group}.t{i:03d}"
        if i < polls:
            subs.append(poll_source.prepare(name, rng.uniform(0.02, 0.08) * time_scale,
                                            group=pipeline.group))  # fmt: skip
        elif i < polls + checks:
            subs.append(warehouse_check.prepare(name, rng.uniform(0.005, 0.03) * time_scale,
                                                group=pipeline.group))  # fmt: skip
        else:
            big_table = rng.random() < 0.05
            seconds = rng.uniform(0.5, 1.0) if big_table else rng.uniform(0.04, 0.25)
            subs.append(load_table.prepare(name, seconds * time_scale, group=pipeline.group))
    return subs


def refresh_task(pipeline: Pipeline, rng: random.Random, time_scale: float,
                 upstream: list[int]) -> Submission:  # fmt: skip
    seconds = rng.uniform(0.3, 0.8) * time_scale
    return model_refresh.prepare(f"{pipeline.group}.model", seconds, group=pipeline.group,
                                 depends_on=upstream)  # fmt: skip


@dataclass
class Specials:
    flaky: int
    broken: int
    long_load: int
    query: int
    workflow: int = 0
    binlog: int = 0
    cancelled_at: float | None = None
    submitted: dict[str, int] = field(default_factory=dict)
    """How many tasks each of these groups was given."""


DB_SYNC = "db-sync"
"""The group of the demo's workflow: a binlog catch-up that runs alone, then loads and a check."""


def _submit_workflow(time_scale: float) -> tuple[int, int, int]:
    """A database pipeline as one workflow: a schema check that needs nothing, the exclusive
    binlog catch-up (it waits for the check to end, then runs alone), six loads after it and a
    warehouse check after the loads. Returns the workflow's id, the catch-up's and its number of
    steps."""
    wf = app.workflow("crm-db sync", group=DB_SYNC)
    wf.add(warehouse_check, "crm.schema", 0.1 * time_scale)
    binlog = wf.add(binlog_catchup, "crm-db", 0.3 * time_scale, exclusive=True)
    tables = ("accounts", "contacts", "deals", "notes", "tickets", "users")
    loads = [wf.add(load_table, f"crm.{t}", 0.1 * time_scale, after=[binlog]) for t in tables]
    wf.add(warehouse_check, "crm", 0.05 * time_scale, after=loads)
    return wf.submit(), binlog.id, 3 + len(loads)


def submit_specials(time_scale: float) -> Specials:
    long_load = historical_load.prepare("events_2019_2025", 16, 0.1 * time_scale, group="special")
    long_load = Submission(replace(long_load.task, max_runtime=SLICE * time_scale))
    ids = app.submit_many([
        flaky_api.prepare("https://api.example.com/v2/orders", 2, 0.05, group="special"),
        broken_source.prepare("legacy-ftp", 0.05, group="special"),
        long_load,
        warehouse_query.prepare("SELECT region, sum(amount) FROM sales GROUP BY 1", 60.0,
                                group="special"),
    ])  # fmt: skip
    flaky, broken, load, query = ids
    workflow, binlog, steps = _submit_workflow(time_scale)
    return Specials(flaky, broken, load, query, workflow, binlog, submitted={
        "special": len(ids), DB_SYNC: steps})  # fmt: skip
