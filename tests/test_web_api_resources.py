"""Workflows (the DAG, cancel), groups and rate limits (figures, settings), pools and workers
through the API, on both backends: each route's answer against what the core says, its scope,
its bad input (nothing changed), and the audit entry of each change."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import register_worker
from web_support import web

import corral
from corral.lifecycle import State


@pytest.fixture
def site(app: corral.App) -> Any:
    @app.task
    def step(ctx: Any, n: int) -> int:
        return n

    return web(app)


def _actions(app: corral.App) -> list[str]:
    return [row.entry.action for row in app.store.audit_page(None, 100)]


def _diamond(app: corral.App, group: str = "wf") -> tuple[int, list[int]]:
    wf = app.workflow("diamond", group=group)
    a = wf.add("step", 1)
    b = wf.add("step", 2, after=[a])
    c = wf.add("step", 3, after=[a])
    d = wf.add("step", 4, after=[b, c])
    workflow_id = wf.submit()
    return workflow_id, [a.id, b.id, c.id, d.id]


def test_a_workflow_shows_its_dag_and_cancels(site: Any) -> None:
    workflow_id, (a, b, c, d) = _diamond(site.app)
    got = site.client.get(f"/api/v1/workflows/{workflow_id}", headers=site.headers("viewer"))
    assert got.status_code == 200, got.text
    body = got.json()
    assert (body["name"], body["group"], body["total"], body["truncated"]) == (
        "diamond", "wf", 4, False)  # fmt: skip
    assert [(n["id"], n["state"]) for n in body["nodes"]] == [
        (a, "ready"), (b, "waiting"), (c, "waiting"), (d, "waiting")]  # fmt: skip
    edges = {(e["upstream"], e["downstream"]) for e in body["edges"]}
    assert edges == {(a, b), (a, c), (b, d), (c, d)}
    viewer = site.client.post(f"/api/v1/workflows/{workflow_id}/cancel",
                              headers=site.headers("viewer"))  # fmt: skip
    assert viewer.status_code == 403
    done = site.client.post(f"/api/v1/workflows/{workflow_id}/cancel",
                            headers=site.headers("operator"))  # fmt: skip
    assert done.json() == {"id": workflow_id, "cancelled": 4, "requested": 0}
    assert set(site.app.store.task_states([a, b, c, d]).values()) == {State.CANCELLED}
    assert "workflow.cancel" in _actions(site.app)


def test_a_workflow_outside_the_scope_or_unknown_is_404(site: Any) -> None:
    workflow_id, ids = _diamond(site.app, group="g9")
    scoped = site.headers("operator", ("client-7/*",))
    for method, path in [("GET", f"/api/v1/workflows/{workflow_id}"),
                         ("POST", f"/api/v1/workflows/{workflow_id}/cancel"),
                         ("GET", "/api/v1/workflows/999999")]:  # fmt: skip
        got = site.client.request(method, path, headers=scoped)
        assert got.status_code == 404 and "no workflow" in got.json()["detail"]
    bad = site.client.get("/api/v1/workflows/0", headers=site.headers("viewer"))
    assert bad.status_code == 422 and bad.json()["field"] == "workflow_id"
    assert State.CANCELLED not in site.app.store.task_states(ids).values()


def test_groups_show_entitled_and_actual_share_and_cap(site: Any) -> None:
    app = site.app
    app.groups.configure("g1", max_parallel=4, weight=3)
    for group in ("g1", "g1", "g2", "client-7/x"):
        app.submit("step", 1, group=group)
    got = site.client.get("/api/v1/groups", headers=site.headers("viewer")).json()
    by_name = {g["name"]: g for g in got}
    assert set(by_name) == {"g1", "g2", "client-7/x"}
    g1 = by_name["g1"]
    assert (g1["ready"], g1["max_parallel"], g1["weight"], g1["cap_use"]) == (2, 4, 3.0, 0.0)
    assert g1["entitled_share"] == pytest.approx(3 / 5)
    assert by_name["g2"]["entitled_share"] == pytest.approx(1 / 5)
    assert g1["actual_share"] == 0.0
    scoped = site.client.get("/api/v1/groups", headers=site.headers("viewer", ("client-7/*",)))
    assert [g["name"] for g in scoped.json()] == ["client-7/x"]
    one = site.client.get("/api/v1/groups/g2", headers=site.headers("viewer")).json()
    assert one["ready"] == 1 and one["max_parallel"] is None
    unseen = site.client.get("/api/v1/groups/g2", headers=site.headers("viewer", ("client-7/*",)))
    assert unseen.status_code == 404
    mine = site.client.get(
        "/api/v1/groups/client-7/x", headers=site.headers("viewer", ("client-7/*",))
    )
    assert mine.status_code == 200 and mine.json()["ready"] == 1
    fresh = site.client.get("/api/v1/groups/never", headers=site.headers("viewer")).json()
    assert fresh["counts"] == {} and fresh["weight"] == 1.0
    # the busiest first, at most `limit`; `name` finds the others
    top = site.client.get("/api/v1/groups?limit=1", headers=site.headers("viewer")).json()
    assert [g["name"] for g in top] == ["g1"]
    named = site.client.get("/api/v1/groups?name=client", headers=site.headers("viewer")).json()
    assert [g["name"] for g in named] == ["client-7/x"]
    bad = site.client.get("/api/v1/groups?limit=0", headers=site.headers("viewer"))
    assert bad.status_code == 422 and bad.json()["field"] == "limit"


def test_configure_a_group_is_admin_and_checked(site: Any) -> None:
    app = site.app
    body = {"max_parallel": 2, "weight": 2.5, "rate_limit": "10/minute"}
    op = site.client.put("/api/v1/groups/g1", json=body, headers=site.headers("operator"))
    assert op.status_code == 403
    got = site.client.put("/api/v1/groups/g1", json=body, headers=site.headers("admin"))
    assert got.status_code == 200, got.text
    assert (got.json()["max_parallel"], got.json()["rate_limit"]) == (2, "10/minute")
    assert app.groups.get("g1").max_parallel == 2 and "group.configure" in _actions(app)
    for bad, field in [({"max_parallel": 0}, "max_parallel"), ({"weight": -1}, "weight"),
                       ({"rate_limit": "fast"}, "rate_limit"), ({"burst": 3}, "burst"),
                       ({"colour": "red"}, "colour")]:  # fmt: skip
        answer = site.client.put("/api/v1/groups/g1", json=bad, headers=site.headers("admin"))
        assert answer.status_code == 422, (bad, answer.text)
        assert answer.json().get("field") == field, (bad, answer.json())
    assert app.groups.get("g1").max_parallel == 2 and app.groups.get("g1").weight == 2.5
    outside = site.client.put("/api/v1/groups/g1", json=body,
                              headers=site.headers("admin", ("client-7/*",)))  # fmt: skip
    assert outside.status_code == 404
    defaults = site.client.put("/api/v1/groups/*", json=body, headers=site.headers("admin"))
    assert defaults.status_code == 422


def test_rate_limits_read_set_and_remove(site: Any) -> None:
    app = site.app
    admin = site.headers("admin")
    put = site.client.put("/api/v1/rate-limits/crm", json={"rate_limit": "100/minute",
                                                            "burst": 5}, headers=admin)  # fmt: skip
    assert put.status_code == 200, put.text
    assert put.json() == {"key": "crm", "rate_limit": "100/minute",
                          "per_second": pytest.approx(100 / 60), "burst": 5.0}  # fmt: skip
    listed = site.client.get("/api/v1/rate-limits", headers=site.headers("viewer")).json()
    assert [r["key"] for r in listed] == ["crm"]
    bad = site.client.put("/api/v1/rate-limits/crm", json={"rate_limit": "lots"}, headers=admin)
    assert bad.status_code == 422 and bad.json()["field"] == "rate_limit"
    scoped = site.client.delete("/api/v1/rate-limits/crm",
                                headers=site.headers("admin", ("client-7/*",)))  # fmt: skip
    assert scoped.status_code == 403
    assert app.rate_limits.list()["crm"].spec == "100/minute"
    gone = site.client.delete("/api/v1/rate-limits/crm", headers=admin)
    assert gone.status_code == 204 and app.rate_limits.list() == {}
    assert site.client.delete("/api/v1/rate-limits/crm", headers=admin).status_code == 404
    assert site.client.get("/api/v1/rate-limits/crm", headers=admin).status_code == 404
    assert _actions(app).count("rate_limit.configure") == 1 and "rate_limit.remove" in _actions(app)


def test_pools_and_workers(site: Any) -> None:
    app = site.app
    now = app.clock.now()
    register_worker(app.store, "w1", now=now, concurrency=3)
    app.submit("step", 1)
    pools = site.client.get("/api/v1/pools", headers=site.headers("viewer"))
    assert pools.status_code == 200
    (default,) = pools.json()
    assert (default["name"], default["ready"], default["workers"], default["capacity"]) == (
        "default", 1, 1, 3)  # fmt: skip
    workers = site.client.get("/api/v1/workers", headers=site.headers("viewer")).json()
    assert [(w["id"], w["concurrency"], w["pools"]) for w in workers] == [("w1", 3, ["default"])]
    for path in ("/api/v1/pools", "/api/v1/workers"):
        got = site.client.get(path, headers=site.headers("viewer", ("client-7/*",)))
        assert got.status_code == 403
