"""Clean-up of client resources after every bad end of an attempt (corral.cleanup), with real
worker processes on both backends.

The "warehouse" is a SQLite file the test owns: a process-executor task opens a fake query there
(a row), records its id in ctx.shared, and its on_cleanup stops it (deletes the row). The
warehouse's journal orders every start and clean-up in one sequence, so the test can tell that
a clean-up ran once per failed attempt, and before the next attempt started."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from conftest import T0, register_worker, start, submit, wait_until

import corral
from corral.cleanup import after_try, check_spec, held_target, reason_for
from corral.errors import ConfigError
from corral.lifecycle import TERMINAL, State
from corral.model import AttemptReport
from corral.scheduler.reaper import rescue_expired
from corral.scheduler.service import Scheduler
from corral.store import Store
from corral.store.contract import (
    CancelParams,
    CleanupClaimParams,
    CleanupEndParams,
    CompleteParams,
    DueParams,
    EventParams,
    RetryParams,
    SharedParams,
)

TASKS = """
import os, time
import corral

FAST = corral.Backoff(base=0.2, jitter=0)
CLEANUP_FAST = corral.Backoff(base=0.1, factor=1, jitter=0)


def journal(path, kind, ctx, reason=None):
    # One O_APPEND write per line: lines from every process land whole, in one order.
    line = f"{kind} {ctx.task_id} {ctx.attempt} {reason or '-'} {os.getpid()}\\n"
    fd = os.open(os.path.join(path, "journal"), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def open_query(ctx, path):
    journal(path, "start", ctx)
    query = f"q-{ctx.task_id}-{ctx.attempt}"
    open(os.path.join(path, "queries", query), "x").close()
    ctx.set_shared("query", query)


def stop_query(ctx, reason):
    path = ctx.args[0]
    os.remove(os.path.join(path, "queries", ctx.shared["query"]))  # fails if already stopped
    journal(path, "cleanup", ctx, reason)


def flaky_stop(ctx, reason):
    path = ctx.args[0]
    journal(path, "try", ctx, reason)
    with open(os.path.join(path, "journal")) as f:
        tries = sum(line.split()[:3] == ["try", str(ctx.task_id), str(ctx.attempt)] for line in f)
    if tries <= 2:
        raise RuntimeError(f"the warehouse is busy (try {tries})")
    stop_query(ctx, reason)


def doomed_stop(ctx, reason):
    journal(ctx.args[0], "try", ctx, reason)
    raise RuntimeError("the warehouse refuses")


def register(app, handlers=True):
    def task(**options):
        return app.task(executor="process", backoff=FAST, **options)

    @task(name="load", max_retries=2, on_cleanup=stop_query)
    def load(ctx, path, mode):
        open_query(ctx, path)
        if mode == "error" and ctx.attempt < 3:
            raise RuntimeError(f"load failed (attempt {ctx.attempt})")
        if mode in ("cancel", "kill") and ctx.attempt == 1:
            time.sleep(60)
        return ctx.attempt

    @task(name="load_timed", max_retries=1, max_runtime=1.0, on_timeout="retry",
          on_cleanup=stop_query)
    def load_timed(ctx, path):
        open_query(ctx, path)
        time.sleep(60)

    @task(name="load_timed_fail", max_runtime=1.0, on_timeout="fail", on_cleanup=stop_query)
    def load_timed_fail(ctx, path):
        open_query(ctx, path)
        time.sleep(60)

    @task(name="flaky", max_retries=1, on_cleanup=flaky_stop, cleanup_backoff=CLEANUP_FAST)
    def flaky(ctx, path):
        open_query(ctx, path)
        if ctx.attempt == 1:
            raise RuntimeError("load failed")
        return "ok"

    @task(name="doomed", max_retries=1, on_cleanup=doomed_stop, cleanup_retries=2,
          cleanup_backoff=CLEANUP_FAST)
    def doomed(ctx, path):
        open_query(ctx, path)
        raise RuntimeError("load failed")

    @task(name="plain", max_retries=1)
    def plain(ctx, path):
        raise RuntimeError("no clean-up here")
"""

WORKER = """
import sys
import corral
from corral.worker.worker import WorkerConfig, run_worker
sys.path.insert(0, sys.argv[2])
import cleanup_tasks

app = corral.App(sys.argv[1])
cleanup_tasks.register(app)
run_worker(app, WorkerConfig(concurrency=8, lease=2, heartbeat=0.5, poll=0.05, grace=5,
                             cleanup_poll=0.2))
"""


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    """The stand-in warehouse: a file per open query under queries/, and a journal."""
    path = tmp_path / "warehouse"
    (path / "queries").mkdir(parents=True)
    (path / "journal").touch()
    return path


@pytest.fixture
def tasks(app: corral.App, tmp_path: Path) -> Path:
    """The task module the worker processes import, registered on the test's app too (so its
    submits carry the types' clean-up)."""
    (tmp_path / "cleanup_tasks.py").write_text(textwrap.dedent(TASKS))
    (tmp_path / "worker.py").write_text(textwrap.dedent(WORKER))
    sys.path.insert(0, str(tmp_path))
    try:
        import cleanup_tasks

        cleanup_tasks.register(app)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("cleanup_tasks", None)
    return tmp_path


def journal(path: Path) -> list[tuple[int, str, int, int, str | None, int]]:
    """(seq, kind, task, attempt, reason, pid) per line of the warehouse's journal."""
    entries = []
    for seq, line in enumerate((path / "journal").read_text().splitlines()):
        kind, task_id, attempt, reason, pid = line.split()
        entries.append((seq, kind, int(task_id), int(attempt), None if reason == "-" else reason,
                        int(pid)))  # fmt: skip
    return entries


def open_queries(path: Path) -> set[str]:
    return {entry.name for entry in (path / "queries").iterdir()}


def settled(app: corral.App, ids: list[int]) -> bool:
    states = app.store.task_states(ids)
    if not all(s in TERMINAL for s in states.values()):
        return False
    cleanups = [c for i in ids for c in app.store.cleanup_list(i)]
    return all(c.state in ("succeeded", "failed") for c in cleanups)


def worker(app_url: str, tasks: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, str(tasks / "worker.py"), app_url, str(tasks)])


