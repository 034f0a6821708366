"""Alerts through the API, on both backends: the declared rules and their silences, incidents
(paged, open only, resolved by hand), silences made and ended; bad input and scoped tokens
refused with nothing changed, and the audit entries."""

from __future__ import annotations

from typing import Any

import pytest
from web_support import web

import corral
from corral.store.contract.alerts import OPEN, AlertApply, IncidentChange


@pytest.fixture
def site(app: corral.App) -> Any:
    app.alerts.webhook("hook", "http://127.0.0.1:9/hook")
    app.alerts.rule("dead-jobs", "dead", channels="hook", group="g1")
    app.alerts.rule("slow", "wait_time", channels="hook", threshold="5m", group_by="pool")
    return web(app)


def _open(app: corral.App, subject: str) -> int:
    change = IncidentChange(OPEN, "dead-jobs", subject, summary=f"{subject} died",
                            cause='{"error": "boom"}', group_key="group=g1")  # fmt: skip
    made = app.store.alert_apply(AlertApply([change], app.clock.now()))
    assert made[0] is not None
    return made[0]


def _actions(app: corral.App) -> list[str]:
    rows = app.store.audit_page(None, 100)
    return [r.entry.action for r in rows if r.entry.action.startswith("alert.")]


def test_rules_incidents_and_resolve(site: Any) -> None:
    app = site.app
    viewer = site.headers("viewer")
    rules = site.client.get("/api/v1/alerts/rules", headers=viewer).json()
    assert [(r["name"], r["kind"], r["group"]) for r in rules] == [
        ("dead-jobs", "dead", "g1"), ("slow", "wait_time", None)]  # fmt: skip
    assert [r["group_by"] for r in rules] == [[], ["pool"]]
    ids = [_open(app, f"task:{n}") for n in range(3)]
    first = site.client.get("/api/v1/alerts/incidents", params={"limit": 2}, headers=viewer).json()
    assert [i["id"] for i in first["incidents"]] == ids[:0:-1]
    assert first["incidents"][0]["cause"] == {"error": "boom"}
    assert first["incidents"][0]["group_key"] == "group=g1"
    rest = site.client.get("/api/v1/alerts/incidents", params={"before": first["next"]},
                           headers=viewer).json()  # fmt: skip
    assert [i["id"] for i in rest["incidents"]] == [ids[0]] and rest["next"] is None
    op = site.headers("operator")
    assert site.client.post(f"/api/v1/alerts/incidents/{ids[1]}/resolve",
                            headers=viewer).status_code == 403  # fmt: skip
    done = site.client.post(f"/api/v1/alerts/incidents/{ids[1]}/resolve", headers=op)
    assert done.status_code == 200 and done.json()["state"] == "resolved"
    again = site.client.post(f"/api/v1/alerts/incidents/{ids[1]}/resolve", headers=op)
    assert again.status_code == 409
    assert site.client.post("/api/v1/alerts/incidents/999999/resolve",
                            headers=op).status_code == 404  # fmt: skip
    still = site.client.get("/api/v1/alerts/incidents", params={"open": True}, headers=viewer)
    assert [i["id"] for i in still.json()["incidents"]] == [ids[2], ids[0]]
    assert site.client.get("/api/v1/alerts/notifications", headers=viewer).status_code == 200
    assert _actions(app) == ["alert.resolve"]


def test_silence_a_rule_and_end_it(site: Any) -> None:
    app = site.app
    op = site.headers("operator")
    now = app.clock.now()
    made = site.client.post("/api/v1/alerts/silences", json={"rule": "slow", "for": "2h"},
                            headers=op)  # fmt: skip
    assert made.status_code == 201, made.text
    assert made.json()["until"] == pytest.approx(now + 7200, abs=60)
    listed = site.client.get("/api/v1/alerts/silences", headers=site.headers("viewer")).json()
    assert [s["rule"] for s in listed] == ["slow"]
    rules = site.client.get("/api/v1/alerts/rules", headers=op).json()
    assert next(r for r in rules if r["name"] == "slow")["silenced_until"] is not None
    ended = site.client.delete("/api/v1/alerts/silences/slow", headers=op)
    assert ended.status_code == 204
    assert app.store.alert_silences(app.clock.now()) == {}
    assert site.client.delete("/api/v1/alerts/silences/slow", headers=op).status_code == 404
    assert _actions(app) == ["alert.unsilence", "alert.silence"]


@pytest.mark.parametrize(
    ("body", "field"),
    [({"rule": "nope", "for": "1h"}, "rule"), ({"rule": "slow", "for": "forever"}, "for"),
     ({"rule": "slow", "for": "0"}, "for"), ({"rule": "slow", "for": "900d"}, "for"),
     ({"rule": "slow"}, "for"), ({"rule": "slow", "for": "1h", "x": 1}, "x")],
)  # fmt: skip
def test_a_bad_silence_silences_nothing(site: Any, body: dict[str, Any], field: str) -> None:
    got = site.client.post("/api/v1/alerts/silences", json=body, headers=site.headers("operator"))
    assert got.status_code == 422, got.text
    assert got.json()["field"] == field
    assert site.app.store.alert_silences(site.app.clock.now()) == {}


def test_a_scoped_token_cant_use_alerts(site: Any) -> None:
    scoped = site.headers("operator", ("client-7/*",))
    for method, path, body in [
        ("GET", "/api/v1/alerts/rules", None), ("GET", "/api/v1/alerts/incidents", None),
        ("GET", "/api/v1/alerts/silences", None),
        ("POST", "/api/v1/alerts/silences", {"rule": "slow", "for": "1h"}),
    ]:  # fmt: skip
        got = site.client.request(method, path, json=body, headers=scoped)
        assert got.status_code == 403, (method, path)
    assert site.app.store.alert_silences(site.app.clock.now()) == {}
