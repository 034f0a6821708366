"""`corral bulk cancel|retry` on both backends: the count and a confirmation, --yes, only the
filter's tasks touched, a refusal (nothing matches) changing nothing."""

from __future__ import annotations

from typing import Any

from click.testing import CliRunner

import corral
from corral.cli import cli
from corral.lifecycle import State


def _app(app: corral.App) -> corral.App:
    @app.task
    def job(ctx: Any) -> None:
        return None

    return app


def test_bulk_cancel_asks_then_acts_on_the_filter_only(app: corral.App) -> None:
    _app(app)
    mine = [app.submit("job", group="g1") for _ in range(3)]
    other = app.submit("job", group="g2")
    base = ["--database-url", app.url, "bulk", "cancel", "--group", "g1"]
    declined = CliRunner().invoke(cli, base, input="n\n")
    assert declined.exit_code == 1 and "3 task(s) will be cancelled" in declined.output
    assert set(app.store.task_states(mine).values()) == {State.READY}
    done = CliRunner().invoke(cli, base, input="y\n")
    assert done.exit_code == 0, done.output
    assert "3 task(s) cancelled; 0 skipped" in done.output
    assert set(app.store.task_states(mine).values()) == {State.CANCELLED}
    assert app.get(other).state == State.READY
    retried = CliRunner().invoke(cli, ["--database-url", app.url, "bulk", "retry", "--state",
                                       "cancelled", "--yes"])  # fmt: skip
    assert retried.exit_code == 0 and "3 task(s) retried" in retried.output
    assert set(app.store.task_states(mine).values()) == {State.READY}


def test_bulk_refuses_a_filter_matching_nothing(app: corral.App) -> None:
    _app(app)
    task_id = app.submit("job", group="g1")
    got = CliRunner().invoke(cli, ["--database-url", app.url, "bulk", "retry", "--group", "g1",
                                   "--yes"])  # fmt: skip
    assert got.exit_code == 1 and "matches no task that can be retried" in got.output
    assert app.get(task_id).state == State.READY


def test_corral_web_takes_the_bulk_maximum(app: corral.App, monkeypatch: Any) -> None:
    import uvicorn

    served: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda site, **options: served.append(site))
    got = CliRunner().invoke(cli, ["--database-url", app.url, "web", "--bulk-max", "2"])
    assert got.exit_code == 0, got.output
    assert served[0].state.web.settings.bulk_max == 2
    bad = CliRunner().invoke(cli, ["--database-url", app.url, "web", "--bulk-max", "0"])
    assert bad.exit_code == 2 and len(served) == 1