def stop(*procs: subprocess.Popen[bytes] | None) -> None:
    for proc in procs:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)


def check_cleaned_before_next_attempt(
    entries: list[tuple[int, str, int, int, str | None, int]],
    task_id: int,
    failed: dict[int, str],
) -> None:
    """Each failed attempt's clean-up ran exactly once with its reason, after that attempt
    started and before the next one did; no other attempt was cleaned up."""
    starts = {a: seq for seq, kind, t, a, _, _ in entries if t == task_id and kind == "start"}
    cleanups = [(a, r, seq) for seq, kind, t, a, r, _ in entries if t == task_id and
                kind == "cleanup"]  # fmt: skip
    assert sorted((a, r) for a, r, _ in cleanups) == sorted(failed.items())
    for attempt, _, seq in cleanups:
        assert starts[attempt] < seq
        if attempt + 1 in starts:
            assert seq < starts[attempt + 1], f"attempt {attempt + 1} started before the clean-up"


def test_every_bad_end_is_cleaned_up_once_before_the_next_attempt(
    app: corral.App, app_url: str, tasks: Path, warehouse: Path, scheduler: Scheduler
) -> None:
    path = str(warehouse)
    types = app.registry
    ids = {
        "error": types.get("load").submit(path, "error"),
        "cancel": types.get("load").submit(path, "cancel"),
        "timeout": types.get("load_timed").submit(path),
        "timeout_fail": types.get("load_timed_fail").submit(path),
        "flaky": types.get("flaky").submit(path),
        "doomed": types.get("doomed").submit(path),
        "plain": types.get("plain").submit(path),
    }
    proc = worker(app_url, tasks)
    try:
        cancel = ids["cancel"]
        wait_until(lambda: any(e[2] == cancel for e in journal(warehouse)), timeout=30)
        app.cancel(cancel)
        wait_until(lambda: settled(app, list(ids.values())), timeout=60)
    finally:
        stop(proc)

    entries = journal(warehouse)
    records = {name: app.get(task_id) for name, task_id in ids.items()}
    assert {name: r.state for name, r in records.items()} == {
        "error": State.SUCCEEDED,
        "cancel": State.CANCELLED,
        "timeout": State.DEAD,
        "timeout_fail": State.DEAD,
        "flaky": State.SUCCEEDED,
        "doomed": State.DEAD,
        "plain": State.DEAD,
    }
    check_cleaned_before_next_attempt(entries, ids["error"], {1: "error", 2: "error"})
    check_cleaned_before_next_attempt(entries, ids["cancel"], {1: "cancelled"})
    check_cleaned_before_next_attempt(entries, ids["timeout"], {1: "timeout", 2: "timeout"})
    check_cleaned_before_next_attempt(entries, ids["timeout_fail"], {1: "timeout"})
    check_cleaned_before_next_attempt(entries, ids["flaky"], {1: "error"})
    # Every failed attempt's query was stopped; only the successful attempts' stay open (and the
    # doomed task's, whose clean-up never succeeded).
    doomed = ids["doomed"]
    assert open_queries(warehouse) == {
        f"q-{ids['error']}-3", f"q-{ids['flaky']}-2", f"q-{doomed}-1", f"q-{doomed}-2"
    }  # fmt: skip

    # Clean-ups as the store records them (what `corral status TASK` shows).
    def summary(name: str) -> list[tuple[int, str, str, int]]:
        return [(c.attempt, c.reason, c.state, c.tries)
                for c in app.store.cleanup_list(ids[name])]  # fmt: skip

    assert summary("error") == [(1, "error", "succeeded", 1), (2, "error", "succeeded", 1)]
    assert summary("flaky") == [(1, "error", "succeeded", 3)]
    assert summary("doomed") == [(1, "error", "failed", 3), (2, "error", "failed", 3)]
    assert summary("plain") == []  # no clean-up: no row
    assert [c.last_error for c in app.store.cleanup_list(doomed)] == [
        "RuntimeError: the warehouse refuses"
    ] * 2
    # The flaky clean-up failed twice, then succeeded; the doomed one tried 3 times per attempt,
    # and attempt 2 started only after attempt 1's clean-up was recorded as failed.
    tries = [(t, a) for _, kind, t, a, _, _ in entries if kind == "try"]
    assert tries.count((ids["flaky"], 1)) == 3
    assert tries.count((doomed, 1)) == tries.count((doomed, 2)) == 3
    last_try_1 = max(seq for seq, kind, t, a, _, _ in entries if (kind, t, a) == ("try", doomed, 1))
    start_2 = next(seq for seq, kind, t, a, _, _ in entries if (kind, t, a) == ("start", doomed, 2))
    assert last_try_1 < start_2
    events = app.store.event_list(doomed)
    failed = [e for e in events if e.kind == "cleanup_failed"]
    assert [e.attempt for e in failed] == [1, 2]
    assert json.loads(failed[0].detail or "{}") == {
        "reason": "error", "tries": 3, "error": "RuntimeError: the warehouse refuses"
    }  # fmt: skip
    assert [e.kind for e in app.store.event_list(ids["error"])].count("cleanup_succeeded") == 2


