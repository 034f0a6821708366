"""corral.testing, the harness users test their own tasks with: on every backend (the harness on
the project's `app_url`), and on its default temporary SQLite store."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import corral
from corral.codec import loads
from corral.errors import ConfigError
from corral.lifecycle import State
from corral.testing import DrainIncomplete, Harness, harness

DOCS = Path(__file__).resolve().parent.parent / "docs" / "testing.md"
T0 = 1_800_000_000.0


def make_app() -> tuple[corral.App, dict[str, Any]]:
    """An App with a few task types, as a user's module would define, and what they record."""
    app = corral.App("sqlite:////nonexistent/users-own.db")  # never opened under the harness
    seen: dict[str, Any] = {"order": [], "flaky": [], "dead": []}

    @app.task
    def add(ctx: corral.Context, a: int, b: int, *, note: str = "") -> int:
        seen["order"].append(("add", a, b))
        return a + b

    @app.task(max_retries=2, backoff=corral.Backoff(base=60, factor=2, jitter=0))
    def flaky(ctx: corral.Context, fail_times: int) -> str:
        seen["flaky"].append(ctx.attempt)
        if len(seen["flaky"]) <= fail_times:
            raise RuntimeError(f"boom {len(seen['flaky'])}")
        return "ok"

    @app.task
    def fan_out(ctx: corral.Context, n: int) -> None:
        for i in range(n):
            add.submit(i, i, group="children")

    @app.task(aging=corral.aging.linear(per_minute=1, cap=90))
    def ageing(ctx: corral.Context, name: str) -> None:
        seen["order"].append(name)

    @app.task(priority=10)
    def urgent(ctx: corral.Context, name: str) -> None:
        seen["order"].append(name)

    @app.on("dead")
    def on_dead(change: corral.StateChange) -> None:
        seen["dead"].append(change.task_id)

    return app, seen


@pytest.fixture
def users_app() -> tuple[corral.App, dict[str, Any]]:
    return make_app()


def test_nothing_runs_until_drain_then_everything_due_runs(app_url: str) -> None:
    app, seen = make_app()
    with harness(app, url=app_url, start=T0) as h:
        first = app.tasks["add"].submit(1, 2, group="g")
        assert app.get(first).state == State.READY
        assert seen["order"] == []
        app.tasks["fan_out"].submit(3)
        result = h.drain()
        assert (result.succeeded, result.failed, result.dead, result.started) == (5, 0, 0, 5)
        assert result.pending == {}
        assert loads(app.get(first).result) == 3
        # the tasks the handler submitted ran in the same drain
        assert sorted(seen["order"]) == [("add", 0, 0), ("add", 1, 1), ("add", 1, 2), ("add", 2, 2)]
        h.assert_submitted("add", group="children", state="succeeded", count=3)
        assert h.now() == T0  # no time moved


def test_retries_wait_for_the_clock_or_with_retries(app_url: str) -> None:
    app, seen = make_app()
    flaky = app.tasks["flaky"]
    with harness(app, url=app_url, start=T0) as h:
        task_id = flaky.submit(2)
        result = h.drain()
        assert (result.failed, result.retried, result.succeeded) == (1, 1, 0)
        assert result.errors == [(task_id, "RuntimeError: boom 1")]
        assert result.pending == {State.RETRY_WAIT: 1}
        assert h.drain().started == 0  # the 60 s backoff is not over: nothing due
        h.advance(59)
        assert h.drain().started == 0
        h.advance(1)
        assert h.drain().retried == 1  # the second attempt fails too, backs off 120 s
        result = h.drain(with_retries=True)
        assert (result.started, result.succeeded, result.pending) == (1, 1, {})
        assert h.now() == T0 + 60 + 120
        assert seen["flaky"] == [1, 2, 3]
        assert app.get(task_id).state == State.SUCCEEDED


def test_out_of_retries_is_dead_and_the_callbacks_ran(app_url: str) -> None:
    app, seen = make_app()
    with harness(app, url=app_url, start=T0) as h:
        task_id = app.tasks["flaky"].submit(10)
        result = h.drain(with_retries=True)
        assert (result.started, result.failed, result.retried, result.dead) == (3, 3, 2, 1)
        assert [e for _, e in result.errors] == [f"RuntimeError: boom {n}" for n in (1, 2, 3)]
        assert seen["dead"] == [task_id]  # delivered within the drain, not some time later


def test_delayed_tasks_come_due_as_the_clock_moves(app_url: str) -> None:
    app, seen = make_app()
    add = app.tasks["add"]
    with harness(app, url=app_url, start=T0) as h:
        add.submit(1, 1, delay="1h")
        add.submit(2, 2, run_at=T0 + 7200)
        assert h.drain().pending == {State.WAITING: 2}
        h.advance("59m")
        assert h.drain().started == 0
        h.advance("1m")
        assert h.drain().succeeded == 1
        result = h.drain(with_scheduled=True)
        assert (result.succeeded, result.pending) == (1, {})
        assert h.now() == T0 + 7200
        assert seen["order"] == [("add", 1, 1), ("add", 2, 2)]


@pytest.mark.parametrize("minutes", [0, 30])
def test_ageing_follows_the_moved_clock(app_url: str, minutes: int) -> None:
    """A task waiting 30 minutes at +1 level a minute passes one submitted at priority 10; one
    that did not wait does not. One worker slot: they run in admission order."""
    app, seen = make_app()
    with harness(app, url=app_url, start=T0, concurrency=1) as h:
        app.tasks["ageing"].submit("old")
        h.advance(minutes * 60)
        app.tasks["urgent"].submit("new")
        assert h.drain().succeeded == 2
        assert seen["order"] == (["old", "new"] if minutes else ["new", "old"])


