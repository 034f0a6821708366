"""`corral run` and `corral worker` with --metrics-bind and --log-format json, as real processes
on every backend: /metrics serves the cluster and the worker figures of what the test submitted,
every log line on stderr is one JSON object, the attempt lines carry the task's fields, and the
process stops on SIGTERM. Bad option values are refused naming the option."""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import corral
from corral.cli import cli
from corral.lifecycle import State

APP_CODE = textwrap.dedent(
    """
    import corral

    app = corral.App()

    @app.task(pool="etl")
    def ok(ctx, n):
        return n

    @app.task(pool="etl", max_retries=0)
    def boom(ctx):
        raise ValueError("no")
    """
)
_names = itertools.count()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        return str(reply.read().decode())


def wait_for(check: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got = check()
        except OSError:
            got = None
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_run_serves_metrics_and_json_logs_then_stops_on_sigterm(
    app_url: str, tmp_path: Path
) -> None:
    module = f"metrics_app_{os.getpid()}_{next(_names)}"
    (tmp_path / f"{module}.py").write_text(APP_CODE)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORRAL_")}
    base = ["--app", f"{module}:app", "--database-url", app_url, "--log-format", "json"]
    app = corral.App(app_url)
    exec(APP_CODE.replace("corral.App()", "given"), {"given": app})  # the same task types
    ids = [app.submit("ok", i) for i in range(5)] + [app.submit("boom") for _ in range(2)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "corral", *base, "run", "--metrics-bind", f"127.0.0.1:{port}",
         "--grace", "2"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        done = {State.SUCCEEDED, State.DEAD}
        wait_for(lambda: all(app.get(i).state in done for i in ids), "the tasks to end")
        body = wait_for(
            lambda: (
                (b := scrape(port))
                and 'corral_attempts_total{outcome="failed",task_type="boom"} 2.0' in b
                and b
            ),
            "the attempts on /metrics",
        )
        assert 'corral_attempts_total{outcome="succeeded",task_type="ok"} 5.0' in body
        assert 'corral_task_wait_seconds_count{pool="etl",task_type="ok"} 5.0' in body
        assert 'corral_workers{pool="etl"} 1.0' in body
        assert 'corral_desired_workers{pool="etl"} 0.0' in body
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    app.close()
    assert proc.returncode == 0, stderr
    lines = [json.loads(line) for line in stderr.splitlines() if line.strip()]
    ended = [x for x in lines if x["message"].startswith("attempt ended")]
    assert len(ended) == 7
    first = next(x for x in ended if x["task_id"] == ids[0])
    assert first["task_type"] == "ok" and first["attempt"] == 1 and first["group"] == "default"
    assert first["pool"] == "etl" and first["outcome"] == "succeeded"
    assert {x["level"] for x in lines} <= {"DEBUG", "INFO", "WARNING", "ERROR"}


def test_a_worker_serves_its_own_figures_and_the_clusters_when_asked(
    app_url: str, tmp_path: Path
) -> None:
    module = f"metrics_app_{os.getpid()}_{next(_names)}"
    (tmp_path / f"{module}.py").write_text(APP_CODE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORRAL_")}
    base = [sys.executable, "-m", "corral", "--app", f"{module}:app", "--database-url", app_url]
    bodies = []
    for extra, shown in (
        ([], "corral_worker_running_attempts"),
        (["--metrics-cluster"], "corral_workers{"),
    ):
        port = free_port()
        command = [*base, "worker", "--metrics-bind", str(port), *extra]
        proc = subprocess.Popen(command, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
        try:
            # /metrics may answer before the worker is registered: the cluster's figures then
            # have no worker yet (read again once their cache of a few seconds expires)
            def served(port: int = port, shown: str = shown) -> str | None:
                body = scrape(port)
                return body if shown in body else None

            bodies.append(wait_for(served, "the worker's /metrics"))
        finally:
            proc.send_signal(signal.SIGTERM)
            _, stderr = proc.communicate(timeout=30)
        assert proc.returncode == 0, stderr
    assert "corral_worker_running_attempts" in bodies[0] and "corral_tasks{" not in bodies[0]
    assert "corral_workers{" in bodies[1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["scheduler", "--metrics-bind", "127.0.0.1:http"], "--metrics-bind: port must be"),
        (["scheduler", "--metrics-bind", "127.0.0.1:1", "--metrics-groups", "x"],
         "--metrics-groups must be a whole number"),
        (["--log-format", "xml", "scheduler"], "'xml' is not one of"),
    ],
)  # fmt: skip
def test_bad_metrics_and_log_options_are_refused(
    args: list[str], message: str, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    result = CliRunner().invoke(cli, ["--database-url", url, *args])
    assert result.exit_code != 0
    assert message in result.output and "Traceback" not in result.output