def test_a_killed_workers_attempt_is_cleaned_up_by_another_worker_before_its_retry(
    app: corral.App, app_url: str, tasks: Path, warehouse: Path, scheduler: Scheduler
) -> None:
    task_id = app.registry.get("load").submit(str(warehouse), "kill")
    first = worker(app_url, tasks)
    second = None
    try:
        wait_until(lambda: any(e[1] == "start" for e in journal(warehouse)), timeout=30)
        wait_until(lambda: app.get(task_id).shared is not None, timeout=10)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        second = worker(app_url, tasks)
        wait_until(lambda: settled(app, [task_id]), timeout=60)
    finally:
        stop(first, second)

    assert app.get(task_id).state == State.SUCCEEDED
    entries = journal(warehouse)
    check_cleaned_before_next_attempt(entries, task_id, {1: "lost"})
    (cleaned_by,) = [pid for _, kind, _, _, _, pid in entries if kind == "cleanup"]
    assert second is not None and cleaned_by == second.pid
    assert open_queries(warehouse) == {f"q-{task_id}-2"}
    attempts = app.store.attempt_list(task_id)
    assert [a.outcome for a in attempts] == ["lost", "succeeded"]
    # The lost attempt went to retry_wait, held, rather than straight back to ready.
    moves = [(e.attempt, e.to_state) for e in app.store.event_list(task_id)
             if e.from_state == "running" and e.to_state]  # fmt: skip
    assert moves == [(1, "retry_wait"), (2, "succeeded")]