def test_assertions_match_type_args_kwargs_group_and_state(app_url: str) -> None:
    app, _ = make_app()
    add = app.tasks["add"]
    with harness(app, url=app_url) as h:
        h.refute_submitted(add)
        add.submit(1, 2, group="g1", note="x")
        add.submit(1, 2, group="g2")
        app.submit("add", 3, 4)
        assert [t.group for t in h.assert_submitted(add, args=(1, 2))] == ["g1", "g2"]
        h.assert_submitted(add, args=[1, 2], count=2)
        h.assert_submitted("add", count=3)
        h.assert_submitted(add, kwargs={"note": "x"}, group="g1", count=1)
        h.assert_submitted(add, state=State.READY, count=3)
        h.assert_submitted(count=3)  # any task type
        h.refute_submitted(add, args=[1, 2], group="default")
        h.refute_submitted(add, state=["succeeded", "dead"])
        h.refute_submitted("flaky")
        assert [loads(t.args) for t in h.submitted(add, group="default")] == [[3, 4]]

        with pytest.raises(AssertionError) as missing:
            h.assert_submitted(add, args=[9, 9])
        message = str(missing.value)
        assert "args=[9, 9]" in message and "found 0" in message
        assert 'add(*[1,2], **{"note":"x"}) group=\'g1\'' in message  # what was submitted
        with pytest.raises(AssertionError, match="expected 1 task"):
            h.assert_submitted(add, args=[1, 2], count=1)
        with pytest.raises(AssertionError, match="expected no task"):
            h.refute_submitted(add, kwargs={"note": "x"})
        with pytest.raises(AssertionError, match="No flaky was submitted"):
            h.assert_submitted("flaky")
        with pytest.raises(ConfigError, match="state must be one of"):
            h.submitted(add, state="finished")
        with pytest.raises(ConfigError, match="args must be a list"):
            h.submitted(add, args="1, 2")


def test_a_shared_database_sees_only_this_harness_tasks(app_url: str) -> None:
    """On the user's own database the assertions count only what this test submitted."""
    app, _ = make_app()
    with harness(app, url=app_url) as h:
        app.tasks["add"].submit(1, 1)
        h.drain()
    with harness(app, url=app_url) as h:
        h.refute_submitted("add")
        app.tasks["add"].submit(2, 2)
        assert [loads(t.args) for t in h.assert_submitted("add", count=1)] == [[2, 2]]


def test_inline_submit_returns_after_the_task_ran(app_url: str) -> None:
    app, _ = make_app()
    with harness(app, url=app_url, inline=True, start=T0) as h:
        task_id = app.tasks["add"].submit(2, 3)
        assert app.get(task_id).state == State.SUCCEEDED
        assert loads(app.get(task_id).result) == 5
        app.tasks["fan_out"].submit(2)  # the handler's own submits run in the same drain
        h.assert_submitted("add", group="children", state="succeeded", count=2)
        delayed = app.tasks["add"].submit(7, 7, delay=30)
        assert app.get(delayed).state == State.WAITING
        h.advance(30)  # inline: moving the clock runs what came due
        assert app.get(delayed).state == State.SUCCEEDED
    assert "submit_many" not in vars(app)  # the App's own submit is back


def test_the_app_is_given_back_and_the_temporary_store_removed(users_app: Any) -> None:
    app, _ = users_app
    before = app.url
    with harness(app) as h:
        assert h.url.startswith("sqlite:///") and h.url != before
        path = Path(h.url.removeprefix("sqlite:///"))
        app.tasks["add"].submit(1, 2)
        assert h.drain().succeeded == 1
        assert path.exists()
    assert app.url == before and app._store is None and app._clock is None
    assert not path.parent.exists()
    with harness(app) as h:  # a new harness: a new, empty store
        h.refute_submitted()


def test_drain_stops_a_task_that_never_ends(users_app: Any) -> None:
    app, _ = users_app

    @app.task
    def forever(ctx: corral.Context) -> None:
        forever.submit()

    with harness(app) as h:
        forever.submit()
        with pytest.raises(DrainIncomplete, match="after 5 rounds") as stopped:
            h.drain(max_rounds=5)
        assert stopped.value.result.succeeded >= 4


def test_misuse_is_a_clear_error(users_app: Any) -> None:
    app, _ = users_app
    h = Harness(app)
    with pytest.raises(ConfigError, match="with"):
        h.drain()
    with pytest.raises(ConfigError, match=r"your corral\.App"):
        harness("not an app")  # type: ignore[arg-type]
    with h, pytest.raises(ConfigError, match="advance"):
        h.advance(-1)

    @app.task
    def nested(ctx: corral.Context) -> None:
        h.drain()

    with h:
        nested.submit()
        assert h.drain().dead == 1  # the handler's drain() raised: a clear failure, no hang


def test_importing_corral_testing_does_not_import_pytest() -> None:
    code = "import sys, corral.testing; print('pytest' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _doc_files() -> dict[str, str]:
    """The example files of docs/testing.md: each ```python block whose first line names it."""
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(), flags=re.S)
    files = {}
    for block in blocks:
        first = block.splitlines()[0]
        if re.fullmatch(r"# [\w/]+\.py", first):
            files[first[2:]] = block
    return files


def test_the_documented_example_runs(tmp_path: Path) -> None:
    """docs/testing.md's example project, as written there, passes its own tests under pytest
    (with the fixtures of corral.testing.fixtures)."""
    files = _doc_files()
    assert {"billing.py", "conftest.py", "test_billing.py"} <= set(files)
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    env.pop("CORRAL_DATABASE_URL", None)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    passed = re.search(r"(\d+) passed", run.stdout)
    assert passed is not None and int(passed.group(1)) >= 4, run.stdout
