"""The `corral` command line, through its entry point (`python -m corral`) and click's CliRunner:
help everywhere, a submit / status / cancel / retry round trip, clear errors without tracebacks,
and `corral run` draining its tasks and stopping on SIGTERM."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import corral
from corral.cli import cli
from corral.lifecycle import State
from corral.ratelimit import parse
from corral.store.contract import AdmitParams

APP_CODE = textwrap.dedent(
    """
    import corral

    app = corral.App()

    @app.task
    def add(ctx, a, b):
        return a + b

    @app.task
    def sleepy(ctx, seconds):
        ctx.set_shared("resource", "r-1")
        if ctx.wait_cancelled(seconds):
            ctx.raise_if_cancelled()
        return "slept"

    not_an_app = 42
    """
)
_names = itertools.count()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    """A user project in tmp_path: (the --app spec of its App, its database URL). The module
    name is unique, so that each test imports its own copy in this process."""
    module = f"cli_app_{os.getpid()}_{next(_names)}"
    (tmp_path / f"{module}.py").write_text(APP_CODE)
    (tmp_path / "broken_app.py").write_text("import corral\napp = corral.App()\n1 / 0\n")
    (tmp_path / "notes.db").write_text("these are not the tables you are looking for\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # load_app adds the cwd
    monkeypatch.delenv("CORRAL_DATABASE_URL", raising=False)
    monkeypatch.delenv("CORRAL_APP", raising=False)
    yield f"{module}:app", f"sqlite:///{tmp_path / 'corral.db'}"
    sys.modules.pop(module, None)


def invoke(*args: str) -> Result:
    result = CliRunner().invoke(cli, list(args), prog_name="corral")
    # Only a deliberate exit (SystemExit) is acceptable: anything else is a crash.
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def corral_cmd(*args: str, cwd: Path, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORRAL_")}
    return subprocess.run(
        [sys.executable, "-m", "corral", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


# -- help -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [None, *sorted(cli.commands)])
def test_every_command_has_help_with_examples(command: str | None) -> None:
    result = invoke(*([command] if command else []), "--help")
    assert result.exit_code == 0
    assert "Usage: corral" in result.output
    if command:
        assert "Example" in result.output


def test_entry_point_runs(tmp_path: Path) -> None:
    done = corral_cmd("--help", cwd=tmp_path)
    assert done.returncode == 0
    for command in ("worker", "scheduler", "run", "submit", "status", "cancel", "retry", "demo"):
        assert command in done.stdout
    assert corral_cmd("--version", cwd=tmp_path).stdout.strip().endswith(corral.__version__)


# -- submit, status, cancel, retry ----------------------------------------------------------------


def test_submit_status_cancel_retry_round_trip(project: tuple[str, str]) -> None:
    spec, url = project
    base = ["--app", spec, "--database-url", url]
    first = invoke(*base, "submit", "add", "1", "2", "--group", "g1", "--priority", "3")
    assert first.exit_code == 0, first.output
    task_id = int(first.output)
    second = invoke(*base, "submit", "add", '"a"', "b", "--kwargs", "{}", "--dedup-key", "k1")
    again = invoke(*base, "submit", "add", "x", "y", "--dedup-key", "k1")
    assert int(again.output) == int(second.output) != task_id  # dedup: the same task back

    shown = json.loads(invoke("--database-url", url, "status", str(task_id), "--json").output)
    assert shown["task"]["args"] == [1, 2]
    assert shown["task"]["state"] == "ready" and shown["task"]["level"] == 3
    assert [e["kind"] for e in shown["events"]] == ["submitted"]
    assert json.loads(invoke("--database-url", url, "status", str(second.output.strip()),
                             "--json").output)["task"]["args"] == ["a", "b"]  # fmt: skip

    overview = invoke("--database-url", url, "status")
    assert overview.exit_code == 0
    for text in ("Groups", "g1", "No live workers", "Latest tasks", "add"):
        assert text in overview.output
    listing = json.loads(invoke("--database-url", url, "status", "--group", "g1", "--json").output)
    assert [t["id"] for t in listing["tasks"]] == [task_id]
    assert listing["groups"][0]["counts"] == {"ready": 1}

    cancelled = invoke("--database-url", url, "cancel", str(task_id))
    assert cancelled.exit_code == 0 and f"task {task_id}: cancelled" in cancelled.output
    twice = invoke("--database-url", url, "cancel", str(task_id))
    assert twice.exit_code == 1 and "already ended" in twice.output

    retried = invoke("--database-url", url, "retry", str(task_id))
    assert retried.exit_code == 0 and "was cancelled" in retried.output
    assert corral.App(url).get(task_id).state == State.READY
    not_retryable = invoke("--database-url", url, "retry", str(task_id))
    assert not_retryable.exit_code == 1 and "only dead, cancelled" in not_retryable.output

    detail = invoke("--database-url", url, "status", str(task_id))
    for text in (f"Task {task_id}", "Events", "cancelled", "ready"):
        assert text in detail.output


def test_migrate_reports_what_it_applied(project: tuple[str, str], tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    assert "applied migration(s) 1" in invoke("--database-url", url, "migrate").output
    assert "up to date" in invoke("--database-url", url, "migrate").output


# -- bad input: a clear message, no traceback -----------------------------------------------------

BAD_INPUT = {
    "unknown task": (["--app", "{spec}", "submit", "nope"], "unknown task 'nope' (registered: add"),
    "no colon": (["--app", "just_a_module", "status"], "not of the form module:attribute"),
    "no module": (["--app", "no_such_module:app", "status"], "no module named 'no_such_module'"),
    "no attribute": (["--app", "{module}:nothing", "status"], "has no 'nothing'"),
    "not an App": (["--app", "{module}:not_an_app", "status"], "is not a corral.App"),
    "module raises": (["--app", "broken_app:app", "status"], "ZeroDivisionError"),
    "mysql url": (["--database-url", "mysql://x", "status"], "unknown database URL 'mysql://x'"),
    "not a database": (["--database-url", "notes.db", "status"], "file is not a database"),
    "missing folder": (["--database-url", "sqlite:///nowhere/x.db", "status"], "does not exist"),
    "negative priority": (
        ["--app", "{spec}", "submit", "add", "1", "2", "--priority", "-1"],
        "-1 is not in the range x>=0",
    ),
    "bad arguments": (["--app", "{spec}", "submit", "add", "1"], "missing a required argument"),
    "bad delay": (["--app", "{spec}", "submit", "add", "1", "2", "--delay", "soon"], "'soon'"),
    "kwargs not object": (["--app", "{spec}", "submit", "add", "--kwargs", "[1]"], "JSON object"),
    "unknown option": (["status", "--bogus"], "No such option '--bogus'"),
    "worker without app": (["worker"], "a worker needs your task code"),
    "unknown task id": (["status", "12345"], "no task with id 12345"),
    "cancel unknown id": (["cancel", "12345"], "no task with id 12345"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_input_gives_a_clear_error(case: str, project: tuple[str, str]) -> None:
    spec, url = project
    args, message = BAD_INPUT[case]
    module = spec.split(":")[0]
    argv = [a.format(spec=spec, module=module) for a in args]
    if "--database-url" not in argv:
        argv = ["--database-url", url, *argv]
    result = invoke(*argv)
    assert result.exit_code in (1, 2), result.output
    assert message in result.output
    assert "Error:" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["--database-url", "mysql://x", "status"], "unknown database URL"),
        (["--app", "nowhere:app", "worker"], "no module named 'nowhere'"),
        (["--database-url", "notes.db", "cancel", "1"], "file is not a database"),
    ],
)
def test_bad_input_through_the_entry_point(
    args: list[str], message: str, project: tuple[str, str], tmp_path: Path
) -> None:
    done = corral_cmd(*args, cwd=tmp_path)
    assert done.returncode in (1, 2)
    assert message in done.stderr and "Traceback" not in done.stderr + done.stdout


# -- corral run -----------------------------------------------------------------------------------


def test_run_drains_tasks_cancels_a_running_one_and_stops_on_sigterm(
    project: tuple[str, str], tmp_path: Path
) -> None:
    spec, url = project
    base = ["--app", spec, "--database-url", url]
    ids = [int(invoke(*base, "submit", "add", str(i), "1").output) for i in range(20)]
    long_id = int(invoke(*base, "submit", "sleepy", "60").output)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORRAL_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "corral", *base, "run", "--processes", "2", "--concurrency", "4",
         "--grace", "2"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    app = corral.App(url)
    try:
        wait_for(lambda: all(app.get(i).state == State.SUCCEEDED for i in ids), what="the adds")
        assert [app.get(i).result for i in ids] == [str(i + 1) for i in range(20)]
        wait_for(lambda: bool(app.get(long_id).shared), what="the long task to run")
        live = lambda: len(app.store.worker_list(time.time())) == 2  # noqa: E731
        wait_for(live, what="this process's worker and one child worker")
        requested = invoke("--database-url", url, "cancel", str(long_id))
        assert "cancel requested (running on worker" in requested.output
        wait_for(lambda: app.get(long_id).state == State.CANCELLED, what="the cancel")
        status = invoke("--database-url", url, "status")
        assert "Live workers" in status.output and "succeeded" in status.output
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert app.store.worker_list(time.time()) == []  # every worker deregistered on its way out
    app.close()


def test_scheduler_stops_on_sigterm(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORRAL_")}
    url = f"sqlite:///{tmp_path / 's.db'}"
    proc = subprocess.Popen([sys.executable, "-m", "corral", "--database-url", url, "scheduler"],
                            cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)  # fmt: skip
    # SIGTERM once it leads (its handlers are installed by then), however slow its start-up.
    assert proc.stderr is not None
    seen: list[str] = []
    deadline = time.monotonic() + 30
    while not any("leads" in line for line in seen) and time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
    assert any("leads" in line for line in seen), "".join(seen)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=15)
    assert proc.returncode == 0, "".join(seen) + stderr


def test_why_and_groups(project: tuple[str, str]) -> None:
    spec, url = project
    configured = invoke("--database-url", url, "groups", "configure", "g1", "--max-parallel", "1",
                        "--weight", "2", "--rate-limit", "10/minute")  # fmt: skip
    assert configured.exit_code == 0, configured.output
    bad = invoke("--database-url", url, "groups", "configure", "g2", "--rate-limit", "1/fortnight")
    assert bad.exit_code != 0 and "fortnight" in bad.output
    assert invoke("--database-url", url, "groups", "configure").exit_code != 0  # no name
    defaults = invoke("--database-url", url, "groups", "configure", "--defaults",
                      "--max-parallel", "3")  # fmt: skip
    assert defaults.exit_code == 0, defaults.output
    app = corral.App(url)
    assert app.groups.get("never").max_parallel == 3
    assert invoke("--database-url", url, "rate-limits", "configure", "crm", "5/s").exit_code == 0
    assert app.rate_limits.list() == {"crm": parse("5/s")}
    assert "crm: 5/s (burst 1)" in invoke("--database-url", url, "rate-limits").output
    assert invoke("--database-url", url, "rate-limits", "remove", "crm").exit_code == 0
    assert "No named rate limits" in invoke("--database-url", url, "rate-limits").output
    held = int(invoke("--app", spec, "--database-url", url, "submit", "add", "1", "2",
                      "--group", "g1").output)  # fmt: skip
    waiting = int(invoke("--app", spec, "--database-url", url, "submit", "add", "3", "4",
                         "--group", "g1").output)  # fmt: skip
    app.store.task_admit_many(AdmitParams([held], time.time()))  # it holds the group's only slot
    app.close()

    shown = invoke("--database-url", url, "why", str(waiting))
    assert shown.exit_code == 0, shown.output
    assert "no live worker serves pool 'default'" in shown.output
    assert "at its cap: 1 of max_parallel=1" in shown.output
    reasons = json.loads(invoke("--database-url", url, "why", str(waiting), "--json").output)
    assert [r["code"] for r in reasons["reasons"]] == ["no_worker", "group_cap"]
    assert invoke("--database-url", url, "why", "999").exit_code != 0

    table = invoke("--database-url", url, "groups")
    assert table.exit_code == 0
    for text in ("g1", "10/minute", "100%", "cap", "share", "mean wait"):
        assert text in table.output
    (group,) = json.loads(invoke("--database-url", url, "groups", "--json").output)
    assert group["counts"] == {"admitted": 1, "ready": 1} and group["active"] == 1
    assert (group["max_parallel"], group["weight"], group["rate_limit"]) == (1, 2.0, "10/minute")