# -- the store's part, on both backends -----------------------------------------------------------


def bad_end(store: Store, task_id: int, attempt: int, **fields: Any) -> list[int]:
    report = AttemptReport(task_id, attempt, "failed", State.RETRY_WAIT, counts_as_failure=True,
                           worker_id="w1", **fields)  # fmt: skip
    return store.task_complete_many(CompleteParams([report], T0 + 1))


def test_a_bad_end_holds_the_retry_until_its_clean_up_ended(store: Store) -> None:
    register_worker(store)
    task_id = submit(store, name="load", max_retries=3)
    claimed = start(store, task_id)
    assert store.task_save_shared(SharedParams(task_id, claimed.attempt, '{"query":"q1"}', T0))
    assert bad_end(store, task_id, claimed.attempt, cleanup="error", retry_at=T0 + 2) == [task_id]
    # The attempt's shared is the clean-up's now: the next attempt starts with none.
    assert store.task_get(task_id).shared is None  # type: ignore[union-attr]
    (cleanup,) = store.cleanup_list(task_id)
    assert (cleanup.attempt, cleanup.reason, cleanup.state, cleanup.tries) == (
        1,
        "error",
        "pending",
        0,
    )
    # Held: the backoff is long over, yet the task is not released while its clean-up pends.
    assert store.task_release_due(DueParams(T0 + 100, 10)) == 0
    # Two workers claim at once: one gets it.
    claim = CleanupClaimParams("w1", ["load"], 5, T0 + 60, T0 + 3)
    (job,) = store.cleanup_claim(claim)
    assert store.cleanup_claim(CleanupClaimParams("w2", ["load"], 5, T0 + 60, T0 + 3)) == []
    assert (job.task_id, job.attempt, job.reason, job.tries) == (task_id, 1, "error", 1)
    assert (job.shared, job.task_name) == ('{"query":"q1"}', "load")
    # A failed try is retried later; only the holder may record it.
    retry = CleanupEndParams(job.id, "w2", "pending", "boom", T0 + 4, T0 + 5)
    assert not store.cleanup_end(retry)
    assert store.cleanup_end(CleanupEndParams(job.id, "w1", "pending", "boom", T0 + 4, T0 + 5))
    assert store.cleanup_claim(CleanupClaimParams("w2", ["load"], 5, T0 + 60, T0 + 4.5)) == []
    (job,) = store.cleanup_claim(CleanupClaimParams("w2", ["load"], 5, T0 + 60, T0 + 5))
    assert job.tries == 2
    assert store.task_release_due(DueParams(T0 + 100, 10)) == 0
    assert store.cleanup_end(CleanupEndParams(job.id, "w2", "succeeded", None, T0 + 6))
    assert not store.cleanup_end(CleanupEndParams(job.id, "w2", "succeeded", None, T0 + 6))
    assert store.task_release_due(DueParams(T0 + 7, 10)) == 1
    assert store.task_get(task_id).state == State.READY  # type: ignore[union-attr]
    (cleanup,) = store.cleanup_list(task_id)
    assert (cleanup.state, cleanup.tries, cleanup.last_error) == ("succeeded", 2, None)
    assert [e.kind for e in store.event_list(task_id)].count("cleanup_succeeded") == 1


def test_a_lapsed_clean_up_lease_is_taken_over(store: Store) -> None:
    register_worker(store)
    task_id = submit(store, name="load", max_retries=3)
    bad_end(store, task_id, start(store, task_id).attempt, cleanup="error", retry_at=T0 + 2)
    (job,) = store.cleanup_claim(CleanupClaimParams("w1", ["load"], 5, T0 + 10, T0 + 1))
    assert store.cleanup_claim(CleanupClaimParams("w2", ["other"], 5, T0 + 60, T0 + 11)) == []
    (again,) = store.cleanup_claim(CleanupClaimParams("w2", ["load"], 5, T0 + 60, T0 + 11))
    assert (again.id, again.tries) == (job.id, 2)
    assert not store.cleanup_end(CleanupEndParams(job.id, "w1", "succeeded", None, T0 + 12))


