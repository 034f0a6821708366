"""The authorisation matrix: every operation of corral web (the API and the dashboard) x no
credentials, a forged, an expired and a revoked token, each role, a token scoped to other
groups, a session without (or with a wrong) CSRF token, a foreign Origin. Routes are walked
from the app itself, so a route added without a role fails here. Both backends."""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import BACKENDS, Databases
from web_support import BASE, web

import corral
from corral.clock import ManualClock
from corral.web import create_app
from corral.web.auth import ROLES, Tokens, split
from corral.web.routes import Operation, operations

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
MINE, THEIRS = "mine/loads", "theirs-7f3a"
"""The scoped token's group, and a group it must never see (its name must never show)."""


def _operations() -> list[Operation]:
    with tempfile.TemporaryDirectory() as folder:
        app = corral.App(f"sqlite:///{folder}/routes.db")
        try:
            return operations(create_app(app))
        finally:
            app.close()


OPERATIONS = _operations()
IDS = [f"{o.method} {o.path}" for o in OPERATIONS]
RANK = {role: i for i, role in enumerate(ROLES)}


def test_every_operation_declares_a_role_or_is_public() -> None:
    undeclared = [f"{o.method} {o.path}" for o in OPERATIONS if o.role is None and not o.public]
    assert undeclared == []
    assert {(o.method, o.path) for o in OPERATIONS if o.public} <= {
        ("GET", "/api/v1/health"), ("POST", "/api/v1/session"), ("GET", "/login"),
        ("POST", "/login")}  # fmt: skip


@pytest.fixture(scope="module", params=BACKENDS)
def shared_site(request: pytest.FixtureRequest, tmp_path_factory: Any) -> Iterator[Any]:
    """One site a backend for the whole matrix (a fresh database per case would take minutes);
    each case makes its own tasks and starts signed out."""
    dbs = Databases(request.param, tmp_path_factory.mktemp("authz"))
    app = corral.App(dbs.new_url())

    @app.task
    def noop(ctx: Any) -> None:
        return None

    try:
        yield web(app)
    finally:
        app.close()
        dbs.cleanup()


@pytest.fixture
def world(shared_site: Any) -> dict[str, Any]:
    shared_site.client.cookies.clear()
    noop = shared_site.app.task_type("noop")
    return {"site": shared_site, "mine": noop.submit(group=MINE),
            "theirs": noop.submit(group=THEIRS)}  # fmt: skip


def _path(op: Operation, task_id: int) -> str:
    path = op.path.replace("{task_id}", str(task_id))
    return re.sub(r"\{[^}]+\}", "1", path)


def _call(site: Any, op: Operation, task_id: int, headers: dict[str, str]) -> Any:
    body = {} if op.method in UNSAFE else None
    return site.client.request(op.method, _path(op, task_id), headers=headers, json=body)


@pytest.mark.parametrize("op", OPERATIONS, ids=IDS)
def test_without_valid_credentials_only_public_operations_answer(
    world: dict[str, Any], op: Operation
) -> None:
    site = world["site"]
    past = Tokens(site.app.store, ManualClock(time.time() - 100))
    expired = past.create("admin", expires=10).secret
    revoked = site.tokens.create("admin")
    site.tokens.revoke(revoked.row.prefix)
    good = site.token("admin")
    forged = good[: good.rindex("_") + 1] + "A" * 43
    for label, headers in [
        ("none", {}), ("forged", {"Authorization": f"Bearer {forged}"}),
        ("expired", {"Authorization": f"Bearer {expired}"}),
        ("revoked", {"Authorization": f"Bearer {revoked.secret}"}),
        ("not bearer", {"Authorization": f"Basic {good}"}),
    ]:  # fmt: skip
        response = _call(site, op, world["mine"], headers | {"Origin": BASE})
        if op.public:
            assert response.status_code != 401 or label != "none", (label, response.text)
        else:
            assert response.status_code == 401, (label, response.status_code, response.text)
            assert response.headers["content-type"] == "application/problem+json"
    assert site.app.get(world["mine"]).state == "ready"


@pytest.mark.parametrize("op", [o for o in OPERATIONS if not o.public], ids=lambda o: o.path)
def test_each_role_gets_exactly_its_operations(world: dict[str, Any], op: Operation) -> None:
    site = world["site"]
    assert op.role is not None
    for role in ROLES:
        response = _call(site, op, world["mine"], site.headers(role) | {"Origin": BASE})
        if RANK[role] < RANK[op.role]:
            assert response.status_code == 403, (role, response.text)
            assert op.role in response.json()["detail"]
        else:
            assert response.status_code not in (401, 403), (role, response.text)


@pytest.mark.parametrize("op", [o for o in OPERATIONS if not o.public], ids=lambda o: o.path)
def test_a_token_scoped_to_other_groups_sees_and_touches_nothing_of_theirs(
    world: dict[str, Any], op: Operation
) -> None:
    site = world["site"]
    scoped = site.headers("admin", ("mine/*",)) | {"Origin": BASE}
    response = _call(site, op, world["theirs"], scoped)
    assert THEIRS not in response.text, response.text
    if "{task_id}" in op.path:
        assert response.status_code == 404, response.text
    assert site.app.get(world["theirs"]).state == "ready"


UNSAFE_OPS = [o for o in OPERATIONS if o.method in UNSAFE and not o.public]


@pytest.mark.parametrize("op", UNSAFE_OPS, ids=lambda o: f"{o.method} {o.path}")
def test_a_session_needs_csrf_and_our_origin_for_every_unsafe_operation(
    world: dict[str, Any], op: Operation
) -> None:
    site = world["site"]
    csrf = site.login("admin")
    for headers in [
        {"Origin": BASE},
        {"Origin": BASE, "X-CSRF-Token": "f" * 64},
        {"Origin": "https://evil.example", "X-CSRF-Token": csrf},
        {"Origin": "null", "X-CSRF-Token": csrf},
        {"X-CSRF-Token": csrf},
    ]:
        response = _call(site, op, world["mine"], headers)
        assert response.status_code == 403, (headers, response.text)
        assert site.app.get(world["mine"]).state == "ready"
    response = _call(site, op, world["mine"], {"Origin": BASE, "X-CSRF-Token": csrf})
    assert response.status_code not in (401, 403), response.text


@pytest.mark.parametrize("op", UNSAFE_OPS, ids=lambda o: f"{o.method} {o.path}")
def test_a_bearer_request_from_a_foreign_origin_is_refused(world: dict[str, Any],
                                                          op: Operation) -> None:  # fmt: skip
    site = world["site"]
    headers = site.headers("admin") | {"Origin": "https://evil.example"}
    response = _call(site, op, world["mine"], headers)
    assert response.status_code == 403, response.text
    assert site.app.get(world["mine"]).state == "ready"
    assert split(site.token("admin"))
