"""`corral alerts`: rules, open incidents, notifications with their delivery state; `test`,
`silence`, `resolve`; through click's CliRunner, on both backends."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import finish, register_worker, start, submit
from projects import app_project

import corral
from corral.cli import cli, load_app
from corral.lifecycle import State

APP_CODE = textwrap.dedent(
    """
    import corral

    app = corral.App()

    @app.task
    def job(ctx):
        return None

    app.alerts.webhook("hook", "http://127.0.0.1:9/nothing", timeout=1)
    app.alerts.rule("dead-jobs", "dead", channels="hook", group_wait=0, group_by="pool")
    """
)


@pytest.fixture
def project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, app_url: str
) -> Iterator[tuple[str, str]]:
    yield from app_project(tmp_path, monkeypatch, "cli_alerts", APP_CODE, app_url)


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), prog_name="corral")


def test_alerts_list_silence_resolve_and_test(project: tuple[str, str]) -> None:
    spec, url = project
    base = ["--app", spec, "--database-url", url]
    app = corral.App(url)
    register_worker(app.store, now=app.clock.now())
    now = app.clock.now()
    finish(app.store, start(app.store, submit(app.store, now), now), State.DEAD, now)
    # what a leader runs: its app is the code's, on this database
    loaded = invoke(*base, "alerts", "--json")
    assert loaded.exit_code == 0, loaded.output
    assert json.loads(loaded.output)["rules"][0]["name"] == "dead-jobs"
    code_app = load_app(spec)
    code_app.close()
    code_app.url = url
    code_app.alerts.evaluator().run(code_app.clock.now())
    code_app.alerts.sender().deliver_due(code_app.clock.now())
    shown = json.loads(invoke(*base, "alerts", "--json").output)
    (incident,) = shown["open"]
    (note,) = shown["notifications"]
    assert incident["group"] == note["group"] == "pool=default"
    assert shown["rules"][0]["group_by"] == ["pool"]
    assert note["state"] == "pending" and note["tries"] == 1 and note["last_error"]
    table = invoke(*base, "alerts").output
    assert "failing: 1 tries" in table and "dead-jobs" in table and "pool=defa" in table
    out = invoke(*base, "alerts", "silence", "dead-jobs", "--for", "2h")
    assert out.exit_code == 0 and "silenced until" in out.output
    assert invoke(*base, "alerts", "silence", "nope").exit_code == 2
    out = invoke(*base, "alerts", "resolve", str(incident["id"]))
    assert out.output.strip().endswith("resolved")
    assert (
        invoke(*base, "alerts", "resolve", str(incident["id"]))
        .output.strip()
        .endswith("was not open")
    )
    failed = invoke(*base, "alerts", "test", "hook")
    assert failed.exit_code == 1 and "not accepted" in failed.output
    assert invoke(*base, "alerts", "test", "other").exit_code == 2
    code_app.close()
    app.close()
