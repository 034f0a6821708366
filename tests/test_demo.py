"""`corral demo`: the workload it plans, the databases it refuses to delete, and a small run, both
in-process (`run_demo`) and through the entry point, that ends with every task as expected."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import corral
from corral.cli import cli
from corral.demo import plan, reset_database, run_demo


def test_plan_is_shaped_like_the_reference_workload() -> None:
    pipelines = plan(scale=1.0, time_scale=1.0)
    big = [p for p in pipelines if p.kind == "big"]
    small = [p for p in pipelines if p.kind == "small"]
    assert [p.size for p in big] == [300] and big[0].at == 0.0  # submitted first
    assert len(small) / len(pipelines) > 0.72 and all(p.size < 10 for p in small)
    assert all(p.cap >= 1 for p in pipelines)
    assert {p.group for p in pipelines}.isdisjoint({"special"})
    assert sum(p.size for p in plan(scale=0.2, time_scale=1.0)) < sum(p.size for p in pipelines)


def test_reset_deletes_only_a_demo_database(tmp_path: Path) -> None:
    foreign = tmp_path / "prod.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE corral_tasks (name TEXT)")
        conn.execute("INSERT INTO corral_tasks VALUES ('billing.load')")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    for path in (foreign, text):
        with pytest.raises(corral.ConfigError, match="refusing to delete"):
            reset_database(f"sqlite:///{path}")
        assert path.exists()
    with pytest.raises(corral.ConfigError, match="SQLite"):
        reset_database("postgresql://u@h/db")
    result = CliRunner().invoke(cli, ["demo", "--database-url", str(text)])
    assert result.exit_code == 1 and "refusing to delete" in result.output
    assert "Traceback" not in result.output


def test_run_demo_in_process(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    summary = run_demo(url, scale=0.1, workers=1, concurrency=8, time_scale=0.5)
    assert summary.ok, summary.problems
    assert all(case.ok for case in summary.cases) and len(summary.cases) == 5
    assert summary.total.tasks == sum(line.tasks for line in summary.lines)
    assert summary.total.dead == 1 and summary.total.cancelled == 1
    assert summary.total.succeeded == summary.total.tasks - 2
    for line in summary.lines:
        assert line.cap is None or line.peak <= line.cap
    store = corral.App(url).store
    assert store.worker_list(time.time()) == []  # its worker process stopped cleanly
    # A second run starts afresh on the same file.
    again = run_demo(url, scale=0.1, workers=1, time_scale=0.5)
    assert again.ok and again.total.tasks == summary.total.tasks


def test_demo_through_the_entry_point(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORRAL_")}
    url = f"sqlite:///{tmp_path / 'corral-demo.db'}"
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "corral", "demo", "--database-url", url, "--scale", "0.2"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert time.monotonic() - started < 30
    for text in ("corral demo: summary", "big-pipeline", "medium-1", "special", "total",
                 "Special cases", "succeeded on attempt 3", "clean-up ran", "db-sync",
                 "catch-up ran alone",
                 "Time is compressed", "Every task ended as expected"):  # fmt: skip
        assert text in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
    assert list(tmp_path.glob("*.py")) == []  # it needs no project files
