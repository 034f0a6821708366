"""Alerts under a leader's SIGKILL, with real `corral scheduler` processes on PostgreSQL: tasks
die while the leader evaluates and delivers; the leader is killed (mid-run included) while
incidents are open; the standby takes over. Exactly one incident and one first notification
(outbox row) per subject; every subject reaches the receiver, each with one idempotency key."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import IO, Any

import pytest
from conftest import new_task, wait_until
from receivers import Receiver

import corral
from corral.lifecycle import State
from corral.model import AttemptReport, WorkerInfo
from corral.store import Store
from corral.store.contract import AdmitParams, ClaimParams, CompleteParams, InsertParams

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.parametrize("databases", ["postgres"], indirect=True),
]

APP_MODULE = """
import os
import corral

app = corral.App()
app.alerts.interval = 0.2


@app.task(pool="doomed")
def job(ctx):
    return None


app.alerts.webhook("hook", os.environ["ALERT_HOOK_URL"], timeout=2)
app.alerts.rule("dead-jobs", "dead", channels="hook", group_wait=0, group_interval=1)
"""


def received(receiver: Receiver) -> list[tuple[str, list[dict[str, Any]]]]:
    """What the receiver accepted: (idempotency key, notices) per request."""
    return [
        (a["headers"]["X-Corral-Idempotency-Key"], a["body"]["notices"])
        for a in list(receiver.accepted)
    ]


def subjects(receiver: Receiver) -> set[str]:
    return {n["subject"] for _, notices in received(receiver) for n in notices}


class Schedulers:
    def __init__(self, tmp_path: Path, url: str, hook: str) -> None:
        self.dir, self.url, self.hook = tmp_path, url, hook
        (tmp_path / "alertapp.py").write_text(textwrap.dedent(APP_MODULE))
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[IO[bytes]] = []

    def start(self) -> None:
        log = (self.dir / f"scheduler-{len(self.procs)}.log").open("wb")
        self.logs.append(log)
        args = [sys.executable, "-m", "corral", "--app", "alertapp:app", "--database-url",
                self.url, "--log-level", "INFO", "scheduler"]  # fmt: skip
        env = {**os.environ, "ALERT_HOOK_URL": self.hook}
        self.procs.append(subprocess.Popen(args, cwd=self.dir, stdout=log, stderr=log, env=env))

    def leader(self) -> subprocess.Popen[bytes] | None:
        for i, proc in enumerate(self.procs):
            text = (self.dir / f"scheduler-{i}.log").read_text(errors="replace")
            said = [ln for ln in text.splitlines() if ln.endswith((" leads", " by"))]
            if proc.poll() is None and said and said[-1].endswith(" leads"):
                return proc
        return None

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(10)
        for log in self.logs:
            log.close()


def _dead(store: Store, count: int) -> list[int]:
    """`count` tasks of the pool no scheduler's worker serves, run by hand and failed for good."""
    now = store.clock().now()
    info = WorkerInfo("hand", "test-host", 1, ("doomed",), count)
    store.worker_register(info, now + 600, now)
    made = store.task_insert_many(InsertParams([new_task(pool="doomed") for _ in range(count)],
                                               now))  # fmt: skip
    ids = [m.id for m in made]
    store.task_admit_many(AdmitParams(ids, now))  # the leader may have admitted some: fine
    claimed = store.task_claim(ClaimParams("hand", ["doomed"], count, now + 60, now))
    reports = [
        AttemptReport(task_id=c.id, attempt=c.attempt, outcome="failed", target=State.DEAD,
                      counts_as_failure=True, worker_id="hand", error="ValueError: no data")
        for c in claimed
    ]  # fmt: skip
    store.task_complete_many(CompleteParams(reports, store.clock().now()))
    return [c.id for c in claimed]


def test_leader_sigkilled_with_open_incidents_one_incident_one_notice_each(
    app_url: str, tmp_path: Path, receiver: Receiver
) -> None:
    procs = Schedulers(tmp_path, app_url, receiver.url)
    app = corral.App(app_url)
    try:
        procs.start()
        procs.start()
        wait_until(procs.leader, timeout=30, interval=0.1)
        died: list[int] = []
        for _ in range(3):
            died += _dead(app.store, 4)
            wait_until(lambda: app.store.alert_open(), timeout=20, interval=0.02)
            leader = procs.leader()
            assert leader is not None
            leader.send_signal(signal.SIGKILL)  # incidents open, notices perhaps unsent
            leader.wait(10)
            procs.start()
            wait_until(procs.leader, timeout=30, interval=0.1)
        expected = {f"task:{i}#1" for i in died}
        try:
            wait_until(lambda: subjects(receiver) >= expected, timeout=40, interval=0.1)
        except AssertionError:
            rows = app.store.alert_notifications(None, 1000)
            raise AssertionError(f"{received(receiver)} {rows} {app.store.alert_open()}") from None
        incidents = app.store.alert_incidents(None, 1000)
        assert sorted(i.subject for i in incidents) == sorted(expected)
        firsts = [n for n in app.store.alert_notifications(None, 1000) if n.transition == "firing"]
        assert sorted(n.incident_id for n in firsts) == sorted(i.id for i in incidents)
        keys: dict[str, set[str]] = {}
        for _, notices in received(receiver):
            for n in notices:
                keys.setdefault(n["subject"], set()).add(n["idempotency_key"])
        assert all(len(k) == 1 for k in keys.values()), keys
    finally:
        procs.kill_all()
        app.close()
