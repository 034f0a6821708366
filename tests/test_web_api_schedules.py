"""Schedules and backfills through the API, on both backends: the list and one schedule with its
fires, pause / resume / trigger, a backfill's dry run, start, grid, pause, resume and cancel;
scoped tokens, unknown names and bad input (nothing changed), and the audit entries."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from conftest import finish, start
from schedule_apps import services, three_schedules
from web_support import web

import corral
from corral.clock import ManualClock
from corral.lifecycle import State

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


@pytest.fixture
def site(app: corral.App, clock: ManualClock) -> Any:
    ticker, _ = services(app)
    ticker.run(T0)
    clock.set(T0 + 3 * HOUR + 1)
    ticker.run(clock.now())
    return web(app)


def _actions(app: corral.App) -> list[str]:
    rows = app.store.audit_page(None, 100)
    return [r.entry.action for r in rows if not r.entry.action.startswith("token.")]


def test_schedules_list_and_one_with_its_fires(site: Any) -> None:
    h = site.headers("viewer")
    listed = site.client.get("/api/v1/schedules", headers=h).json()
    assert [s["name"] for s in listed] == ["daily", "hourly", "latest"]
    hourly = next(s for s in listed if s["name"] == "hourly")
    assert (hourly["fired"], hourly["paused"], hourly["group"], hourly["declared"]) == (
        3, False, "default", True)  # fmt: skip
    assert hourly["next_at"] == T0 + 4 * HOUR and hourly["spec"]["tz"] == "UTC"
    one = site.client.get("/api/v1/schedules/hourly", params={"fires": 2}, headers=h).json()
    assert [f["logical_time"] for f in one["fires"]] == [T0 + 3 * HOUR, T0 + 2 * HOUR]
    assert all(f["outcome"] == "fired" and len(f["task_ids"]) == 1 for f in one["fires"])
    tasks = site.client.get("/api/v1/tasks", params={"schedule": "hourly"}, headers=h).json()
    assert len(tasks["tasks"]) == 3
    assert site.client.get("/api/v1/schedules/nope", headers=h).status_code == 404
    bad = site.client.get("/api/v1/schedules/hourly", params={"fires": 0}, headers=h)
    assert bad.status_code == 422 and bad.json()["field"] == "fires"
    scoped = site.headers("viewer", ("client-7/*",))
    assert site.client.get("/api/v1/schedules", headers=scoped).json() == []
    assert site.client.get("/api/v1/schedules/hourly", headers=scoped).status_code == 404


def test_pause_resume_and_trigger(site: Any) -> None:
    op = site.headers("operator")
    assert site.client.post("/api/v1/schedules/hourly/pause",
                            headers=site.headers("viewer")).status_code == 403  # fmt: skip
    paused = site.client.post("/api/v1/schedules/hourly/pause", headers=op)
    assert paused.status_code == 200 and paused.json()["paused"] is True
    assert site.app.schedules.get("hourly").row.paused
    resumed = site.client.post("/api/v1/schedules/hourly/resume", headers=op).json()
    assert resumed["paused"] is False and not site.app.schedules.get("hourly").row.paused
    fired = site.client.post("/api/v1/schedules/daily/trigger", headers=op)
    assert fired.status_code == 202 and fired.json()["trigger_pending"] is True
    assert site.client.post("/api/v1/schedules/nope/trigger", headers=op).status_code == 404
    scoped = site.headers("operator", ("client-7/*",))
    assert site.client.post("/api/v1/schedules/latest/pause", headers=scoped).status_code == 404
    assert not site.app.schedules.get("latest").row.paused
    assert _actions(site.app) == ["schedule.trigger", "schedule.resume", "schedule.pause"]


def test_a_backfill_dry_run_start_grid_pause_and_cancel(site: Any, clock: ManualClock) -> None:
    op = site.headers("operator")
    body = {"schedule": "daily", "start": "2025-03-01", "end": "2025-03-04"}
    dry = site.client.post("/api/v1/backfills", json=body | {"dry_run": True}, headers=op)
    assert dry.status_code == 201, dry.text
    assert dry.json()["id"] is None and dry.json()["total"] == 4
    assert dry.json()["logical_times"][0].startswith("2025-03-01T02:00")
    assert site.app.backfills.list() == []
    made = site.client.post("/api/v1/backfills", json=body | {"max_parallel": 2}, headers=op)
    assert made.status_code == 201, made.text
    backfill_id = made.json()["id"]
    _, maker = services(site.app)
    maker.run(clock.now())
    got = site.client.get(f"/api/v1/backfills/{backfill_id}", headers=site.headers("viewer"))
    detail = got.json()
    assert detail["backfill"]["total"] == 4 and detail["progress"]["done"] == 0
    cells = detail["grid"]
    assert len(cells) == 4 and {c["outcome"] for c in cells} == {"waiting"}
    assert [c["logical_time"] for c in cells] == sorted(c["logical_time"] for c in cells)
    listed = site.client.get("/api/v1/backfills", headers=site.headers("viewer")).json()
    assert [b["id"] for b in listed] == [backfill_id]
    first = cells[0]["task_ids"][0]
    finish(site.app.store, start(site.app.store, first, clock.now()), State.SUCCEEDED, clock.now())
    detail = site.client.get(f"/api/v1/backfills/{backfill_id}", headers=op).json()
    assert [c["outcome"] for c in detail["grid"]] == ["done", "waiting", "waiting", "waiting"]
    assert detail["progress"]["done"] == 1
    cancelled = site.client.post(f"/api/v1/backfills/{backfill_id}/cancel", headers=op).json()
    assert cancelled == {"id": backfill_id, "state": "cancelled", "cancelled_tasks": 3}
    after = site.client.get(f"/api/v1/backfills/{backfill_id}", headers=op).json()
    assert [c["outcome"] for c in after["grid"]] == ["done", "failed", "failed", "failed"]
    assert site.client.post(f"/api/v1/backfills/{backfill_id}/cancel",
                            headers=op).status_code == 409  # fmt: skip
    assert _actions(site.app) == ["backfill.cancel", "backfill.start"]


def test_pause_and_resume_a_running_backfill(site: Any) -> None:
    op = site.headers("operator")
    body = {"schedule": "hourly", "start": "2025-03-01", "end": "2025-03-02"}
    backfill_id = site.client.post("/api/v1/backfills", json=body, headers=op).json()["id"]
    paused = site.client.post(f"/api/v1/backfills/{backfill_id}/pause", headers=op)
    assert paused.json()["state"] == "paused"
    assert site.app.backfills.get(backfill_id).state == "paused"
    resumed = site.client.post(f"/api/v1/backfills/{backfill_id}/resume", headers=op)
    assert resumed.json()["state"] == "running"
    assert site.client.post(f"/api/v1/backfills/{backfill_id}/resume",
                            headers=op).status_code == 409  # fmt: skip


@pytest.mark.parametrize(
    ("body", "field"),
    [({"schedule": "nope", "start": "2025-03-01", "end": "2025-03-02"}, "schedule"),
     ({"schedule": "daily", "start": "2025-03-05", "end": "2025-03-02"}, "schedule"),
     ({"schedule": "daily", "start": "2025-03-01", "end": "2025-03-02", "reprocess": "x"},
      "reprocess"),
     ({"schedule": "daily", "start": "2025-03-01", "end": "2025-12-31", "limit": 3},
      "schedule"),
     ({"schedule": "daily", "start": "yesterday", "end": "2025-03-02"}, "start"),
     ({"schedule": "daily", "start": "2025-03-01", "end": "2025-03-02", "weight": 0}, "weight")],
)  # fmt: skip
def test_a_bad_backfill_starts_nothing(site: Any, body: dict[str, Any], field: str) -> None:
    got = site.client.post("/api/v1/backfills", json=body, headers=site.headers("operator"))
    assert got.status_code == 422, got.text
    assert got.json()["field"] == field
    assert site.app.backfills.list() == []


def test_backfills_unknown_or_out_of_scope_are_404(site: Any) -> None:
    op = site.headers("operator")
    body = {"schedule": "daily", "start": "2025-03-01", "end": "2025-03-02"}
    scoped = site.headers("operator", ("client-7/*",))
    assert site.client.post("/api/v1/backfills", json=body, headers=scoped).status_code == 404
    backfill_id = site.client.post("/api/v1/backfills", json=body, headers=op).json()["id"]
    for method, path in [("GET", f"/api/v1/backfills/{backfill_id}"),
                         ("POST", f"/api/v1/backfills/{backfill_id}/cancel"),
                         ("GET", "/api/v1/backfills/999999")]:  # fmt: skip
        assert site.client.request(method, path, headers=scoped).status_code == 404
    assert site.client.get("/api/v1/backfills", headers=scoped).json() == []
    assert site.app.backfills.get(backfill_id).state == "running"
