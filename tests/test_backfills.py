"""Backfills on both backends: one fire per logical time in the range, keyed like live fires (no
duplicates, the missed ones run), reprocess, order, dry run, their own fair-share group, status,
pause/resume/cancel, and bad input."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

import pytest
from conftest import finish, register_worker, start

import corral
from corral.clock import ManualClock
from corral.errors import ConfigError
from corral.lifecycle import State
from corral.read_model import TaskFilter
from corral.readside import ReadSide
from corral.schedules.backfill_service import DUTY, FASTEST, BackfillMaker
from corral.schedules.service import ScheduleClock
from corral.store.contract.schedules import FIRED, MISSED

BERLIN = ZoneInfo("Europe/Berlin")
DAY = 86400
T0 = int(datetime(2026, 11, 27, 12, tzinfo=BERLIN).timestamp())


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def app(app_url: str, clock: ManualClock) -> Iterator[corral.App]:
    application = corral.App(app_url, clock=clock)

    @application.task
    def load_table(ctx: corral.Context, table: str) -> str:
        return table

    application.schedules.add(
        "nightly-orders",
        load_table,
        cron="0 2 * * *",
        tz="Europe/Berlin",
        args=["orders"],
        group="pipeline-42",
        dedup_key="orders@{logical:%Y-%m-%d}",
        overlap="allow",
    )
    yield application
    application.close()


def services(app: corral.App) -> tuple[ScheduleClock, BackfillMaker]:
    clock, maker = app.schedules.services()
    assert isinstance(clock, ScheduleClock) and isinstance(maker, BackfillMaker)
    return clock, maker


def at(day: int, hour: int = 2) -> int:
    return int(datetime(2026, 11, day, hour, tzinfo=BERLIN).timestamp())


def run_all(maker: BackfillMaker, now: float) -> None:
    """Run the maker until the backfills are made, ending their tasks as a worker would (the
    maker keeps only a window of fires unfinished)."""
    store = maker.store
    register_worker(store, now=now)
    while maker.run(now):
        for row in store.backfill_list(running_only=False):
            for fire in store.backfill_fires(row.id):
                for task_id, state in store.task_states(fire.task_ids).items():
                    if state == State.READY:
                        finish(store, start(store, task_id, now), State.SUCCEEDED, now)


def fires(app: corral.App) -> dict[int, Any]:
    return {int(f.logical_time): f for f in app.schedules.fires("nightly-orders", 1000)}


def succeed_all(app: corral.App, when: float) -> None:
    register_worker(app.store, now=when)
    for fire in app.schedules.fires("nightly-orders", 1000):
        for task_id in fire.task_ids:
            if app.store.task_states([task_id])[task_id] == State.READY:
                finish(app.store, start(app.store, task_id, when), State.SUCCEEDED, when)


def test_backfill_the_two_missed_days_without_duplicating(
    app: corral.App, clock: ManualClock
) -> None:
    """Down from Friday to Monday, the catch-up ran the three nights; a backfill over them
    finds each stored and makes nothing again."""
    clock_service, maker = services(app)
    clock_service.run(T0)
    clock.set(at(30, 9))  # Monday morning: the 28th, 29th and 30th are due
    clock_service.run(clock.now())
    live = fires(app)
    assert sorted(live) == [at(28), at(29), at(30)] and all(
        f.outcome == FIRED for f in live.values()
    )
    before = {t: list(f.task_ids) for t, f in live.items()}
    made = app.backfill("nightly-orders", start=date(2026, 11, 28), end=date(2026, 11, 30))
    assert made.total == 3
    run_all(maker, clock.now())
    after = fires(app)
    assert {t: f.task_ids for t, f in after.items()} == before  # nothing made twice
    status = app.backfills.status(made.id)
    assert (status.skipped, status.state) == (3, "done")


def test_a_backfill_runs_the_fires_recorded_missed(app: corral.App, clock: ManualClock) -> None:
    app2 = corral.App(app.url, clock=clock)

    @app2.task
    def daily_load(ctx: corral.Context, table: str) -> str:
        return table

    app2.schedules.add("weekly", daily_load, every="1d", args=["x"], catchup="latest")
    try:
        clock_service, maker = services(app2)
        clock_service.run(T0)
        clock.set(T0 + 3 * DAY + 60)
        clock_service.run(clock.now())
        got = {int(f.logical_time): f.outcome for f in app2.schedules.fires("weekly")}
        assert sorted(got.values()) == [FIRED, MISSED, MISSED]
        start_at = datetime.fromtimestamp(T0, UTC)
        made = app2.backfill("weekly", start=start_at, end=start_at + timedelta(days=3, hours=1))
        run_all(maker, clock.now())
        rows = app2.schedules.fires("weekly")
        assert {f.outcome for f in rows} == {FIRED} and len(rows) == 3
        ran = [f for f in rows if f.backfill_id == made.id]
        assert len(ran) == 2 and all(len(f.task_ids) == 1 for f in ran)
        group = app2.get(ran[0].task_ids[0]).group
        assert group == made.group and group.startswith("backfill:weekly:")
    finally:
        app2.close()


def test_backfill_makes_each_day_once_in_its_own_group(app: corral.App, clock: ManualClock) -> None:
    clock_service, maker = services(app)
    clock_service.run(T0)
    made = app.backfill(
        "nightly-orders",
        start=date(2026, 11, 1),
        end=date(2026, 11, 20),
        max_parallel=2,
        weight=0.5,
        order="backwards",
    )
    assert made.total == 20
    config = app.groups.get(made.group)
    assert (config.max_parallel, config.weight) == (2, 0.5)
    run_all(maker, clock.now())
    again = app.backfill("nightly-orders", start=date(2026, 11, 1), end=date(2026, 11, 20))
    run_all(maker, clock.now())
    got = fires(app)
    assert sorted(got) == [at(d) for d in range(1, 21)]
    assert all(f.backfill_id == made.id and f.runs == 1 for f in got.values())
    ids = [f.task_ids[0] for f in got.values()]
    # backwards: the latest day was made first
    assert max(ids) == got[at(1)].task_ids[0] and min(ids) == got[at(20)].task_ids[0]
    assert got[at(5)].data_start == at(4)
    record = app.get(got[at(5)].task_ids[0])
    assert record.dedup_key == "orders@2026-11-05" and record.group == made.group
    assert app.backfills.status(again.id).skipped == 20


@pytest.mark.parametrize("reprocess,expected", [("none", 0), ("failed", 1), ("all", 2)])
def test_reprocess_decides_whether_a_fire_that_ran_runs_again(
    app: corral.App, clock: ManualClock, reprocess: str, expected: int
) -> None:
    _, maker = services(app)
    first = app.backfill("nightly-orders", start=date(2026, 11, 1), end=date(2026, 11, 2))
    while maker.run(clock.now()):  # two fires: within the window, their tasks left ready
        pass
    got = fires(app)
    register_worker(app.store, now=clock.now())
    ok, bad = got[at(1)].task_ids[0], got[at(2)].task_ids[0]
    finish(app.store, start(app.store, ok, clock.now()), State.SUCCEEDED, clock.now())
    finish(app.store, start(app.store, bad, clock.now()), State.DEAD, clock.now())
    assert app.backfills.status(first.id).to_json()["failed"] == 1
    again = app.backfill(
        "nightly-orders", start=date(2026, 11, 1), end=date(2026, 11, 2), reprocess=reprocess
    )
    run_all(maker, clock.now())
    rerun = [f for f in fires(app).values() if f.backfill_id == again.id]
    assert len(rerun) == expected and all(f.runs == 2 for f in rerun)
    assert all(f.task_ids[0] not in (ok, bad) for f in rerun)


def test_a_dry_run_lists_the_logical_times_and_writes_nothing(app: corral.App) -> None:
    made = app.backfill(
        "nightly-orders", start=date(2026, 3, 28), end=date(2026, 3, 30), dry_run=True
    )
    assert made.dry_run and made.total == 3
    assert [t.isoformat() for t in made.logical_times] == [
        "2026-03-28T02:00:00+01:00",
        "2026-03-29T03:00:00+02:00",  # 02:00 does not exist that night: the end of the gap
        "2026-03-30T02:00:00+02:00",
    ]
    assert app.backfills.list() == []


def test_pause_resume_and_cancel_a_backfill_as_a_whole(app: corral.App, clock: ManualClock) -> None:
    _, maker = services(app)
    made = app.backfill("nightly-orders", start=date(2025, 1, 1), end=date(2025, 12, 31))
    assert made.total == 365
    app.backfills.pause(made.id)
    assert maker.run(clock.now()) == 0 and app.backfills.status(made.id).waiting == 365
    app.backfills.resume(made.id)
    while maker.run(clock.now()):  # one window: 64 fires (16 a run), the others wait for them
        pass
    status = app.backfills.status(made.id)
    assert status.waiting == 365 and status.state == "running"  # made but not started
    assert app.backfills.cancel(made.id) == 64
    status = app.backfills.status(made.id)
    assert status.state == "cancelled" and status.ended and status.failed == 64
    assert maker.run(clock.now()) == 0
    with pytest.raises(ConfigError, match="cancelled"):
        app.backfills.resume(made.id)


@pytest.mark.parametrize(
    "options,words",
    [
        ({"schedule": "nope"}, "unknown schedule 'nope'"),
        ({"end": date(2026, 10, 1)}, "before start"),
        ({"end": date(2056, 10, 1)}, "more than 10000 fires"),
        ({"reprocess": "some"}, "reprocess"),
        ({"order": "sideways"}, "order"),
        ({"max_parallel": 0}, "max_parallel"),
        ({"weight": -1}, "weight"),
        ({"start": "yesterday"}, "start must be a date"),
    ],
)
def test_bad_backfills_are_refused_and_nothing_is_written(
    app: corral.App, options: dict[str, Any], words: str
) -> None:
    call: dict[str, Any] = {"schedule": "nightly-orders", "start": date(2026, 11, 1),
                            "end": date(2026, 11, 3), **options}  # fmt: skip
    with pytest.raises(ConfigError, match=words):
        app.backfill(call.pop("schedule"), **call)
    assert app.backfills.list() == []


def test_a_range_past_the_limit_needs_the_flag_that_says_so(app: corral.App) -> None:
    big = app.backfill("nightly-orders", start=date(2026, 1, 1), end=date(2056, 1, 1),
                       allow_large=True, dry_run=True)  # fmt: skip
    assert big.total == (date(2056, 1, 2) - date(2026, 1, 1)).days
    assert len(big.logical_times) == 10_000


def test_a_fires_tasks_name_their_schedule_and_so_does_a_task_a_dedup_key_gave_it(
    app: corral.App, clock: ManualClock
) -> None:
    """The tasks a fire inserts carry their schedule in their row; a task submitted by hand under
    the fire's dedup key, which the fire takes instead of making one, is given the schedule."""
    by_hand = app.submit("load_table", "orders", dedup_key="orders@2026-11-05")
    unrelated = app.submit("load_table", "orders")
    _, maker = services(app)
    app.backfill("nightly-orders", start=date(2026, 11, 4), end=date(2026, 11, 6))
    run_all(maker, clock.now())
    got = fires(app)
    assert got[at(5)].task_ids == [by_hand]
    listed = ReadSide(app.store, clock).tasks(TaskFilter(schedule="nightly-orders")).tasks
    assert sorted(t.id for t in listed) == sorted(f.task_ids[0] for f in got.values())
    assert by_hand in {t.id for t in listed} and unrelated not in {t.id for t in listed}


def test_the_maker_rests_by_what_its_runs_cost() -> None:
    """A run that made fires rests (1 - DUTY) / DUTY times what it took; one that found the window
    full rests at least twice as long as before; none longer than the service's interval, which
    is also the rest while no backfill runs."""
    maker = BackfillMaker(cast(Any, None), {}, interval=0.1)
    assert maker._rest(0.004, running=True, made=True) == pytest.approx(0.004 * (1 - DUTY) / DUTY)
    assert maker._rest(0.0001, running=True, made=True) == FASTEST
    maker.interval = maker._rest(0.004, running=True, made=True)
    rests = []
    for _ in range(6):
        maker.interval = maker._rest(0.0001, running=True, made=False)
        rests.append(maker.interval)
    assert rests == sorted(rests) and rests[0] >= 2 * 0.004 * (1 - DUTY) / DUTY
    assert rests[-1] == 0.1
    assert maker._rest(0.5, running=True, made=True) == 0.1
    assert maker._rest(0.0, running=False, made=False) == 0.1
