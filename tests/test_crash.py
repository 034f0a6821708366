"""Real processes: a worker SIGKILLed mid-run loses no task and records no outcome twice; dedup
holds under submits racing from several processes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

from conftest import wait_until

import corral
from corral.lifecycle import TERMINAL, State
from corral.model import AttemptReport, TaskQuery
from corral.scheduler.service import Scheduler
from corral.store.contract import CompleteParams

WORKER_SCRIPT = """
import sys, time
import corral
from corral.worker.worker import WorkerConfig, run_worker

url, journal = sys.argv[1], sys.argv[2]
app = corral.App(url)

@app.task(max_retries=3)
def work(ctx, n, seconds):
    with open(journal, "a") as f:
        f.write(f"start {ctx.task_id} {ctx.attempt}\\n")
    time.sleep(seconds)
    with open(journal, "a") as f:
        f.write(f"done {ctx.task_id} {ctx.attempt}\\n")
    return n

run_worker(app, WorkerConfig(concurrency=4, lease=2, heartbeat=0.5, poll=0.05, grace=5))
"""

SUBMIT_SCRIPT = """
import json, os, random, sys, time
import corral

url, go, keys, ready = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
app = corral.App(url)

@app.task
def job(ctx, key):
    return key

order = [f"key-{i}" for i in range(keys)]
random.shuffle(order)
app.store.task_states([])  # connected before the start signal, so that the submits race
open(f"{ready}.{os.getpid()}", "w").close()
while not os.path.exists(go):
    time.sleep(0.005)
ids = {key: job.submit(key, dedup_key=key) for key in order}
print(json.dumps(ids))
"""


def script(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def journal_lines(path: Path, kind: str) -> list[tuple[int, int]]:
    if not path.exists():
        return []
    lines = [line.split() for line in path.read_text().splitlines()]
    return [(int(task), int(attempt)) for k, task, attempt in lines if k == kind]


def test_killed_worker_loses_no_task_and_records_no_outcome_twice(
    app: corral.App, app_url: str, tmp_path: Path, scheduler: Scheduler
) -> None:
    @app.task(max_retries=3)
    def work(ctx: corral.Context, n: int, seconds: float) -> int: ...

    worker_py = script(tmp_path, "worker.py", WORKER_SCRIPT)
    journal = tmp_path / "journal.txt"
    ids = [work.submit(n, 1.5) for n in range(8)]
    command = [sys.executable, str(worker_py), app_url, str(journal)]
    first = subprocess.Popen(command)
    second: subprocess.Popen[bytes] | None = None
    try:
        wait_until(lambda: len(journal_lines(journal, "start")) >= 4, timeout=20)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        in_flight = set(journal_lines(journal, "start")) - set(journal_lines(journal, "done"))
        assert in_flight, "the worker should have been killed with tasks in flight"
        second = subprocess.Popen(command)
        wait_until(
            lambda: all(s in TERMINAL for s in app.store.task_states(ids).values()), timeout=30
        )
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(15)

    killed = f":{first.pid}:"
    lost = []
    for task_id in ids:
        record = app.get(task_id)
        assert (record.state, record.result) == (State.SUCCEEDED, str(ids.index(task_id)))
        attempts = app.store.attempt_list(task_id)
        assert [a.attempt for a in attempts] == list(range(1, record.attempt + 1))
        assert [a.outcome for a in attempts].count("succeeded") == 1
        assert attempts[-1].outcome == "succeeded"
        for attempt in attempts:
            assert attempt.outcome is not None
            if attempt.worker_id and killed in attempt.worker_id:
                assert attempt.outcome == "lost"
                lost.append(attempt)
        # each attempt ended with exactly one transition out of running (beside which a lost
        # one records a `suspect` event, which is no transition)
        events = app.store.event_list(task_id)
        ends = Counter(e.attempt for e in events if e.from_state == "running" and e.to_state)
        assert ends == Counter(a.attempt for a in attempts)
        # a task lost beside others became a suspect, its loss not counted, and ran alone next
        for attempt in attempts[:-1]:
            assert attempt.outcome == "lost" and not attempt.isolated
            assert [e.attempt for e in events if e.kind == "suspect"].count(attempt.attempt) == 1
        if len(attempts) > 1:
            assert attempts[-1].isolated
        assert record.failures == 0 and not record.suspect
    started = set(journal_lines(journal, "start"))
    assert in_flight <= {(a.task_id, a.attempt) for a in lost} <= started
    # A late report from the killed worker is refused and changes nothing.
    late = [
        AttemptReport(a.task_id, a.attempt, "succeeded", State.SUCCEEDED, worker_id=a.worker_id)
        for a in lost
    ]
    assert app.store.task_complete_many(CompleteParams(late, time.time())) == []
    assert all(app.store.attempt_list(a.task_id)[a.attempt - 1].outcome == "lost" for a in lost)


def test_dedup_holds_under_concurrent_submits_from_processes(
    app: corral.App, app_url: str, tmp_path: Path
) -> None:
    keys = 50
    submit_py = script(tmp_path, "submit.py", SUBMIT_SCRIPT)
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, str(submit_py), app_url, str(go), str(keys), str(tmp_path / "ready")],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    try:
        wait_until(lambda: len(list(tmp_path.glob("ready.*"))) == len(procs), timeout=20)
        go.touch()  # releases them together
        outputs = [proc.communicate(timeout=60)[0] for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert [proc.returncode for proc in procs] == [0, 0, 0, 0]
    maps = [json.loads(out) for out in outputs]
    assert all(m == maps[0] for m in maps)  # every process got the same id per key
    assert len(set(maps[0].values())) == keys
    tasks = app.store.task_list(TaskQuery(limit=1000))
    assert len(tasks) == keys
    assert all(t.state not in TERMINAL for t in tasks)
    assert {t.dedup_key: t.id for t in tasks} == maps[0]