def test_a_lost_attempt_of_a_type_with_a_clean_up_is_held(store: Store) -> None:
    register_worker(store)
    held = submit(store, name="load", max_retries=3, cleanup=True)
    plain = submit(store, name="plain", max_retries=3)
    start(store, held)
    start(store, plain)
    assert rescue_expired(store, T0 + 1000) == 2
    assert store.task_get(plain).state == State.READY  # type: ignore[union-attr]
    assert store.cleanup_list(plain) == []
    assert store.task_get(held).state == State.RETRY_WAIT  # type: ignore[union-attr]
    (cleanup,) = store.cleanup_list(held)
    assert (cleanup.reason, cleanup.state) == ("lost", "pending")


def test_an_older_attempts_clean_up_does_not_release_a_retry_held_for_a_newer_one(
    store: Store,
) -> None:
    """A manual retry of a cancelled task starts attempt 2 while attempt 1's clean-up is still due
    (a documented limit); once attempt 2 is lost too, the task is held for *its* clean-up: ending
    attempt 1's leaves it held, and only attempt 2's releases it. (Found by the lifecycle's
    state machine.)"""
    register_worker(store)
    task_id = submit(store, name="load", max_retries=0, cleanup=True)
    start(store, task_id)
    store.task_cancel(CancelParams(task_id, T0))  # running: asked to stop
    assert rescue_expired(store, T0 + 1000) == 1  # its worker is lost: cancelled, clean-up due
    assert store.task_get(task_id).state == State.CANCELLED  # type: ignore[union-attr]
    store.task_retry(RetryParams(task_id, T0 + 1001))
    assert start(store, task_id, now=T0 + 1002).attempt == 2
    assert rescue_expired(store, T0 + 2000) == 1
    record = store.task_get(task_id)
    assert record is not None and (record.state, record.run_at) == (State.RETRY_WAIT, None)
    assert [(c.attempt, c.state) for c in store.cleanup_list(task_id)] == [
        (1, "pending"),
        (2, "pending"),
    ]
    claim = CleanupClaimParams("w1", ["load"], 1, T0 + 2060, T0 + 2001)
    (older,) = store.cleanup_claim(claim)
    assert older.attempt == 1
    assert store.cleanup_end(CleanupEndParams(older.id, "w1", "succeeded", None, T0 + 2002))
    assert store.task_release_due(DueParams(T0 + 3000, 10)) == 0  # still held for attempt 2
    (newer,) = store.cleanup_claim(CleanupClaimParams("w1", ["load"], 1, T0 + 2060, T0 + 2003))
    assert newer.attempt == 2
    assert store.cleanup_end(CleanupEndParams(newer.id, "w1", "succeeded", None, T0 + 2004))
    assert store.task_release_due(DueParams(T0 + 3000, 10)) == 1


def test_the_rules() -> None:
    assert [reason_for(o) for o in ("failed", "timed_out", "cancelled", "lost", "stalled")] == [
        "error", "timeout", "cancelled", "lost", "stalled"
    ]  # fmt: skip
    assert [reason_for(o) for o in ("succeeded", "sliced", "released")] == [None] * 3
    assert held_target(State.READY) == State.RETRY_WAIT
    assert held_target(State.DEAD) == State.DEAD
    assert after_try(ok=True, tries=9, retries=1, delay=5, now=10).state == "succeeded"
    assert after_try(ok=False, tries=2, retries=2, delay=5, now=10).next_try_at == 15
    assert after_try(ok=False, tries=3, retries=2, delay=5, now=10).state == "failed"


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"fn": 3}, "on_cleanup"),
        ({"on_cancel": print}, "not both"),
        ({"timeout": 0}, "cleanup_timeout"),
        ({"timeout": "soon"}, "cleanup_timeout"),
        ({"retries": -1}, "cleanup_retries"),
        ({"backoff": 2}, "cleanup_backoff"),
    ],
)
def test_bad_clean_up_options_are_refused_naming_the_field(
    options: dict[str, Any], field: str
) -> None:
    args = {"fn": print} | options
    fn = args.pop("fn")
    with pytest.raises(ConfigError, match=field):
        check_spec("load", fn, **args)


