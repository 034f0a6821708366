"""Bounded input, the same answer on both backends: every value out of range is a ConfigError or
a PayloadError at submit (or configure) that names the field and the limit, and nothing is
written; through the CLI a clear message and exit code 1 or 2, never a traceback. And a task
whose row a worker can't decode (written around the checks, as a corrupted row would be) ends
dead with a clear error, without blocking the others."""

from __future__ import annotations

import math
import os
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import Services

import corral
from corral import ConfigError, PayloadError
from corral.cli import cli
from corral.lifecycle import State

TABLES = ("tasks", "events", "task_deps", "groups", "workflows", "rate_limits", "rate_buckets")


def row_counts(url: str) -> dict[str, int]:
    """Rows in each table a submit or a configure writes, read with the backend's own client."""
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            return {
                t: conn.execute(f"SELECT count(*) FROM corral_{t}").fetchone()[0] for t in TABLES
            }
    import psycopg

    with psycopg.connect(url) as conn:
        return {
            t: conn.execute(f"SELECT count(*) FROM corral_{t}").fetchone()[0]  # type: ignore[index]
            for t in TABLES
        }


def raw_execute(url: str, statement: str, params: tuple[Any, ...]) -> None:
    """Write around corral's checks, as another client or a corrupted page would."""
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.execute(statement.replace("%s", "?"), params)
        return
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute(statement, params)  # type: ignore[arg-type]


def job(ctx: corral.Context, *args: Any, **kwargs: Any) -> None: ...


BIG = "x" * 20_000_000
Case = Callable[[corral.App, corral.TaskType[Any, Any]], Any]
BAD_INPUT: dict[str, tuple[Case, type[Exception], tuple[str, ...]]] = {
    # name: (what to call, the error, what its message must name: the field and the limit)
    "priority 2**31": (lambda a, t: t.submit(priority=2**31), ConfigError,
                       ("priority", "2147483647")),
    "priority 10**30": (lambda a, t: t.submit(priority=10**30), ConfigError,
                        ("priority", "2147483647")),
    "priority by name": (lambda a, t: a.submit("job", priority=2**31), ConfigError,
                         ("priority", "2147483647")),
    "delay inf": (lambda a, t: t.submit(delay=math.inf), ConfigError, ("delay", "100 years")),
    "delay 10**20": (lambda a, t: t.submit(delay=10**20), ConfigError, ("delay", "100 years")),
    "delay 10**400": (lambda a, t: t.submit(delay=10**400), ConfigError, ("delay", "100 years")),
    "run_at nan": (lambda a, t: t.submit(run_at=math.nan), ConfigError,
                   ("run_at", "253402300799")),
    "run_at inf": (lambda a, t: t.submit(run_at=math.inf), ConfigError,
                   ("run_at", "253402300799")),
    "run_at negative": (lambda a, t: t.submit(run_at=-1.0), ConfigError, ("run_at", "from 0")),
    "run_at year 1": (lambda a, t: t.submit(run_at=datetime(1, 1, 2, tzinfo=UTC)), ConfigError,
                      ("run_at", "1970")),
    "payload 20 MB": (lambda a, t: t.submit(BIG), PayloadError,
                      ("arguments of job", "4194304 bytes")),
    "kwargs 20 MB": (lambda a, t: t.submit(blob=BIG), PayloadError,
                     ("arguments of job", "4194304 bytes")),
    "payload nan": (lambda a, t: t.submit(math.nan), PayloadError,
                    ("arguments of job", "JSON")),
    "payload inf": (lambda a, t: t.submit(x=math.inf), PayloadError,
                    ("arguments of job", "JSON")),
    "payload lone surrogate": (lambda a, t: t.submit("a\ud800b"), PayloadError,
                               ("arguments of job", "UTF-8")),
    "group NUL": (lambda a, t: t.submit(group="a\x00b"), ConfigError, ("group name", "NUL")),
    "group lone surrogate": (lambda a, t: t.submit(group="a\udcffb"), ConfigError,
                             ("group name", "UTF-8")),
    "group too long": (lambda a, t: t.submit(group="g" * 1025), ConfigError,
                       ("group name", "1024 characters")),
    "dedup_key NUL": (lambda a, t: t.submit(dedup_key="k\x00"), ConfigError,
                      ("dedup_key", "NUL")),
    "dedup_key lone surrogate": (lambda a, t: t.submit(dedup_key="\ud800"), ConfigError,
                                 ("dedup_key", "UTF-8")),
    "depends_on 2**63": (lambda a, t: t.submit(depends_on=[2**63]), ConfigError,
                         ("depends_on", str(2**63 - 1))),
    "batch with one bad call": (
        lambda a, t: a.submit_many([t.prepare(1), t.prepare(2, priority=2**31)]), ConfigError,
        ("priority", "2147483647")),
    "workflow step": (lambda a, t: _workflow(a, t, priority=2**40), ConfigError,
                      ("priority", "2147483647")),
    "workflow group NUL": (lambda a, t: a.workflow("w", group="g\x00"), ConfigError,
                           ("group", "NUL")),
    "workflow name surrogate": (lambda a, t: a.workflow("w\udcff"), ConfigError,
                                ("workflow name", "UTF-8")),
    "weight inf": (lambda a, t: a.groups.configure("g", weight=math.inf), ConfigError,
                   ("weight", "1e+06")),
    "weight nan": (lambda a, t: a.groups.configure("g", weight=math.nan), ConfigError,
                   ("weight", "finite")),
    "max_parallel 2**40": (lambda a, t: a.groups.configure("g", max_parallel=2**40),
                           ConfigError, ("max_parallel", "2147483647")),
    "max_parallel 2**31 defaults": (lambda a, t: a.groups.set_defaults(max_parallel=2**31),
                                    ConfigError, ("max_parallel", "2147483647")),
    "group configure NUL": (lambda a, t: a.groups.configure("g\x00", max_parallel=1),
                            ConfigError, ("group name", "NUL")),
    "burst inf": (lambda a, t: a.groups.configure("g", rate_limit="5/s", burst=math.inf),
                  ConfigError, ("burst", "1e+09")),
    "rate 10**400 a second": (lambda a, t: a.rate_limits.configure("k", "1" * 400 + "/s"),
                              ConfigError, ("rate limit", "per second")),
    "rate limit key NUL": (lambda a, t: a.rate_limits.configure("k\x00", "5/s"), ConfigError,
                           ("rate limit key", "NUL")),
}  # fmt: skip


