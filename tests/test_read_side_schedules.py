"""The read side's schedule filter on every backend: a fire's tasks carry their schedule (written
in the fire's transaction), a task list filtered by schedule pages them newest first and shows no
other schedule's task nor a task submitted by hand, and a bad schedule name is refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from schedule_apps import services, three_schedules

import corral
from corral.cli import cli
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
    shown = CliRunner().invoke(cli, ["--database-url", app.url, "tasks", "--schedule", "hourly",
                                     "--json"])  # fmt: skip
    assert [t["id"] for t in json.loads(shown.output)["tasks"]] == ids
    latest = [t.id for t in reads.tasks(TaskFilter(schedule="latest")).tasks]
    assert len(latest) == 1 and not set(latest) & set(hourly)
    assert by_hand not in ids + latest
    both = reads.tasks(TaskFilter(schedule="hourly", states=(corral.State.READY,))).tasks
    assert [t.id for t in both] == ids
    assert reads.tasks(TaskFilter(schedule="nothing")).tasks == []
    with pytest.raises(ConfigError, match="schedule"):
        reads.tasks(TaskFilter(schedule=""))


def test_migration_20_gives_earlier_fires_tasks_their_schedule(
    app: corral.App, app_url: str, clock: ManualClock
) -> None:
    """The tasks of fires made before version 20 (schedule_name NULL then) get theirs from the
    fires' task ids: the migration's UPDATE run on such rows."""
    ticker, _ = services(app)
    ticker.run(T0)
    clock.set(T0 + 2 * HOUR + 1)
    ticker.run(clock.now())
    by_hand = app.submit("load")
    reads = ReadSide(app.store, clock)
    before = {s: [t.id for t in reads.tasks(TaskFilter(schedule=s)).tasks] for s in SCHEDULES}
    assert len(before["hourly"]) == 2
    _run(app_url, "UPDATE corral_tasks SET schedule_name = NULL")
    assert reads.tasks(TaskFilter(schedule="hourly")).tasks == []
    _run(app_url, _backfill_statement(app_url))
    after = {s: [t.id for t in reads.tasks(TaskFilter(schedule=s)).tasks] for s in SCHEDULES}
    assert after == before
    assert by_hand not in [i for ids in after.values() for i in ids]


SCHEDULES = ("hourly", "daily", "latest")


def _backfill_statement(url: str) -> str:
    backend = "sqlite" if url.startswith("sqlite") else "postgres"
    folder = Path(corral.__file__).parent / "store" / backend / "migrations"
    script = (folder / "0020_task_schedule.sql").read_text()
    code = "\n".join(line for line in script.splitlines() if not line.startswith("--"))
    (update,) = [s for s in code.split(";") if s.strip().startswith("UPDATE")]
    return update


def _run(url: str, statement: str) -> None:
    if url.startswith("sqlite:///"):
        import sqlite3

        conn = sqlite3.connect(url.split("sqlite:///", 1)[1], isolation_level=None)
        conn.execute(statement)
        conn.close()
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as pg:
        pg.execute(statement.encode())