def test_status_shows_each_attempts_clean_up(store: Store) -> None:
    from click.testing import CliRunner

    from corral.cli import cli

    register_worker(store)
    task_id = submit(store, name="load", max_retries=3)
    bad_end(store, task_id, start(store, task_id).attempt, cleanup="timeout", retry_at=T0 + 2)
    (job,) = store.cleanup_claim(CleanupClaimParams("w1", ["load"], 5, T0 + 60, T0 + 3))
    store.cleanup_end(CleanupEndParams(job.id, "w1", "failed", "RuntimeError: nope", T0 + 4))
    url = store.url
    shown = CliRunner().invoke(cli, ["--database-url", url, "status", str(task_id), "--json"])
    assert shown.exit_code == 0, shown.output
    (cleanup,) = json.loads(shown.output)["cleanups"]
    assert (cleanup["attempt"], cleanup["reason"], cleanup["state"], cleanup["tries"]) == (
        1, "timeout", "failed", 1
    )  # fmt: skip
    assert cleanup["last_error"] == "RuntimeError: nope"
    text = CliRunner().invoke(cli, ["--database-url", url, "status", str(task_id)])
    assert text.exit_code == 0, text.output
    assert "Clean-ups" in text.output and "RuntimeError: nope" in text.output
    assert "cleanup_failed" in text.output


def test_a_failed_clean_up_reaches_callbacks_and_a_stalled_slice_is_cleaned_up(
    app: corral.App, services: Any
) -> None:
    from corral.worker.worker import WorkerConfig

    alerts: list[tuple[int, int, dict[str, Any]]] = []
    cleaned: list[tuple[int, int, str]] = []

    @app.on("cleanup_failed")
    def alert(change: corral.StateChange) -> None:
        alerts.append((change.task_id, change.event.attempt, json.loads(change.event.detail)))

    def refuse(ctx: corral.Context, reason: str) -> None:
        raise RuntimeError(f"can't release ({reason})")

    @app.task(on_cleanup=refuse, cleanup_retries=0)
    def doomed(ctx: corral.Context) -> None:
        raise ValueError("load failed")

    def release(ctx: corral.Context, reason: str) -> None:
        cleaned.append((ctx.task_id, ctx.attempt, reason))

    @app.task(max_runtime=0.05, on_timeout="continue", fail_stalled_after=2,
              flag_stalled_after=1, on_cleanup=release)  # fmt: skip
    def stuck(ctx: corral.Context) -> None:
        ctx.wait_cancelled(1.0)  # never saves a checkpoint: every slice is a stall

    def hang(ctx: corral.Context, reason: str) -> None:
        import time

        time.sleep(3)  # past its limit: abandoned, the try fails

    @app.task(on_cleanup=hang, cleanup_timeout=0.2, cleanup_retries=0)
    def hung(ctx: corral.Context) -> None:
        raise ValueError("load failed")

    failing, stalled, hanging = doomed.submit(), stuck.submit(), hung.submit()
    services(app, worker=WorkerConfig(concurrency=3, heartbeat=0.1, grace=2.0, cleanup_poll=0.1))
    wait_until(lambda: len(alerts) == 2 and app.get(stalled).state == State.DEAD, timeout=30)
    wait_until(lambda: cleaned, timeout=10)
    assert app.get(failing).state == app.get(hanging).state == State.DEAD
    assert sorted(alerts) == [
        (failing, 1, {"reason": "error", "tries": 1,
                      "error": "RuntimeError: can't release (error)"}),
        (hanging, 1, {"reason": "error", "tries": 1,
                      "error": "TimeoutError: the clean-up ran past its limit of 0.2s"}),
    ]  # fmt: skip
    # A slice is no bad end; the slice that fails it as stalled is.
    last = app.get(stalled).attempt
    assert cleaned == [(stalled, last, "stalled")]


