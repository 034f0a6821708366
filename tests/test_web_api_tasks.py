"""The tasks API on both backends: the list's filters and paging (and its bad input), submit
with an Idempotency-Key (201, then 200 with the same task), and bulk cancel / retry by filter:
the dry run's count and confirmation, execution, refusals, a scoped token bounded by its groups,
the audit log. Each refusal checks that nothing changed."""

from __future__ import annotations

import json
from typing import Any

import pytest
from web_support import web

import corral
from corral.lifecycle import State
from corral.web import WebSettings


@pytest.fixture
def site(app: corral.App) -> Any:
    @app.task
    def add(ctx: Any, a: int, b: int = 0) -> int:
        return a + b

    return web(app, WebSettings(bulk_max=5))


def _submit(app: corral.App, group: str = "g1", **options: Any) -> int:
    return app.submit("add", 1, group=group, **options)


def _states(app: corral.App, ids: list[int]) -> set[State]:
    return set(app.store.task_states(ids).values())


def _audit(app: corral.App) -> list[Any]:
    return [row.entry for row in app.store.audit_page(None, 100)]


def test_list_filters_by_state_type_group_and_pages(site: Any) -> None:
    app = site.app
    ids = [_submit(app, "g1") for _ in range(3)] + [_submit(app, "g2")]
    app.cancel(ids[0])
    h = site.headers("viewer")
    params = {"state": ["ready", "cancelled"], "group": "g1", "type": "add"}
    got = site.client.get("/api/v1/tasks", params=params, headers=h)
    assert got.status_code == 200
    assert [t["id"] for t in got.json()["tasks"]] == ids[2::-1]
    only = site.client.get("/api/v1/tasks", params={"state": "cancelled"}, headers=h).json()
    assert [t["id"] for t in only["tasks"]] == [ids[0]]
    first = site.client.get("/api/v1/tasks", params={"limit": 2}, headers=h).json()
    rest = site.client.get("/api/v1/tasks", params={"limit": 2, "after": first["next"]},
                           headers=h).json()  # fmt: skip
    assert [t["id"] for t in first["tasks"] + rest["tasks"]] == ids[::-1]
    assert rest["next"] is None
    assert site.client.get("/api/v1/tasks", params={"schedule": "none"}, headers=h).json() == {
        "tasks": [], "next": None}  # fmt: skip


@pytest.mark.parametrize(
    ("params", "field"),
    [({"state": "sleeping"}, "state"), ({"after": "garbage"}, "after"), ({"limit": 0}, "limit"),
     ({"workflow": 0}, "workflow"), ({"created_from": "soon"}, "created_from")],
)  # fmt: skip
def test_list_bad_input_names_its_field(site: Any, params: dict[str, Any], field: str) -> None:
    got = site.client.get("/api/v1/tasks", params=params, headers=site.headers("viewer"))
    assert got.status_code == 422, got.text
    assert got.headers["content-type"] == "application/problem+json"
    assert got.json()["field"] == field


def test_submit_with_an_idempotency_key_stores_once(site: Any) -> None:
    h = site.headers("operator") | {"Idempotency-Key": "load-1"}
    body = {"type": "add", "args": [2], "kwargs": {"b": 3}, "group": "g1", "priority": 4}
    first = site.client.post("/api/v1/tasks", json=body, headers=h)
    assert first.status_code == 201, first.text
    again = site.client.post("/api/v1/tasks", json=body, headers=h)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert again.json()["created"] is False
    task = site.app.get(first.json()["id"])
    assert (json.loads(task.args), json.loads(task.kwargs)) == ([2], {"b": 3})
    assert (task.group, task.priority) == ("g1", 4)
    # another token's same key is another call
    other = site.client.post("/api/v1/tasks", json=body, headers=site.headers("admin")
                             | {"Idempotency-Key": "load-1"})  # fmt: skip
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
    assert [e.action for e in _audit(site.app)].count("task.submit") == 2


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [({"type": "nope"}, 422, "type"),
     ({"type": "add", "args": [1, 2, 3]}, 422, None),
     ({"type": "add", "args": [1], "priority": -1}, 422, "priority"),
     ({"type": "add", "args": [1], "kwargs": {"group": "x"}}, 422, "kwargs"),
     ({"type": "add", "args": [1], "depends_on": [999_999]}, 422, "depends_on"),
     ({"type": "add", "args": [1], "depends_on": [2**70]}, 422, "depends_on.0"),
     ({"type": "add", "args": [1], "group": "*"}, 422, None),
     ({"type": "add", "args": [1], "extra": 1}, 422, "extra")],
)  # fmt: skip
def test_submit_bad_input_stores_nothing(site: Any, body: dict[str, Any], status: int,
                                         field: str | None) -> None:  # fmt: skip
    got = site.client.post("/api/v1/tasks", json=body, headers=site.headers("operator"))
    assert got.status_code == status, got.text
    if field is not None:
        assert got.json()["field"] == field
    assert site.client.get("/api/v1/tasks", headers=site.headers("viewer")).json()["tasks"] == []