def _workflow(app: corral.App, task: corral.TaskType[Any, Any], **options: Any) -> int:
    wf = app.workflow("w")
    wf.add(task, 1)
    wf.add(task, 2, **options)
    return wf.submit()


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_input_is_refused_the_same_on_both_backends(app_url: str, case: str) -> None:
    call, error, named = BAD_INPUT[case]
    app = corral.App(app_url)
    try:
        task = app.task(job)
        before = row_counts(app_url)
        with pytest.raises(error) as raised:
            call(app, task)
        assert type(raised.value) is error  # not a subclass' accident, not a driver's error
        for text in named:
            assert text in str(raised.value), f"{text!r} not named in: {raised.value}"
        assert row_counts(app_url) == before  # nothing was written
    finally:
        app.close()


def test_the_payload_limit_is_an_app_option(app_url: str) -> None:
    small = corral.App(app_url, max_payload_bytes=2048)
    default = corral.App(app_url)
    try:
        with pytest.raises(PayloadError, match="over the limit of 2048 bytes"):
            small.task(job).submit("x" * 3000)
        assert row_counts(app_url)["tasks"] == 0
        task_id = default.task(job).submit("x" * 3_000_000, note="a\x00b")  # within 4 MiB
        assert default.get(task_id).args == '["' + "x" * 3_000_000 + '"]'
        with pytest.raises(ConfigError, match="max_payload_bytes must be a whole number"):
            corral.App(app_url, max_payload_bytes=10**12)
    finally:
        small.close()
        default.close()


# -- the CLI -------------------------------------------------------------------------------------

APP_CODE = textwrap.dedent(
    """
    import corral

    app = corral.App()

    @app.task
    def add(ctx, a, b):
        return a + b
    """
)

