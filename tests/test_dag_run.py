"""End to end on both backends: a workflow of 500 tasks with an exclusive head, run by a scheduler
and a worker. Nothing starts before its dependencies succeeded; the exclusive head runs alone in
its group; within the group, a task of a higher rank is admitted before a lower one that was
ready as long."""

from __future__ import annotations

import time
from collections.abc import Callable

from conftest import Services, wait_until

import corral
from corral.model import TaskRecord
from corral.worker.worker import WorkerConfig

GROUP = "db1"


def test_a_500_task_dag_with_an_exclusive_head(
    app: corral.App, services: Callable[..., Services]
) -> None:
    app.groups.configure(GROUP, max_parallel=3)

    @app.task
    def step(ctx: corral.Context, n: int) -> int:
        return n

    @app.task
    def binlog(ctx: corral.Context) -> str:
        time.sleep(0.3)  # long enough for anything admitted beside it to show
        return "binlog"

    wf = app.workflow("pipeline", group=GROUP)
    side = [wf.add(step, -n) for n in range(1, 6)]  # free of the head, added first, rank 0
    head = wf.add(binlog, exclusive=True)
    chain = []
    previous = head
    for n in range(20):  # the critical path
        previous = wf.add(step, 1000 + n, after=[previous])
        chain.append(previous)
    loads = [wf.add(step, n, after=[head]) for n in range(300)]
    checks = [wf.add(step, 2000 + n, after=[loads[n], loads[(n + 1) % 300]]) for n in range(174)]
    assert len(wf) == 500
    workflow_id = wf.submit()
    assert wf.ids is not None
    ranks = {r.id: r.rank for r in (app.get(i) for i in (head.id, chain[0].id, loads[0].id))}
    assert ranks == {head.id: 20, chain[0].id: 19, loads[0].id: 1}

    services(app, worker=WorkerConfig(concurrency=4, heartbeat=0.1))
    wait_until(lambda: app.workflow_status(workflow_id).finished == 500, timeout=180)
    status = app.workflow_status(workflow_id)
    assert (status.state, status.counts) == ("succeeded", {"succeeded": 500})

    records = {i: app.get(i) for i in wf.ids}
    admitted, ready = {}, {}
    for task_id in wf.ids:
        events = app.store.event_list(task_id)
        admitted[task_id] = next(e.at for e in events if e.kind == "admitted")
        ready[task_id] = max(e.at for e in events if e.to_state == "ready")

    # Nothing starts before its dependencies succeeded.
    for record in records.values():
        assert record.first_started_at is not None
        for dep in record.depends_on:
            upstream = records[dep]
            assert upstream.finished_at is not None
            assert record.first_started_at >= upstream.finished_at, (record.id, dep)

    problems = _exclusive_and_rank_problems(records, admitted, ready, head.id)
    assert not problems, problems[:5]
    assert {s.id for s in side} | {c.id for c in checks} <= set(records)


def _exclusive_and_rank_problems(
    records: dict[int, TaskRecord],
    admitted: dict[int, float],
    ready: dict[int, float],
    head_id: int,
) -> list[str]:
    problems = []
    head = records[head_id]
    assert head.finished_at is not None
    for record in records.values():
        if record.id == head_id:
            continue
        assert record.finished_at is not None
        # [admitted, finished] of each task: slots held; none may overlap the head's
        if admitted[record.id] < head.finished_at and record.finished_at > admitted[head_id]:
            problems.append(f"task {record.id} held a slot beside the exclusive head")
    # Among tasks of the group: one admitted before a higher-ranked task that was ready by then
    order = sorted(records, key=lambda i: admitted[i])
    for position, early in enumerate(order):
        for late in order[position + 1 :]:
            if (
                records[late].rank > records[early].rank
                and ready[late] <= admitted[early]
                and admitted[late] > admitted[early]
            ):
                problems.append(
                    f"task {early} (rank {records[early].rank}) was admitted before task {late} "
                    f"(rank {records[late].rank}), ready since before"
                )
                break
    return problems