def test_submit_is_for_operators_and_a_scoped_token_submits_to_its_groups(site: Any) -> None:
    body = {"type": "add", "args": [1], "group": "client-7/a"}
    assert site.client.post("/api/v1/tasks", json=body,
                            headers=site.headers("viewer")).status_code == 403  # fmt: skip
    scoped = site.headers("operator", ("client-7/*",))
    assert site.client.post("/api/v1/tasks", json=body, headers=scoped).status_code == 201
    outside = site.client.post("/api/v1/tasks", json=body | {"group": "g9"}, headers=scoped)
    assert outside.status_code == 403 and outside.json()["field"] == "group"
    hidden = _submit(site.app, "g9")
    dep = site.client.post("/api/v1/tasks", json=body | {"depends_on": [hidden]}, headers=scoped)
    assert dep.status_code == 422 and dep.json()["field"] == "depends_on"


def _bulk(site: Any, action: str, body: dict[str, Any], role: str = "operator",
          scope: tuple[str, ...] = ()) -> Any:  # fmt: skip
    return site.client.post(f"/api/v1/tasks/bulk/{action}", json=body,
                            headers=site.headers(role, scope))  # fmt: skip


def test_bulk_cancel_dry_run_then_confirmed(site: Any) -> None:
    app = site.app
    mine = [_submit(app, "g1") for _ in range(3)]
    other = [_submit(app, "g2") for _ in range(2)]
    flt = {"group": "g1"}
    preview = _bulk(site, "cancel", {"filter": flt, "dry_run": True})
    assert preview.status_code == 200, preview.text
    assert preview.json()["count"] == 3 and _states(app, mine) == {State.READY}
    late = _submit(app, "g1")  # after the preview: not part of it
    token = preview.json()["confirmation"]
    done = _bulk(site, "cancel", {"filter": flt, "confirmation": token})
    assert done.status_code == 200, done.text
    assert {k: done.json()[k] for k in ("previewed", "changed", "skipped")} == {
        "previewed": 3, "changed": 3, "skipped": 0}  # fmt: skip
    assert _states(app, mine) == {State.CANCELLED}
    assert _states(app, [*other, late]) == {State.READY}
    entry = [e for e in _audit(app) if e.action == "tasks.bulk_cancel"]
    assert len(entry) == 1 and entry[0].changed == 3 and '"group": "g1"' in entry[0].filter
    # and back: retry them by state
    retry = _bulk(site, "retry", {"filter": {"states": ["cancelled"]}, "dry_run": True})
    assert retry.json()["count"] == 3
    again = _bulk(site, "retry", {"filter": {"states": ["cancelled"]},
                                  "confirmation": retry.json()["confirmation"]})  # fmt: skip
    assert again.json()["changed"] == 3 and _states(app, mine) == {State.READY}


def test_bulk_refusals_change_nothing(site: Any) -> None:
    app = site.app
    ids = [_submit(app, "g1") for _ in range(6)]
    cases = [
        ({"filter": {"group": "none"}, "dry_run": True}, 409, "filter"),
        ({"filter": {"group": "g1"}, "dry_run": True}, 422, "allow_large"),
        ({"filter": {"states": ["zzz"]}, "dry_run": True}, 422, "filter.states"),
        ({"filter": {"states": ["ready"]}, "dry_run": False}, 422, "confirmation"),
        ({"filter": {"states": ["ready"]}, "confirmation": "abc.def"}, 422, "confirmation"),
        ({"filter": {"limit": 3}}, 422, "filter.limit"),
    ]
    for body, status, field in cases:
        got = _bulk(site, "cancel", body)
        assert (got.status_code, got.json().get("field")) == (status, field), (body, got.text)
    retry = _bulk(site, "retry", {"filter": {"states": ["ready"]}, "dry_run": True})
    assert retry.status_code == 422 and retry.json()["field"] == "filter.states"
    large = _bulk(site, "cancel", {"filter": {"group": "g1"}, "dry_run": True,
                                   "allow_large": True})  # fmt: skip
    token = large.json()["confirmation"]
    # a confirmation for another filter, action or token is refused
    for action, body, role in [("cancel", {"filter": {"group": "g2"}}, "operator"),
                               ("retry", {"filter": {"group": "g1"}}, "operator"),
                               ("cancel", {"filter": {"group": "g1"}}, "admin")]:  # fmt: skip
        got = _bulk(site, action, body | {"confirmation": token}, role)
        assert got.status_code == 422 and got.json()["field"] == "confirmation", got.text
    assert _bulk(site, "cancel", {"filter": {}, "dry_run": True}, "viewer").status_code == 403
    assert _states(app, ids) == {State.READY}
    assert not [e for e in _audit(app) if e.action.startswith("tasks.bulk")]


def test_a_scoped_token_bulk_touches_only_its_groups(site: Any) -> None:
    app = site.app
    mine = [_submit(app, "client-7/a"), _submit(app, "client-7/b")]
    other = [_submit(app, "g1"), _submit(app, "client-70")]
    scope = ("client-7/*",)
    preview = _bulk(site, "cancel", {"filter": {}, "dry_run": True}, scope=scope)
    assert preview.json()["count"] == 2
    done = _bulk(site, "cancel", {"filter": {}, "confirmation": preview.json()["confirmation"]},
                 scope=scope)  # fmt: skip
    assert done.json()["changed"] == 2
    assert _states(app, mine) == {State.CANCELLED} and _states(app, other) == {State.READY}
    nothing = _bulk(site, "cancel", {"filter": {"group": "g1"}, "dry_run": True}, scope=scope)
    assert nothing.status_code == 409
