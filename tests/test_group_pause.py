"""Paused groups on both backends: the store's pause, resume and list; a paused group admits
nothing while the others go on (a scheduler and a worker running), and its tasks run once it is
resumed; `corral why`, `corral groups pause|resume`, and the API's operator routes with their
scope and audit entries. The policy's own property (a paused group's share goes to the others)
is in test_admission.py."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import T0, Services, register_worker, submit
from web_support import web

import corral
from corral.cli import cli
from corral.errors import ConfigError
from corral.lifecycle import State
from corral.scheduler.dispatcher import dispatch
from corral.scheduler.why import why
from corral.store import Store
from corral.store.contract import PausedGroup


def test_the_store_pauses_resumes_and_lists(store: Store) -> None:
    assert store.group_paused_list() == []
    assert store.group_pause(PausedGroup("crm", T0, "cli:ana", "vendor down"))
    assert not store.group_pause(PausedGroup("crm", T0 + 5, "web:bot", None))  # the first stands
    assert store.group_pause(PausedGroup("never-seen", T0 + 1, "cli:ana", None))
    assert store.group_paused_list() == [
        PausedGroup("crm", T0, "cli:ana", "vendor down"),
        PausedGroup("never-seen", T0 + 1, "cli:ana", None),
    ]
    assert store.group_resume("crm")
    assert not store.group_resume("crm")
    assert [p.name for p in store.group_paused_list()] == ["never-seen"]


def test_a_paused_group_is_not_admitted_and_the_others_are(store: Store) -> None:
    register_worker(store, concurrency=10)
    held = [submit(store, group="crm") for _ in range(3)]
    other = [submit(store, group="etl") for _ in range(3)]
    store.group_pause(PausedGroup("crm", T0, "cli:ana", None))
    assert dispatch(store, T0 + 1) == 3
    states = store.task_states(held + other)
    assert {states[i] for i in held} == {State.READY}
    assert {states[i] for i in other} == {State.ADMITTED}
    _, reasons = why(store, held[0], T0 + 2)
    assert "group_paused" in [r.code for r in reasons], reasons
    assert dispatch(store, T0 + 2) == 0  # still paused, though slots are free
    store.group_resume("crm")
    assert dispatch(store, T0 + 3) == 3
    assert set(store.task_states(held).values()) == {State.ADMITTED}
    assert "group_paused" not in [r.code for r in why(store, held[0], T0 + 4)[1]]


def _tasks(app: corral.App) -> Any:
    @app.task
    def step(ctx: Any, n: int) -> int:
        return n

    return step


def test_running_services_hold_a_paused_group_and_run_it_once_resumed(
    app: corral.App, services: Callable[..., Services]
) -> None:
    step = _tasks(app)
    app.groups.pause("crm", by="test", reason="vendor down")
    services(app)
    held = [step.submit(n, group="crm") for n in range(3)]
    free = [step.submit(n, group="etl") for n in range(3)]
    for task_id in free:
        app.wait(task_id, timeout=20)
    time.sleep(0.5)  # rounds go by: the paused group's tasks stay ready
    assert {app.get(i).state for i in held} == {State.READY}
    assert app.groups.resume("crm")
    assert [app.wait(i, timeout=20).state for i in held] == [State.SUCCEEDED] * 3


def test_bad_names_are_refused_naming_the_field(app: corral.App) -> None:
    with pytest.raises(ConfigError, match="holds the defaults"):
        app.groups.pause("*", by="test")
    with pytest.raises(ConfigError, match="group name"):
        app.groups.pause("", by="test")
    with pytest.raises(ConfigError, match="reason"):
        app.groups.pause("g", by="test", reason="x" * 1001)
    assert app.groups.paused() == []


def test_the_cli_pauses_lists_and_resumes(app: corral.App) -> None:
    step = _tasks(app)
    step.submit(1, group="crm")
    base = ["--database-url", app.url, "groups"]
    paused = CliRunner().invoke(cli, [*base, "pause", "crm", "--reason", "vendor down"])
    assert paused.exit_code == 0 and "crm: paused" in paused.output, paused.output
    again = CliRunner().invoke(cli, [*base, "pause", "crm"])
    assert "crm: already paused" in again.output
    shown = CliRunner().invoke(cli, base)
    assert "paused crm by cli:" in shown.output and "vendor down" in shown.output, shown.output
    listed = CliRunner().invoke(cli, [*base, "--json"])
    assert '"paused": true' in listed.output
    resumed = CliRunner().invoke(cli, [*base, "resume", "crm"])
    assert "crm: resumed" in resumed.output
    assert "was not paused" in CliRunner().invoke(cli, [*base, "resume", "crm"]).output
    bad = CliRunner().invoke(cli, [*base, "pause", "*"])
    assert bad.exit_code == 1 and "Error:" in bad.output and "defaults" in bad.output


def test_the_api_pauses_for_operators_within_their_scope(app: corral.App) -> None:
    step = _tasks(app)
    step.submit(1, group="client-7/crm")
    site = web(app)
    path = "/api/v1/paused-groups/client-7/crm"
    viewer = site.client.put(path, json={}, headers=site.headers("viewer"))
    assert viewer.status_code == 403 and app.groups.paused() == []
    outside = site.client.put(path, json={}, headers=site.headers("operator", ("client-9/*",)))
    assert outside.status_code == 404 and app.groups.paused() == []
    bad = site.client.put(path, json={"reason": "x" * 1001}, headers=site.headers("operator"))
    assert bad.status_code == 422 and app.groups.paused() == []
    done = site.client.put(path, json={"reason": "vendor down"},
                           headers=site.headers("operator", ("client-7/*",)))  # fmt: skip
    assert done.status_code == 200, done.text
    body = done.json()
    assert (body["name"], body["reason"]) == ("client-7/crm", "vendor down")
    assert body["by"].startswith("web:")
    again = site.client.put(path, headers=site.headers("operator"))  # no body: no reason
    assert again.json()["reason"] == "vendor down"  # the first pause stands
    group = site.client.get("/api/v1/groups/client-7/crm", headers=site.headers("viewer")).json()
    assert group["paused"]["reason"] == "vendor down"
    listed = site.client.get("/api/v1/groups", headers=site.headers("viewer")).json()
    assert [g["paused"] is not None for g in listed if g["name"] == "client-7/crm"] == [True]
    pauses = site.client.get("/api/v1/paused-groups", headers=site.headers("viewer")).json()
    assert [p["name"] for p in pauses] == ["client-7/crm"]
    hidden = site.client.get("/api/v1/paused-groups",
                             headers=site.headers("viewer", ("client-9/*",)))  # fmt: skip
    assert hidden.json() == []
    resumed = site.client.delete(path, headers=site.headers("operator"))
    assert resumed.status_code == 204 and app.groups.paused() == []
    assert site.client.delete(path, headers=site.headers("operator")).status_code == 404
    actions = [row.entry.action for row in app.store.audit_page(None, 100)]
    assert actions.count("group.pause") == 2 and actions.count("group.resume") == 1
