"""The read side's schedule filter on every backend: a fire's tasks carry their schedule (written
in the fire's transaction), a task list filtered by schedule pages them newest first and shows no
other schedule's task nor a task submitted by hand, and a bad schedule name is refused."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from schedule_apps import services, three_schedules

import corral
from corral.clock import ManualClock
from corral.errors import ConfigError
from corral.read_model import TaskFilter
from corral.readside import ReadSide

T0 = 1_767_225_600.0  # 2026-01-01 00:00 UTC
HOUR = 3600.0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def app(app_url: str, clock: ManualClock) -> Iterator[corral.App]:
    application = three_schedules(app_url, clock)
    yield application
    application.close()


def test_tasks_filtered_by_schedule(app: corral.App, clock: ManualClock) -> None:
    ticker, _ = services(app)
    ticker.run(T0)
    clock.set(T0 + 5 * HOUR + 1)
    ticker.run(clock.now())
    by_hand = app.submit("load")
    reads = ReadSide(app.store, clock)
    hourly = [f.task_ids[0] for f in app.store.fire_list("hourly", None, 100) if f.task_ids]
    assert len(hourly) == 5
    ids: list[int] = []
    page = reads.tasks(TaskFilter(schedule="hourly"), limit=2)
    while True:
        ids += [t.id for t in page.tasks]
        if page.next is None:
            break
        page = reads.tasks(TaskFilter(schedule="hourly"), after=page.next, limit=2)
    assert ids == sorted(hourly, reverse=True)
    latest = [t.id for t in reads.tasks(TaskFilter(schedule="latest")).tasks]
    assert len(latest) == 1 and not set(latest) & set(hourly)
    assert by_hand not in ids + latest
    both = reads.tasks(TaskFilter(schedule="hourly", states=(corral.State.READY,))).tasks
    assert [t.id for t in both] == ids
    assert reads.tasks(TaskFilter(schedule="nothing")).tasks == []
    with pytest.raises(ConfigError, match="schedule"):
        reads.tasks(TaskFilter(schedule=""))