CLI_CASES: dict[str, tuple[list[str], tuple[str, ...]]] = {
    "priority 2**31": (["submit", "add", "1", "2", "--priority", str(2**31)],
                       ("priority", "2147483647")),
    "delay a million years": (["submit", "add", "1", "2", "--delay", "365000000d"],
                              ("delay", "100 years")),
    "argument NaN": (["submit", "add", "1", "NaN"], ("arguments of add", "JSON")),
    "argument 5 MB": (["submit", "add", "1", "x" * 5_000_000], ("arguments of add", "4194304")),
    "group NUL": (["submit", "add", "1", "2", "--group", "a\x00b"], ("group name", "NUL")),
    "group not UTF-8": (["submit", "add", "1", "2", "--group", "a\udcffb"],
                        ("group name", "UTF-8")),
    "dedup key NUL": (["submit", "add", "1", "2", "--dedup-key", "\x00"], ("dedup_key", "NUL")),
    "configure weight inf": (["groups", "configure", "g", "--weight", "inf"],
                             ("weight", "1e+06")),
    "configure max-parallel 2**40": (["groups", "configure", "g", "--max-parallel", str(2**40)],
                                     ("max_parallel", "2147483647")),
    "configure name NUL": (["groups", "configure", "g\x00", "--max-parallel", "2"],
                           ("group name", "NUL")),
    "configure defaults burst inf": (["groups", "configure", "--defaults", "--rate-limit", "5/s",
                                      "--burst", "inf"], ("burst", "1e+09")),
}  # fmt: skip


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A user project in tmp_path; yields the --app spec of its App."""
    module = f"limits_app_{os.getpid()}_{abs(hash(tmp_path)) % 10**8}"
    (tmp_path / f"{module}.py").write_text(APP_CODE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delenv("CORRAL_DATABASE_URL", raising=False)
    monkeypatch.delenv("CORRAL_APP", raising=False)
    yield f"{module}:app"
    sys.modules.pop(module, None)


@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_bad_input_through_the_cli(app_url: str, project: str, case: str) -> None:
    args, named = CLI_CASES[case]
    before = row_counts(app_url)
    result = CliRunner().invoke(
        cli, ["--app", project, "--database-url", app_url, *args], prog_name="corral"
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.exit_code in (1, 2), result.output
    assert "Error:" in result.output and "Traceback" not in result.output
    for text in named:
        assert text in result.output, result.output
    assert row_counts(app_url) == before


@pytest.mark.parametrize(
    "argv",
    [
        [b"groups", b"configure", b"bad\xffname", b"--max-parallel", b"2"],
        [b"submit", b"add", b"1", b"2", b"--group", b"\xfe\xff"],
        [b"submit", b"add", b"1", b"2", b"--priority", str(10**30).encode()],
    ],
    ids=["configure-not-utf8", "submit-not-utf8", "priority-10**30"],
)
def test_bad_input_through_the_entry_point(
    app_url: str, project: str, tmp_path: Path, argv: list[bytes]
) -> None:
    """Real argv: bytes that are not UTF-8 reach Python as lone surrogates."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORRAL_")}
    before = row_counts(app_url)
    done = subprocess.run(
        [sys.executable.encode(), b"-m", b"corral", b"--app", project.encode(),
         b"--database-url", app_url.encode(), *argv],
        cwd=tmp_path, env=env, capture_output=True, timeout=60,
    )  # fmt: skip
    output = (done.stdout + done.stderr).decode("utf-8", "replace")
    assert done.returncode in (1, 2), output
    assert "Error:" in output and "Traceback" not in output
    assert ("UTF-8" in output) or ("2147483647" in output), output
    assert row_counts(app_url) == before


# -- rows a worker can't decode ------------------------------------------------------------------


@pytest.mark.parametrize(
    "column, stored",
    [("args", "[1, 2"), ("kwargs", "[]"), ("args", '{"a": 1}'), ("backoff", "nonsense")],
    ids=["truncated-json", "kwargs-not-object", "args-not-array", "bad-backoff"],
)
def test_a_row_that_cannot_be_decoded_ends_dead_and_blocks_no_one(
    app: corral.App,
    app_url: str,
    services: Callable[..., Services],
    column: str,
    stored: str,
) -> None:
    """The group runs one task at a time: a corrupted task stuck in its slot would hold up the
    others for good."""

    @app.task(max_retries=3)
    def work(ctx: corral.Context, n: int) -> int:
        return n

    app.groups.configure("one-at-a-time", max_parallel=1)
    broken = work.submit(0, group="one-at-a-time")
    raw_execute(app_url, f"UPDATE corral_tasks SET {column} = %s WHERE id = %s", (stored, broken))
    others = [work.submit(n, group="one-at-a-time") for n in range(1, 4)]
    services(app)
    record = app.wait(broken, timeout=30)
    assert record.state == State.DEAD and record.attempt == 1  # no retry: it never decodes
    assert record.error is not None and "can't be decoded" in record.error
    assert f"task {broken} (work)" in record.error
    assert [app.wait(i, timeout=30).state for i in others] == [State.SUCCEEDED] * 3


def test_nul_and_surrogates_in_what_a_task_logs_and_raises_are_stored(
    app: corral.App, services: Callable[..., Services]
) -> None:
    """A payload may hold a NUL (JSON escapes it): the handler may log it and raise with it,
    which PostgreSQL's text refuses; the worker stores it escaped, and goes on reporting."""

    @app.task
    def echo(ctx: corral.Context, text: str) -> str:
        ctx.logger.info("got %s", text)
        if text.startswith("fail"):
            raise ValueError(f"bad input {text}")
        return text

    failing = echo.submit("fail \x00 here")
    fine = echo.submit("a\x00b")
    plain = echo.submit("plain")
    services(app)
    dead = app.wait(failing, timeout=30)
    assert dead.state == State.DEAD and dead.error == "ValueError: bad input fail \\x00 here"
    assert app.wait(fine, timeout=30).state == State.SUCCEEDED
    assert app.wait(fine, timeout=30).result == '"a\\u0000b"'
    assert app.wait(plain, timeout=30).state == State.SUCCEEDED
    assert any("\\x00" in line.message for line in app.store.log_list(fine))