def test_the_testing_harness_runs_the_clean_ups_within_its_drain(app_url: str) -> None:
    from corral.testing import harness

    app = corral.App(app_url)
    seen: list[tuple[str, int, str | None]] = []
    tries = {"n": 0}

    def release(ctx: corral.Context, reason: str) -> None:
        tries["n"] += 1
        if tries["n"] == 1:
            raise RuntimeError("busy")
        seen.append(("cleanup", ctx.attempt, reason))

    @app.task(max_retries=1, on_cleanup=release, cleanup_backoff=corral.Backoff(base=30, jitter=0))
    def load(ctx: corral.Context) -> int:
        seen.append(("start", ctx.attempt, None))
        if ctx.attempt == 1:
            raise RuntimeError("load failed")
        return ctx.attempt

    try:
        with harness(app, url=app_url, start=T0) as h:
            task_id = load.submit()
            h.drain()  # attempt 1 fails; its clean-up's first try fails: the retry is held
            assert seen == [("start", 1, None)]
            assert app.get(task_id).state == State.RETRY_WAIT
            result = h.drain(with_retries=True)  # the clock jumps to the clean-up's next try
            assert result.succeeded == 1
            assert seen == [("start", 1, None), ("cleanup", 1, "error"), ("start", 2, None)]
            assert h.now() >= T0 + 30
    finally:
        app.close()


def test_pruning_takes_ended_clean_ups_and_keeps_one_still_to_run(store: Store) -> None:
    from corral.retention import DEFAULT_RETENTION, plan

    register_worker(store)
    ended, waiting = submit(store, name="load"), submit(store, name="load")
    newest = submit(store, T0, name="later", run_at=T0 + 1e9)  # SQLite keeps the newest rows
    for task_id in (ended, waiting):
        claim = start(store, task_id)
        report = AttemptReport(task_id, claim.attempt, "failed", State.DEAD,
                               counts_as_failure=True, worker_id="w1", cleanup="error")  # fmt: skip
        assert store.task_complete_many(CompleteParams([report], T0 + 1)) == [task_id]
    jobs = store.cleanup_claim(CleanupClaimParams("w1", ["load"], 1, T0 + 60, T0 + 2))
    assert [j.task_id for j in jobs] == [ended]
    store.cleanup_end(CleanupEndParams(jobs[0].id, "w1", "succeeded", None, T0 + 3))
    store.task_record_event(EventParams(newest, 0, "gil_held", None, T0 + 4))
    later = T0 + DEFAULT_RETENTION + 60
    assert store.task_prune(plan(store.retention_get(), later, 100)) == 2
    assert store.cleanup_list(ended) == []
    (kept,) = store.cleanup_list(waiting)
    assert kept.state == "pending"
    # It still runs from its own row, its task gone.
    (job,) = store.cleanup_claim(CleanupClaimParams("w1", ["load"], 5, later + 60, later))
    assert (job.task_id, job.reason, job.args, job.kwargs) == (waiting, "error", "[]", "{}")
    assert store.cleanup_end(CleanupEndParams(job.id, "w1", "succeeded", None, later + 1))


def test_a_bad_cleanup_poll_is_refused(store: Store) -> None:
    from corral.registry import Registry
    from corral.worker.worker import Worker, WorkerConfig

    with pytest.raises(ConfigError, match="cleanup_poll"):
        Worker(store, Registry(), WorkerConfig(cleanup_poll=0))


def test_why_says_a_held_retry_waits_for_its_clean_up(store: Store) -> None:
    from corral.scheduler.why import why

    register_worker(store)
    task_id = submit(store, name="load", max_retries=3)
    bad_end(store, task_id, start(store, task_id).attempt, cleanup="error", retry_at=T0 + 2)
    (job,) = store.cleanup_claim(CleanupClaimParams("w1", ["load"], 5, T0 + 60, T0 + 3))
    store.cleanup_end(CleanupEndParams(job.id, "w1", "pending", "RuntimeError: busy", T0, T0 + 9))
    _, reasons = why(store, task_id, T0 + 4)
    assert [(r.code, r.text) for r in reasons] == [(
        "cleanup", "it waits for the clean-up of attempt 1 (error) before it retries: pending, "
        "1 tries, last error: RuntimeError: busy",
    )]  # fmt: skip
