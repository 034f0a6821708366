"""The read side (corral.readside) on every backend: filtered task lists checked against a
brute-force filter of every row, keyset paging while rows are added, one task in detail with its
logs paged, group and pool figures against counts made by hand, and bad input."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import T0, finish, new_task, register_worker, start, submit

from corral.clock import ManualClock
from corral.errors import ConfigError, TaskNotFound
from corral.lifecycle import TERMINAL, State
from corral.model import GroupConfig, LogLine, NewWorkflow, TaskQuery, TaskRecord
from corral.read_model import TaskFilter
from corral.readside import ReadSide, busiest, encode_cursor
from corral.store import Store
from corral.store.contract import AdmitParams, CancelParams, DueParams, WorkflowInsertParams


def reads(store: Store, now: float = T0) -> ReadSide:
    return ReadSide(store, ManualClock(now))


def every(store: Store) -> list[TaskRecord]:
    return store.task_list(TaskQuery(limit=100_000))


def all_pages(side: ReadSide, f: TaskFilter, order: str = "created", limit: int = 3) -> list[int]:
    ids: list[int] = []
    page = side.tasks(f, order=order, limit=limit)
    while True:
        ids += [t.id for t in page.tasks]
        if page.next is None:
            return ids
        page = side.tasks(f, order=order, after=page.next, limit=limit)


def matches(t: TaskRecord, f: TaskFilter) -> bool:
    def within(value: float | None, low: float | None, high: float | None) -> bool:
        if low is None and high is None:
            return True
        return (
            value is not None and (low is None or value >= low) and (high is None or value < high)
        )

    return (
        (not f.states or t.state in f.states)
        and f.name in (None, t.name)
        and f.group in (None, t.group)
        and f.pool in (None, t.pool)
        and f.workflow_id in (None, t.workflow_id)
        and within(t.created_at, f.created_from, f.created_until)
        and within(t.finished_at, f.finished_from, f.finished_until)
    )


def mixed_history(store: Store) -> dict[str, Any]:
    """Tasks of two types, three groups and two pools, some finished at known times, one
    workflow; returns what the tests refer to."""
    register_worker(store, concurrency=100)
    ids = []
    for i in range(24):
        ids.append(
            submit(
                store,
                now=T0 + i,
                name=("load", "poll")[i % 2],
                group=("g1", "g2", "g3")[i % 3],
                pool="default" if i % 4 else "other",
            )
        )
    for n, task_id in enumerate(ids[:10]):
        if store.task_get(task_id).pool == "default":  # type: ignore[union-attr]
            finish(store, start(store, task_id, T0 + 30 + n), State.SUCCEEDED, T0 + 40 + n)
    store.task_cancel(CancelParams(ids[11], T0 + 60))
    wf = store.workflow_insert(
        WorkflowInsertParams(NewWorkflow("wf", "g1"), [new_task(group="g1")] * 3, T0 + 70)
    )
    return {"ids": ids, "workflow": wf.id, "steps": [s.id for s in wf.tasks]}


FILTERS = [
    TaskFilter(),
    TaskFilter(states=(State.READY,)),
    TaskFilter(states=(State.SUCCEEDED, State.CANCELLED)),
    TaskFilter(states=(State.READY, State.SUCCEEDED)),
    TaskFilter(name="poll"),
    TaskFilter(group="g2"),
    TaskFilter(group="g1", name="load", states=(State.READY,)),
    TaskFilter(pool="other"),
    TaskFilter(created_from=T0 + 5, created_until=T0 + 12),
    TaskFilter(finished_from=T0 + 42, finished_until=T0 + 47),
]


@pytest.mark.parametrize("index", range(len(FILTERS)))
def test_filters_match_a_brute_force_filter(store: Store, index: int) -> None:
    mixed_history(store)
    f = FILTERS[index]
    expected = [t.id for t in every(store) if matches(t, f)]
    assert expected, "the history must hold rows for every filter"
    assert all_pages(reads(store), f) == expected  # newest first, every page


def test_workflow_filter(store: Store) -> None:
    made = mixed_history(store)
    side = reads(store)
    assert all_pages(side, TaskFilter(workflow_id=made["workflow"])) == made["steps"][::-1]
    assert all_pages(side, TaskFilter(workflow_id=made["workflow"], states=(State.DEAD,))) == []


def test_finished_order_pages_by_end_time(store: Store) -> None:
    register_worker(store, concurrency=100)
    ids = [submit(store) for _ in range(7)]
    ends = [T0 + 50, T0 + 10, T0 + 30, T0 + 30, T0 + 20, T0 + 40, T0 + 30]  # ties on 30
    for task_id, end in zip(ids, ends, strict=True):
        finish(store, start(store, task_id, T0 + 1), State.SUCCEEDED, end)
    unfinished = submit(store)
    side = reads(store)
    want = [t.id for t in sorted(every(store), key=lambda t: (-(t.finished_at or 0), -t.id))]
    assert unfinished not in all_pages(side, TaskFilter(), order="finished", limit=2)
    assert all_pages(side, TaskFilter(), order="finished", limit=2) == want[:7]
    ranged = TaskFilter(finished_from=T0 + 20, finished_until=T0 + 40)
    got = all_pages(side, ranged, order="finished", limit=1)
    assert got == [i for i in want[:7] if T0 + 20 <= ends[ids.index(i)] < T0 + 40]


@pytest.mark.parametrize(
    ("f", "order"),
    [(TaskFilter(), "created"), (TaskFilter(states=(State.READY,)), "created"),
     (TaskFilter(group="g"), "created"), (TaskFilter(), "finished")],
)  # fmt: skip
def test_paging_while_rows_are_added(store: Store, f: TaskFilter, order: str) -> None:
    """Rows added (or ended) during paging never make a page repeat or skip a row that existed
    when the first page was read."""
    register_worker(store, concurrency=1000)
    clock = [T0]

    def add() -> int:
        clock[0] += 1
        task_id = submit(store, now=clock[0], group="g")
        if order == "finished":
            finish(store, start(store, task_id, clock[0]), State.SUCCEEDED, clock[0])
        return task_id

    before = [add() for _ in range(25)]
    side = reads(store)
    seen: list[int] = []
    page = side.tasks(f, order=order, limit=4)
    while True:
        seen += [t.id for t in page.tasks]
        for _ in range(3):
            add()
        if page.next is None:
            break
        page = side.tasks(f, order=order, after=page.next, limit=4)
    assert len(seen) == len(set(seen))
    assert seen == before[::-1]  # every row that existed, newest first, and nothing added since


def test_task_detail_with_paged_logs(store: Store) -> None:
    register_worker(store)
    task_id = submit(store, max_retries=1)
    first = start(store, task_id, T0 + 1)
    finish(store, first, State.RETRY_WAIT, T0 + 2)
    store.task_release_due(DueParams(T0 + 5, 10))
    second = start(store, task_id, T0 + 6)
    lines = [LogLine(task_id, 1, T0 + 1 + i / 10, 20, f"a{i}") for i in range(3)]
    lines += [LogLine(task_id, 2, T0 + 6 + i / 10, 20, f"b{i}") for i in range(4)]
    store.log_append_many(lines)
    finish(store, second, State.SUCCEEDED, T0 + 7)
    side = reads(store)
    detail = side.task(task_id, logs=3)
    assert detail.task.id == task_id and detail.task.state == State.SUCCEEDED
    assert [a.attempt for a in detail.attempts] == [1, 2]
    assert [e.kind for e in detail.events] == [e.kind for e in store.event_list(task_id)]
    assert [x.message for x in detail.logs] == ["b1", "b2", "b3"]  # the latest, oldest first
    older = side.task(task_id, logs=3, logs_before=detail.older_logs)
    assert [x.message for x in older.logs] == ["a1", "a2", "b0"]
    oldest = side.task(task_id, logs=3, logs_before=older.older_logs)
    assert [x.message for x in oldest.logs] == ["a0"] and oldest.older_logs is None
    with pytest.raises(TaskNotFound):
        side.task(task_id + 100)


def test_group_and_pool_figures_against_a_brute_force_count(store: Store) -> None:
    store.group_configure(GroupConfig("g1", max_parallel=4, weight=3.0))
    store.group_configure(GroupConfig("idle", max_parallel=1, weight=5.0))
    made = mixed_history(store)
    running = [i for i in made["ids"][12:] if store.task_get(i).pool == "default"]  # type: ignore[union-attr]
    for n, task_id in enumerate(running[:4]):
        start(store, task_id, T0 + 100 + n)
    store.task_admit_many(AdmitParams([running[4]], T0 + 105))
    now = T0 + 106
    side = reads(store, now)
    rows = every(store)
    figures = {g.group: g for g in side.groups(window=1000)}
    groups = sorted({t.group for t in rows if t.state not in TERMINAL} | {"g1", "idle"})
    assert sorted(figures) == groups
    held = sum(t.state in (State.ADMITTED, State.RUNNING) for t in rows)
    busy = {t.group for t in rows if t.state in (State.READY, State.ADMITTED, State.RUNNING)}
    weight = {"g1": 3.0, "idle": 5.0}
    for name, g in figures.items():
        mine = [t for t in rows if t.group == name]
        counts: dict[str, int] = {}
        for t in mine:
            if t.state not in TERMINAL:
                counts[str(t.state)] = counts.get(str(t.state), 0) + 1
        assert g.counts == counts, name
        assert g.active == sum(t.state in (State.ADMITTED, State.RUNNING) for t in mine)
        assert g.share == pytest.approx(g.active / held)
        total = sum(weight.get(b, 1.0) for b in busy)
        assert g.fair_share == pytest.approx(weight.get(name, 1.0) / total if name in busy else 0)
        started = sorted(
            t.first_started_at - t.enqueued_at for t in mine if t.first_started_at is not None
        )
        assert g.waits.started == len(started)
        assert g.waits.mean == (pytest.approx(sum(started) / len(started)) if started else None)
        assert g.waits.max == (max(started) if started else None)
    assert (figures["g1"].max_parallel, figures["g1"].weight) == (4, 3.0)
    assert figures["idle"].counts == {} and figures["idle"].fair_share == 0.0
    # The window bounds the waits: only starts at or after now - window count.
    recent = {g.group: g.waits.started for g in side.groups(window=4)}
    assert sum(recent.values()) == sum(
        t.first_started_at is not None and t.first_started_at >= now - 4 for t in rows
    )
    pools = {p.pool: p for p in side.pools(window=1000)}
    for name, p in pools.items():
        mine = [t for t in rows if t.pool == name and t.state not in TERMINAL]
        assert sum(p.counts.values()) == len(mine)
        assert p.active == sum(t.state in (State.ADMITTED, State.RUNNING) for t in mine)
    assert (pools["default"].workers, pools["default"].capacity) == (1, 100)
    assert side.unfinished() == sum(t.state not in TERMINAL for t in rows)


def test_the_busiest_groups_read_is_the_top_of_every_group(store: Store) -> None:
    store.group_configure(GroupConfig("g1", max_parallel=4, weight=3.0))
    store.group_configure(GroupConfig("idle", max_parallel=1, weight=5.0))
    store.group_configure(GroupConfig("other", weight=2.0))  # the metrics' bucket name: a group
    made = mixed_history(store)
    submit(store, group="other")
    running = [i for i in made["ids"][12:] if store.task_get(i).pool == "default"]  # type: ignore[union-attr]
    for n, task_id in enumerate(running[:4]):
        start(store, task_id, T0 + 100 + n)
    store.task_admit_many(AdmitParams([running[4]], T0 + 105))
    side = reads(store, T0 + 106)
    every = busiest(side.groups(window=1000))
    assert len(every) > 3
    for limit in range(1, len(every) + 2):
        assert side.busiest_groups(limit, window=1000) == every[:limit], limit
    with pytest.raises(ConfigError, match="limit"):
        side.busiest_groups(0)


def test_waits_p95() -> None:
    from corral.readside import waits

    got = waits([float(i) for i in range(1, 101)])
    assert (got.started, got.mean, got.p95, got.max) == (100, 50.5, 95.0, 100.0)
    assert got.p50 == 50.0
    assert waits([3.0, 1.0, 2.0]).p50 == 2.0
    assert waits([]).mean is None and waits([]).p50 is None


def test_foreign_task_names(store: Store) -> None:
    side = reads(store)
    assert side.foreign_task("demo.") is None
    submit(store, name="demo.load")
    submit(store, name="demo.poll")
    assert side.foreign_task("demo.") is None
    submit(store, name="billing.load")
    assert side.foreign_task("demo.") == "billing.load"


BAD = [
    ({"filter": TaskFilter(states=("nope",))}, "states"),  # type: ignore[arg-type]
    ({"after": "garbage"}, "after"),
    ({"after": encode_cursor("finished", T0, 5)}, "after"),  # a cursor of another order
    ({"after": encode_cursor("created", None, 0)}, "after"),
    ({"limit": 0}, "limit"),
    ({"limit": 1001}, "limit"),
    ({"order": "random"}, "order"),
    ({"filter": TaskFilter(workflow_id=0)}, "workflow_id"),
    ({"filter": TaskFilter(group="")}, "group"),
    ({"filter": TaskFilter(name="a\x00b")}, "name"),
    ({"filter": TaskFilter(created_from=float("nan"))}, "created_from"),
    ({"filter": TaskFilter(finished_until=-1)}, "finished_until"),
]


@pytest.mark.parametrize(("kwargs", "field"), BAD)
def test_bad_input_names_the_field(store: Store, kwargs: dict[str, Any], field: str) -> None:
    submit(store)
    with pytest.raises(ConfigError, match=field):
        reads(store).tasks(**kwargs)


def test_bad_detail_and_figures_input(store: Store) -> None:
    side = reads(store)
    task_id = submit(store)
    for call, field in [
        (lambda: side.task(task_id, logs=0), "logs"),
        (lambda: side.task(task_id, logs_before="x"), "after"),
        (lambda: side.task(0), "task_id"),
        (lambda: side.groups(window=-1), "window"),
        (lambda: side.pools(sample=0), "sample"),
        (lambda: side.events_after(-1), "after_id"),
    ]:
        with pytest.raises(ConfigError, match=field):
            call()


def test_event_head_and_a_workflow_graph(store: Store) -> None:
    side = reads(store)
    assert side.event_head() == 0
    steps = [new_task(group="g1"), new_task(group="g1", after=(0,)), new_task(after=(0, 1))]
    wf = store.workflow_insert(WorkflowInsertParams(NewWorkflow("wf", "g1"), steps, T0))
    a, b, c = (s.id for s in wf.tasks)
    other = submit(store, now=T0 + 1)
    head = side.event_head()
    assert head == max(e.id for t in (a, b, c, other) for e in store.event_list(t))
    assert side.events_after(head) == []
    graph = side.workflow(wf.id)
    assert [t.id for t in graph.tasks] == [c, b, a] and not graph.truncated
    assert sorted(graph.edges) == sorted([(b, a), (c, a), (c, b)])
    assert graph.status.total == 3
    small = side.workflow(wf.id, limit=2)
    assert [t.id for t in small.tasks] == [c, b] and small.truncated
    assert small.edges == [(c, b)]
    scoped = side.workflow(wf.id, scope=("g1",))  # c is in the default group
    assert [t.id for t in scoped.tasks] == [b, a] and scoped.edges == [(b, a)]
    with pytest.raises(TaskNotFound):
        side.workflow(wf.id + 1)
    with pytest.raises(ConfigError, match="workflow_id"):
        side.workflow(0)
    with pytest.raises(ConfigError, match="limit"):
        side.workflow(wf.id, limit=0)


def test_a_workflow_graph_reads_its_tasks_in_pages(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    import corral.readside

    monkeypatch.setattr(corral.readside, "MAX_PAGE", 1)
    steps = [new_task(), new_task(after=(0,)), new_task(after=(1,))]
    wf = store.workflow_insert(WorkflowInsertParams(NewWorkflow("wf", "default"), steps, T0))
    a, b, c = (s.id for s in wf.tasks)
    graph = reads(store).workflow(wf.id, limit=3)
    assert [t.id for t in graph.tasks] == [c, b, a] and not graph.truncated
    assert sorted(graph.edges) == [(b, a), (c, b)]
