"""Schedules on both backends: sync, catch-up per policy with a moved clock, overlap policies,
pause/resume/trigger, logical time on the tasks, workflow targets, exactly once with two clocks,
and bad input."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import finish, register_worker, start, wait_until

import corral
from corral.clock import ManualClock
from corral.errors import ConfigError
from corral.lifecycle import State
from corral.schedules.service import ScheduleClock
from corral.store.contract import ClaimParams
from corral.store.contract.schedules import FIRED, MISSED, SKIPPED

HOUR = 3600
T0 = 1_795_000_000 - 1_795_000_000 % HOUR  # on the hour (2026-11-18 ...)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def make_app(app_url: str, clock: ManualClock) -> Iterator[Any]:
    apps: list[corral.App] = []

    def make() -> corral.App:
        app = corral.App(app_url, clock=clock)

        @app.task
        def load(ctx: corral.Context, table: str = "orders") -> str:
            return table

        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()


def clock_of(app: corral.App) -> ScheduleClock:
    service = app.schedules.services()[0]
    assert isinstance(service, ScheduleClock)
    return service


def outcomes(app: corral.App, name: str) -> list[tuple[int, str]]:
    return [(int(f.logical_time), f.outcome) for f in reversed(app.schedules.fires(name, 10_000))]


def end_all(app: corral.App, name: str, when: float) -> None:
    """Run and succeed every unfinished task of the schedule's fires (a worker's part)."""
    store = app.store
    register_worker(store, now=when)
    for fire in app.schedules.fires(name, 1000):
        for task_id in fire.task_ids:
            if store.task_states([task_id])[task_id] == State.READY:
                finish(store, start(store, task_id, when), State.SUCCEEDED, when)


def test_sync_stores_declared_schedules_and_marks_removed_ones(make_app: Any) -> None:
    app = make_app()
    app.schedules.add("hourly", app.tasks["load"], every="1h", args=["orders"])
    app.schedules.add("nightly", app.tasks["load"], cron="0 2 * * *", tz="Europe/Berlin")
    report = app.schedules.sync()
    assert report.added == ["hourly", "nightly"] and report.removed == []
    assert app.schedules.sync().added == []  # idempotent
    info = {i.name: i for i in app.schedules.list()}
    assert info["hourly"].row.next_at == T0 + HOUR
    assert info["nightly"].next_fire is not None and info["nightly"].next_fire.hour == 2
    # the code drops "nightly": a new deploy syncs, it stops firing and keeps its history
    later = make_app()
    later.schedules.add("hourly", later.tasks["load"], every="1h", args=["orders"])
    assert later.schedules.sync().removed == ["nightly"]
    rows = {i.name: i.row for i in later.schedules.list()}
    assert rows["nightly"].removed_at is not None and rows["hourly"].removed_at is None
    assert [r.name for r in later.store.schedule_due(T0 + 10 * 86400, 10)] == ["hourly"]


@pytest.mark.parametrize(
    "options,expected",
    [
        ({"catchup": "all", "overlap": "allow"}, [FIRED] * 5),
        ({"catchup": "all", "overlap": "allow", "max_catchup": 3}, [MISSED] * 2 + [FIRED] * 3),
        ({"catchup": "latest", "overlap": "allow"}, [MISSED] * 4 + [FIRED]),
        ({"catchup": "none", "overlap": "allow"}, [MISSED] * 5),
        (
            {"catchup": "all", "overlap": "allow", "catchup_window": "2h"},
            [MISSED] * 3 + [FIRED] * 2,
        ),
    ],
)
def test_catch_up_after_downtime_per_policy(
    make_app: Any, clock: ManualClock, options: dict[str, Any], expected: list[str]
) -> None:
    app = make_app()
    app.schedules.add("hourly", app.tasks["load"], every="1h", **options)
    service = clock_of(app)
    service.run(T0)
    clock.set(T0 + 5 * HOUR + 600)  # down for five fires; ten minutes late for the last
    service.run(clock.now())
    got = outcomes(app, "hourly")
    assert got == [(T0 + k * HOUR, o) for k, o in zip(range(1, 6), expected, strict=True)]
    for fire in app.schedules.fires("hourly", 100):
        assert (len(fire.task_ids) == 1) == (fire.outcome == FIRED)
        if fire.outcome == MISSED:
            assert fire.reason and fire.reason.startswith("missed: ")
    info = app.schedules.get("hourly").row
    assert info.missed == expected.count(MISSED) and info.fired == expected.count(FIRED)
    assert info.cursor_at == T0 + 5 * HOUR and info.next_at == T0 + 6 * HOUR
    service.run(clock.now())  # nothing more: each logical time was handled once
    assert len(outcomes(app, "hourly")) == 5


def test_catchup_none_runs_a_fire_that_is_on_time(make_app: Any, clock: ManualClock) -> None:
    app = make_app()
    app.schedules.add("hourly", app.tasks["load"], every="1h", catchup="none")
    service = clock_of(app)
    service.run(T0)
    clock.set(T0 + HOUR + 2)
    service.run(clock.now())
    assert outcomes(app, "hourly") == [(T0 + HOUR, FIRED)]


def test_a_long_downtime_is_recorded_in_bounded_batches(make_app: Any, clock: ManualClock) -> None:
    app = make_app()
    app.schedules.add("minutely", app.tasks["load"], every="1m", catchup="latest")
    service = clock_of(app)
    service.run(T0)
    clock.set(T0 + 1200 * 60)
    while service.run(clock.now()):
        pass
    got = outcomes(app, "minutely")
    assert [t for t, _ in got] == [T0 + 60 * k for k in range(1, 1201)]
    assert [o for _, o in got] == [MISSED] * 1199 + [FIRED]


def test_fires_carry_logical_time_and_data_interval(make_app: Any, clock: ManualClock) -> None:
    app = make_app()
    app.schedules.add("hourly", app.tasks["load"], every="1h", args=["events"],
                      dedup_key="events@{logical:%Y-%m-%dT%H}")  # fmt: skip
    service = clock_of(app)
    service.run(T0)
    clock.set(T0 + HOUR)
    service.run(clock.now())
    (fire,) = app.schedules.fires("hourly")
    assert fire.data_start == T0 and fire.logical_time == T0 + HOUR
    register_worker(app.store, now=clock.now())
    task = start(app.store, fire.task_ids[0], clock.now())
    assert (task.logical_time, task.data_start) == (T0 + HOUR, T0)
    expected = datetime.fromtimestamp(T0 + HOUR, UTC).strftime("events@%Y-%m-%dT%H")
    assert task.dedup_key == expected and task.args == '["events"]'


def test_overlap_skip_records_the_fire_still_running(make_app: Any, clock: ManualClock) -> None:
    app = make_app()
    app.schedules.add("hourly", app.tasks["load"], every="1h")  # overlap="skip" by default
    service = clock_of(app)
    service.run(T0)
    for k in (1, 2):
        clock.set(T0 + k * HOUR)
        service.run(clock.now())
    assert outcomes(app, "hourly") == [(T0 + HOUR, FIRED), (T0 + 2 * HOUR, SKIPPED)]
    skipped = app.store.fire_get("hourly", T0 + 2 * HOUR)
    assert skipped is not None and skipped.reason is not None
    assert "overlap=skip" in skipped.reason and "still running" in skipped.reason
    end_all(app, "hourly", clock.now())
    clock.set(T0 + 3 * HOUR)
    service.run(clock.now())
    assert outcomes(app, "hourly")[-1] == (T0 + 3 * HOUR, FIRED)


def test_overlap_buffer_one_holds_one_fire_until_the_run_ends(
    make_app: Any, clock: ManualClock
) -> None:
    app = make_app()
    app.schedules.add("hourly", app.tasks["load"], every="1h", overlap="buffer_one")
    service = clock_of(app)
    service.run(T0)
    for k in (1, 2, 3):
        clock.set(T0 + k * HOUR)
        service.run(clock.now())
    # 1 runs, 2 is held, 3 is skipped (one is held already)
    assert outcomes(app, "hourly") == [(T0 + HOUR, FIRED), (T0 + 3 * HOUR, SKIPPED)]
    assert app.schedules.get("hourly").row.buffered_at == T0 + 2 * HOUR
    service.run(clock.now())
    assert len(outcomes(app, "hourly")) == 2  # still running: still held
    end_all(app, "hourly", clock.now())
    service.run(clock.now())
    assert outcomes(app, "hourly")[1] == (T0 + 2 * HOUR, FIRED)
    assert app.schedules.get("hourly").row.buffered_at is None


def test_overlap_allow_runs_beside_the_previous(make_app: Any, clock: ManualClock) -> None:
    app = make_app()
    app.schedules.add("hourly", app.tasks["load"], every="1h", overlap="allow")
    service = clock_of(app)
    service.run(T0)
    for k in (1, 2):
        clock.set(T0 + k * HOUR)
        service.run(clock.now())
    assert outcomes(app, "hourly") == [(T0 + HOUR, FIRED), (T0 + 2 * HOUR, FIRED)]


def test_overlap_cancel_previous_cancels_then_fires(make_app: Any, clock: ManualClock) -> None:
    app = make_app()
    app.schedules.add("hourly", app.tasks["load"], every="1h", overlap="cancel_previous")
    service = clock_of(app)
    service.run(T0)
    clock.set(T0 + HOUR)
    service.run(clock.now())
    (first,) = app.schedules.fires("hourly")
    clock.set(T0 + 2 * HOUR)
    service.run(clock.now())
    assert app.get(first.task_ids[0]).state == State.CANCELLED
    assert outcomes(app, "hourly") == [(T0 + HOUR, FIRED), (T0 + 2 * HOUR, FIRED)]


def test_pause_records_missed_and_resume_fires_again(make_app: Any, clock: ManualClock) -> None:
    app = make_app()
    app.schedules.add("hourly", app.tasks["load"], every="1h", overlap="allow")
    service = clock_of(app)
    service.run(T0)
    other = make_app()  # another process (the CLI) pauses it
    other.schedules.pause("hourly")
    for k in (1, 2):
        clock.set(T0 + k * HOUR)
        service.run(clock.now())
    other.schedules.resume("hourly")
    clock.set(T0 + 3 * HOUR)
    service.run(clock.now())
    assert outcomes(app, "hourly") == [
        (T0 + HOUR, MISSED), (T0 + 2 * HOUR, MISSED), (T0 + 3 * HOUR, FIRED)
    ]  # fmt: skip
    paused = app.store.fire_get("hourly", T0 + HOUR)
    assert paused is not None and paused.reason == "missed: the schedule was paused"
    with pytest.raises(ConfigError, match="no schedule named 'nope'"):
        other.schedules.pause("nope")


def test_trigger_fires_once_now_from_another_process(make_app: Any, clock: ManualClock) -> None:
    app = make_app()
    app.schedules.add("nightly", app.tasks["load"], cron="0 2 * * *", tz="Europe/Berlin")
    service = clock_of(app)
    service.run(T0)
    clock.set(T0 + 125)
    make_app().schedules.trigger("nightly")
    service.run(clock.now())
    service.run(clock.now())
    fires = app.schedules.fires("nightly")
    assert [(f.logical_time, f.kind, f.outcome) for f in fires] == [(T0 + 125, "trigger", FIRED)]
    assert app.schedules.get("nightly").row.trigger_at is None
    with pytest.raises(ConfigError, match="no schedule named"):
        app.schedules.trigger("unknown")


def test_a_workflow_builder_submits_the_whole_pipeline(make_app: Any, clock: ManualClock) -> None:
    app = make_app()
    seen: list[datetime] = []

    def pipeline(wf: corral.Workflow, logical_time: datetime) -> None:
        seen.append(logical_time)
        extract = wf.add(app.tasks["load"], "raw")
        wf.add(app.tasks["load"], "clean", after=[extract])

    app.schedules.add("pipeline-42", pipeline, every="1h", group="pipeline-42")
    service = clock_of(app)
    service.run(T0)
    clock.set(T0 + HOUR)
    service.run(clock.now())
    (fire,) = app.schedules.fires("pipeline-42")
    assert seen == [datetime.fromtimestamp(T0 + HOUR, UTC)]
    assert fire.workflow_id is not None and len(fire.task_ids) == 2
    status = app.workflow_status(fire.workflow_id)
    assert sum(status.counts.values()) == 2
    register_worker(app.store, now=clock.now())
    (first,) = [t for t in fire.task_ids if app.get(t).state == State.READY]
    claimed = start(app.store, first, clock.now())
    assert claimed.logical_time == T0 + HOUR and claimed.group == "pipeline-42"


def test_two_clocks_racing_fire_each_logical_time_once(make_app: Any, clock: ManualClock) -> None:
    apps = [make_app(), make_app()]
    for app in apps:
        app.schedules.add("fast", app.tasks["load"], every="1s", overlap="allow", max_catchup=1000)
    services = [clock_of(app) for app in apps]
    services[0].run(T0)
    clock.set(T0 + 300)
    errors: list[BaseException] = []

    def go(service: ScheduleClock) -> None:
        try:
            for step in range(1, 301):
                service.run(T0 + step)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(s,)) for s in services]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    got = outcomes(apps[0], "fast")
    assert [t for t, _ in got] == list(range(T0 + 1, T0 + 301))
    ids = [i for f in apps[0].schedules.fires("fast", 1000) for i in f.task_ids]
    assert len(ids) == len(set(ids)) == sum(o == FIRED for _, o in got)
    claimed = apps[0].store.task_claim(ClaimParams("w", ["default"], 1000, T0 + 1e6, T0 + 400))
    assert claimed == []  # nothing admitted: but every fired task exists, once
    assert len(apps[0].store.task_states(ids)) == len(ids)


@pytest.mark.parametrize(
    "options,field",
    [
        ({"cron": "61 * * * *"}, "cron"),
        ({"cron": "0 2 * * *", "tz": "Europe/Nowhere"}, "unknown time zone"),
        ({"every": "0s"}, "every"),
        ({"every": "1h", "catchup": "some"}, "catchup"),
        ({"every": "1h", "overlap": "queue"}, "overlap"),
        ({"every": "1h", "max_catchup": 0}, "max_catchup"),
        ({"every": "1h", "catchup_window": "soon"}, "catchup_window"),
        ({"every": "1h", "args": [1, 2, 3]}, "bad arguments"),
        ({"every": "1h", "dedup_key": "x-{when}"}, "dedup_key"),
        ({"every": "1h", "start": datetime(2026, 1, 1)}, "timezone-aware"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_written(
    make_app: Any, options: dict[str, Any], field: str
) -> None:
    app = make_app()
    with pytest.raises(ConfigError, match=field):
        app.schedules.add("bad", app.tasks["load"], **options)
    assert app.schedules.declared == {}
    app.schedules.add("good", app.tasks["load"], every="1h")
    app.schedules.sync()
    assert [i.name for i in app.schedules.list()] == ["good"]


def test_a_task_made_by_a_fire_gets_logical_time_on_its_context(
    app: corral.App, services: Any
) -> None:
    got: list[Any] = []

    @app.task
    def record(ctx: corral.Context) -> None:
        got.append((ctx.logical_time, ctx.data_interval))

    app.schedules.add("every-second", record, every="1s", catchup="latest")
    services(app)
    wait_until(lambda: len(got) >= 2, timeout=20)
    logical, (begin, end) = got[0]
    assert logical.tzinfo is not None and end == logical
    assert (end - begin).total_seconds() == 1
