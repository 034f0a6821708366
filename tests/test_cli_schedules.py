"""`corral schedules`, `corral backfill`, `corral backfills` and `corral why SCHEDULE`, through
click's CliRunner, on both backends."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from projects import app_project

import corral
from corral.cli import cli
from corral.schedules.service import ScheduleClock

APP_CODE = textwrap.dedent(
    """
    import corral

    app = corral.App()

    @app.task
    def load_table(ctx, table):
        return table

    app.schedules.add("nightly-orders", load_table, cron="0 2 * * *", tz="Europe/Berlin",
                      args=["orders"], group="pipeline-42", catchup="latest")
    app.schedules.add("poll-crm", load_table, every="15m", args=["crm"])
    """
)


@pytest.fixture
def project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, app_url: str
) -> Iterator[tuple[str, str]]:
    yield from app_project(tmp_path, monkeypatch, "cli_sched", APP_CODE, app_url)


def invoke(*args: str) -> Result:
    result = CliRunner().invoke(cli, list(args), prog_name="corral")
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def test_list_sync_preview_pause_resume_trigger(project: tuple[str, str]) -> None:
    spec, url = project
    base = ["--database-url", url]
    assert "No schedules stored yet" in invoke(*base, "schedules").output
    synced = invoke("--app", spec, *base, "schedules", "sync")
    assert synced.exit_code == 0 and "added: nightly-orders, poll-crm" in synced.output
    listed = json.loads(invoke(*base, "schedules", "--json").output)
    assert [r["name"] for r in listed] == ["nightly-orders", "poll-crm"]
    assert listed[0]["spec"] == "cron 0 2 * * *" and listed[0]["tz"] == "Europe/Berlin"
    assert listed[1]["spec"] == "every 15m" and listed[1]["paused"] is False
    table = invoke(*base, "schedules").output
    assert "nightly-orders" in table and "Europe/Berlin" in table
    preview = invoke(*base, "schedules", "preview", "nightly-orders", "--count", "3").output
    lines = preview.strip().splitlines()
    assert len(lines) == 3 and all("02:00:00 CE" in line and "UTC" in line for line in lines)
    assert invoke(*base, "schedules", "pause", "poll-crm").output == "paused poll-crm\n"
    assert json.loads(invoke(*base, "schedules", "--json").output)[1]["paused"] is True
    assert invoke(*base, "schedules", "resume", "poll-crm").exit_code == 0
    assert invoke(*base, "schedules", "trigger", "nightly-orders").exit_code == 0
    bad = invoke(*base, "schedules", "pause", "nope")
    assert bad.exit_code == 1 and "no schedule named 'nope'" in bad.output


def test_why_explains_a_missed_fire(project: tuple[str, str]) -> None:
    spec, url = project
    module = sys.modules.get(spec.split(":")[0])
    assert module is None
    base = ["--app", spec, "--database-url", url]
    invoke(*base, "schedules", "sync")
    app = corral.App(url)
    stored = app.schedules.list()[0].row
    app.close()
    # a scheduler from the project's code, run three days later (catchup="latest")
    user_app: corral.App = sys.modules[spec.split(":")[0]].app
    clock = user_app.schedules.services()[0]
    assert isinstance(clock, ScheduleClock)
    clock.run(stored.cursor_at + 3 * 86400)
    out = invoke(*base, "why", "nightly-orders").output
    assert "missed: catchup=latest, a later fire ran instead" in out
    first = invoke(*base, "schedules", "fires", "nightly-orders").output
    assert "missed" in first and "fired" in first


def test_backfill_dry_run_start_detach_status_and_cancel(project: tuple[str, str]) -> None:
    spec, url = project
    base = ["--app", spec, "--database-url", url]
    dry = invoke(*base, "backfill", "nightly-orders", "--from", "2026-11-28", "--to",
                 "2026-11-29", "--dry-run")  # fmt: skip
    assert dry.exit_code == 0, dry.output
    assert "2026-11-28 02:00:00 CET" in dry.output and "2 fires would be made" in dry.output
    started = invoke(*base, "backfill", "nightly-orders", "--from", "2026-11-28", "--to",
                     "2026-11-30", "--detach")  # fmt: skip
    assert started.exit_code == 0 and "backfill 1 of nightly-orders: 3 fires" in started.output
    status = json.loads(invoke(*base, "backfills", "status", "1", "--json").output)
    assert (status["total"], status["waiting"], status["state"]) == (3, 3, "running")
    assert "1: nightly-orders running, 0/3 made" in invoke(*base, "backfills", "list").output
    assert invoke(*base, "backfills", "cancel", "1").exit_code == 0
    assert "(cancelled)" in invoke(*base, "backfills", "status", "1").output
    backwards = invoke(*base, "backfill", "nightly-orders", "--from", "2026-11-30", "--to",
                       "2026-11-28")  # fmt: skip
    assert backwards.exit_code == 1 and "is before start" in backwards.output
    unknown = invoke(*base, "backfill", "nope", "--from", "2026-11-28", "--to", "2026-11-30")
    assert unknown.exit_code == 1 and "unknown schedule 'nope'" in unknown.output
    many = invoke(*base, "backfill", "poll-crm", "--from", "2026-01-01", "--to", "2026-12-31")
    assert many.exit_code == 1 and "more than 10000 fires" in many.output


@pytest.fixture
def live(project: tuple[str, str]) -> Iterator[corral.App]:
    """The scheduler and worker of another process, with the same code; closed after the
    services (set up after it) stop."""
    app = corral.App(project[1])
    yield app
    app.close()


def test_backfill_follows_with_a_progress_bar_until_it_ends(
    project: tuple[str, str], live: corral.App, services: Any
) -> None:
    spec, url = project

    @live.task
    def load_table(ctx: corral.Context, table: str) -> str:
        return table

    live.schedules.add("nightly-orders", load_table, cron="0 2 * * *", tz="Europe/Berlin",
                       args=["orders"], group="pipeline-42", catchup="latest")  # fmt: skip
    services(live)
    out = invoke("--app", spec, "--database-url", url, "backfill", "nightly-orders",
                 "--from", "2026-11-28", "--to", "2026-11-30")  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "3/3" in out.output and "backfill 1 done: 3 done, 0 failed" in out.output
