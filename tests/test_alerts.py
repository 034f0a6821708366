"""Alerts on both backends with a moved clock: each rule kind fires, groups, repeats and
resolves; the outbox delivers at least once to a real HTTP receiver on 127.0.0.1 (signature
checked), with the same idempotency key after failures; one open incident per (rule, subject)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import T0, finish, register_worker, start, submit
from receivers import Receiver

import corral
from corral.alerts.channels import signature
from corral.clock import ManualClock
from corral.errors import ConfigError
from corral.lifecycle import State
from corral.model import AttemptReport
from corral.store.contract import CompleteParams

SECRET = "s3cret-for-tests"


@pytest.fixture
def alert_app(app_url: str, clock: ManualClock, monkeypatch: pytest.MonkeyPatch,
              receiver: Receiver) -> Iterator[corral.App]:  # fmt: skip
    monkeypatch.setenv("CORRAL_TEST_HOOK_SECRET", SECRET)
    application = corral.App(app_url, clock=clock)

    @application.task(name="job")
    def job(ctx: corral.Context) -> None: ...

    application.alerts.webhook("hook", receiver.url, secret_env="CORRAL_TEST_HOOK_SECRET")
    yield application
    application.close()


def _round(app: corral.App, clock: ManualClock) -> int:
    """One evaluator run and one delivery run at the clock's time."""
    made = app.alerts.evaluator().run(clock.now())
    app.alerts.sender().deliver_due(clock.now())
    return made


def _die(app: corral.App, now: float, **overrides: Any) -> int:
    store = app.store
    task_id = submit(store, now, **overrides)
    claim = start(store, task_id, now)
    finish(store, claim, State.DEAD, now)
    return task_id


def test_dead_task_fires_once_signed_with_cause_and_resolves_on_retry(
    alert_app: corral.App, clock: ManualClock, receiver: Receiver
) -> None:
    app = alert_app
    app.alerts.rule("dead-jobs", "dead", channels="hook", task="job", group_wait=10)
    app.alerts.services()  # the start-up check
    register_worker(app.store)
    task_id = _die(app, T0)
    assert _round(app, clock) == 1
    (inc,) = app.store.alert_open()
    assert inc.state == "firing" and inc.subject == f"task:{task_id}#1"
    assert receiver.accepted == []  # group_wait holds the first notice
    clock.advance(10)
    assert _round(app, clock) == 0  # no second incident, nothing new to change
    assert len(receiver.accepted) == 1
    got = receiver.accepted[0]
    headers, body = got["headers"], got["body"]
    raw = receiver.requests[-1][1]
    expected = signature(SECRET, headers["X-Corral-Timestamp"], raw)
    assert hmac.compare_digest(headers["X-Corral-Signature"], expected)
    wrong = "sha256=" + hmac.new(b"other", raw, hashlib.sha256).hexdigest()
    assert headers["X-Corral-Signature"] != wrong
    (notice,) = body["notices"]
    assert notice["transition"] == "firing" and notice["subject"] == f"task:{task_id}#1"
    assert any("error" in line for line in notice["cause_lines"])
    assert headers["X-Corral-Idempotency-Key"] == f"corral-{inc.id}-firing-hook"
    # retried: the task is no longer dead, the incident resolves; its resolve notice goes at
    # the group's next flush, group_interval (5m) after the firing batch
    app.retry(task_id)
    clock.advance(1)
    _round(app, clock)
    assert app.store.alert_open() == [] and len(receiver.accepted) == 1
    clock.advance(299)
    _round(app, clock)
    assert [a["body"]["notices"][0]["transition"] for a in receiver.accepted] == [
        "firing", "resolved",
    ]  # fmt: skip


def test_failing_receiver_gets_the_same_key_once_it_accepts(
    alert_app: corral.App, clock: ManualClock, receiver: Receiver
) -> None:
    app = alert_app
    receiver.fail = 2
    app.alerts.rule("dead-jobs", "dead", channels=["hook"], group_wait=0)
    register_worker(app.store)
    _die(app, T0)
    _round(app, clock)
    (row,) = app.store.alert_notifications(None, 10)
    assert row.state == "pending" and row.tries == 1 and "503" in (row.last_error or "")
    app.alerts.sender().deliver_due(clock.now())  # not due yet: backed off
    assert len(receiver.requests) == 1
    for _ in range(2):
        clock.advance(600)
        app.alerts.sender().deliver_due(clock.now())
    (row,) = app.store.alert_notifications(None, 10)
    assert row.state == "sent" and row.tries == 3
    keys = [h["X-Corral-Idempotency-Key"] for h, _ in receiver.requests]
    assert len(keys) == 3 and len(set(keys)) == 1 and len(receiver.accepted) == 1


def test_failures_group_repeat_silence_and_resolve(
    alert_app: corral.App, clock: ManualClock, receiver: Receiver
) -> None:
    app = alert_app
    app.alerts.rule("flaky", "failures", channels="hook", count=3, window="10m", group_wait=0,
                    repeat_interval="1h")  # fmt: skip
    register_worker(app.store)
    for _ in range(2):
        _die(app, clock.now())
    _round(app, clock)
    assert app.store.alert_open() == []  # 2 < 3
    _die(app, clock.now())
    _round(app, clock)
    (inc,) = app.store.alert_open()
    assert inc.subject == "task:job" and len(receiver.accepted) == 1
    clock.advance(300)
    _die(app, clock.now())  # still firing: no new notice before repeat_interval
    _round(app, clock)
    assert len(receiver.accepted) == 1
    clock.advance(3300)
    for _ in range(3):
        _die(app, clock.now())
    _round(app, clock)  # an hour after the first notice: a repeat
    transitions = [a["body"]["notices"][0]["transition"] for a in receiver.accepted]
    assert transitions == ["firing", "repeat1"]
    app.alerts.silence("flaky", "2h")
    clock.advance(3700)
    for _ in range(3):
        _die(app, clock.now())
    _round(app, clock)
    assert len(receiver.accepted) == 2  # silenced: no repeat
    clock.advance(7200)  # the window passes with no failure: resolved, silence expired
    _round(app, clock)
    assert app.store.alert_open() == []
    assert receiver.accepted[-1]["body"]["notices"][0]["transition"] == "resolved"


def test_group_wait_batches_new_incidents_into_one_message(
    alert_app: corral.App, clock: ManualClock, receiver: Receiver
) -> None:
    app = alert_app
    app.alerts.rule("dead-jobs", "dead", channels="hook", group_wait=30, group_interval=60)
    register_worker(app.store)
    _die(app, T0)
    _round(app, clock)
    clock.advance(10)
    _die(app, clock.now())
    _round(app, clock)
    clock.advance(20)
    _round(app, clock)
    assert len(receiver.accepted) == 1
    assert len(receiver.accepted[0]["body"]["notices"]) == 2
    clock.advance(5)
    _die(app, clock.now())  # the group was notified: the next batch waits for group_interval
    _round(app, clock)
    assert len(receiver.accepted) == 1
    clock.advance(60)
    _round(app, clock)
    assert len(receiver.accepted) == 2 and len(receiver.accepted[1]["body"]["notices"]) == 1


def test_one_open_incident_per_subject_whatever_runs_twice(
    alert_app: corral.App, clock: ManualClock, receiver: Receiver
) -> None:
    app = alert_app
    app.alerts.rule("dead-jobs", "dead", channels="hook", group_wait=0)
    register_worker(app.store)
    _die(app, T0)
    first, second = app.alerts.evaluator(), app.alerts.evaluator()  # two leaders, one moment
    first.run(clock.now())
    second.run(clock.now())
    assert len(app.store.alert_open()) == 1
    assert len(app.store.alert_notifications(None, 10)) == 1


def test_wait_time_and_no_worker(
    alert_app: corral.App, clock: ManualClock, receiver: Receiver
) -> None:
    app = alert_app
    app.alerts.rule("slow", "wait_time", channels="hook", threshold="5m", group_wait=0)
    app.alerts.rule("nobody", "no_worker", channels="hook", grace="1m", group_wait=0)
    submit(app.store, T0)
    _round(app, clock)
    assert app.store.alert_open() == []
    clock.advance(400)
    _round(app, clock)
    subjects = sorted((i.rule, i.subject) for i in app.store.alert_open())
    assert subjects == [("nobody", "pool:default"), ("slow", "pool:default")]
    slow = [a for a in receiver.accepted if a["body"]["notices"][0]["rule"] == "slow"]
    assert "oldest waiting task" in slow[0]["body"]["notices"][0]["cause_lines"][0]
    register_worker(app.store, now=clock.now())
    _round(app, clock)
    assert [i.rule for i in app.store.alert_open()] == ["slow"]


def test_deadline_is_tied_to_the_logical_time(
    alert_app: corral.App, clock: ManualClock, receiver: Receiver
) -> None:
    app = alert_app
    app.schedules.add("daily", app.tasks["job"], cron="0 2 * * *", catchup="latest")
    app.alerts.rule("late", "deadline", channels="hook", schedule="daily", after="6h",
                    window="2d", group_wait=0)  # fmt: skip
    app.alerts.rule("missed", "schedule_missed", channels="hook", schedule="daily",
                    grace="30m", group_wait=0)  # fmt: skip
    app.alerts.services()  # the rules checked against the schedules, as a scheduler's start does
    schedule_clock = app.schedules.services()[0]
    app.schedules.sync()
    clock.advance(3 * 86400)  # nothing fired: the clock never ran
    _round(app, clock)
    late = [i for i in app.store.alert_open() if i.rule == "late"]
    missed = [i for i in app.store.alert_open() if i.rule == "missed"]
    assert late and len(missed) == 1
    assert all(i.subject.startswith("schedule:daily@") for i in late)
    notice = next(a for a in receiver.accepted if a["body"]["notices"][0]["rule"] == "missed")
    assert "not fire" in notice["body"]["notices"][0]["summary"]
    # the clock runs: the latest day fires, the older ones are recorded missed ("latest")
    schedule_clock.run(clock.now())
    _round(app, clock)
    assert [i for i in app.store.alert_open() if i.rule == "missed"] == []  # a later fire ran
    assert [i.subject for i in app.store.alert_open() if i.rule == "late"]  # not succeeded


def test_pending_for_a_while_before_firing(
    alert_app: corral.App, clock: ManualClock, receiver: Receiver
) -> None:
    app = alert_app
    app.alerts.rule("nobody", "no_worker", channels="hook", for_="1m", group_wait=0)
    submit(app.store, T0)
    clock.advance(1)
    _round(app, clock)
    (inc,) = app.store.alert_open()
    assert inc.state == "pending" and receiver.accepted == []
    clock.advance(30)
    _round(app, clock)
    assert app.store.alert_open()[0].state == "pending"
    clock.advance(30)
    _round(app, clock)
    assert app.store.alert_open()[0].state == "firing" and len(receiver.accepted) == 1


def test_p95_wait_of_recent_starts(alert_app: corral.App, clock: ManualClock) -> None:
    app = alert_app
    app.alerts.rule("slow-p95", "wait_time", channels="hook", stat="p95", threshold="1m",
                    window="1h", group_wait=0)  # fmt: skip
    register_worker(app.store)
    ids = [submit(app.store, T0) for _ in range(3)]
    clock.advance(120)  # each waited 2 minutes before it started
    for task_id in ids:
        finish(app.store, start(app.store, task_id, clock.now()), State.SUCCEEDED, clock.now())
    _round(app, clock)
    (inc,) = app.store.alert_open()
    assert inc.rule == "slow-p95" and inc.subject == "pool:default"
    clock.advance(3700)  # the starts leave the window
    _round(app, clock)
    assert app.store.alert_open() == []


def test_bad_rules_name_the_rule_and_field(alert_app: corral.App) -> None:
    app = alert_app
    with pytest.raises(ConfigError, match=r"'x'.*kind"):
        app.alerts.rule("x", "sometimes", channels="hook")
    with pytest.raises(ConfigError, match=r"'x'.*threshold"):
        app.alerts.rule("x", "wait_time", channels="hook", threshold="soon")
    with pytest.raises(ConfigError, match=r"'m'.*smtp"):
        app.alerts.email("m", "mail.example.com", to="a@b.c", sender="c@d.e")
    with pytest.raises(ConfigError, match=r"'w'.*http"):
        app.alerts.webhook("w", "ftp://x")
    app.alerts.rule("y", "dead", channels="nope")
    with pytest.raises(ConfigError, match=r"'y'.*no channel named 'nope'"):
        app.alerts.services()


def test_task_error_counts_lost_attempts(alert_app: corral.App, clock: ManualClock) -> None:
    """A lost attempt (the reaper's) counts as a failure for the failures rule."""
    app = alert_app
    app.alerts.rule("lost", "failures", channels="hook", count=1, group_wait=0)
    register_worker(app.store)
    task_id = submit(app.store, T0, max_retries=3)
    claim = start(app.store, task_id, T0)
    report = AttemptReport(task_id=claim.id, attempt=claim.attempt, outcome="lost",
                           target=State.READY, counts_as_failure=True, worker_id="w1")  # fmt: skip
    app.store.task_complete_many(CompleteParams([report], T0))
    _round(app, clock)
    assert [i.subject for i in app.store.alert_open()] == ["task:job"]


def test_deadline_fires_for_its_logical_time_and_resolves_when_the_run_succeeds(
    alert_app: corral.App, clock: ManualClock, receiver: Receiver
) -> None:
    app = alert_app
    app.schedules.add("daily", app.tasks["job"], cron="0 2 * * *", catchup="latest")
    app.alerts.rule("late", "deadline", channels="hook", schedule="daily", after="6h",
                    window="1d", group_wait=0)  # fmt: skip
    schedule_clock = app.schedules.services()[0]
    app.schedules.sync()
    two_am = 1_700_013_600.0  # 2023-11-15 02:00 UTC, the first fire after T0
    clock.set(two_am + 3600)
    schedule_clock.run(clock.now())
    fire = app.store.fire_get("daily", two_am)
    assert fire is not None and len(fire.task_ids) == 1
    clock.set(two_am + 5 * 3600)
    _round(app, clock)
    assert app.store.alert_open() == []  # not late before 08:00
    clock.set(two_am + 6 * 3600 + 60)
    _round(app, clock)
    (inc,) = app.store.alert_open()
    assert inc.subject == "schedule:daily@2023-11-15T02:00:00+00:00"
    notice = receiver.accepted[-1]["body"]["notices"][0]
    assert "ready" in notice["cause_lines"][0]  # its task is still waiting to run
    register_worker(app.store, now=clock.now())
    finish(app.store, start(app.store, fire.task_ids[0], clock.now()), State.SUCCEEDED,
           clock.now())  # fmt: skip
    _round(app, clock)
    assert app.store.alert_open() == []
    clock.advance(300)  # the resolve notice goes at the group's next flush
    _round(app, clock)
    assert receiver.accepted[-1]["body"]["notices"][0]["transition"] == "resolved"


def test_deadline_a_succeeded_older_day_does_not_mask_a_late_new_one(
    alert_app: corral.App, clock: ManualClock, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deadline is per logical time: yesterday's run succeeding (however late, a backfill's
    say) says nothing of today's. The fires are read a page of one at a time here, so the
    deadline's paging over the schedule's fires is what finds both days."""
    from corral.alerts import evaluator

    monkeypatch.setattr(evaluator, "FIRE_PAGE", 1)
    app = alert_app
    app.schedules.add("daily", app.tasks["job"], cron="0 2 * * *", catchup="latest")
    app.alerts.rule("late", "deadline", channels="hook", schedule="daily", after="6h",
                    window="2d", group_wait=0)  # fmt: skip
    schedule_clock = app.schedules.services()[0]
    app.schedules.sync()
    register_worker(app.store, now=clock.now())
    day1 = 1_700_013_600.0  # 2023-11-15 02:00 UTC, the first fire after T0
    day2 = day1 + 86400
    clock.set(day1 + 60)
    schedule_clock.run(clock.now())
    clock.set(day2 + 60)
    schedule_clock.run(clock.now())
    first, second = app.store.fire_get("daily", day1), app.store.fire_get("daily", day2)
    assert first is not None and second is not None
    clock.set(day2 + 6 * 3600 + 60)  # both past their deadline; day 1 succeeds now, late
    register_worker(app.store, now=clock.now())
    finish(app.store, start(app.store, first.task_ids[0], clock.now()), State.SUCCEEDED,
           clock.now())  # fmt: skip
    _round(app, clock)
    assert [i.subject for i in app.store.alert_open()] == [
        "schedule:daily@2023-11-16T02:00:00+00:00"
    ]


def test_a_paused_group_mutes_its_rules_and_its_wait_is_no_alert(
    alert_app: corral.App, clock: ManualClock, receiver: Receiver
) -> None:
    """A paused group's tasks wait on purpose: the pool's wait rule reads the oldest task of the
    other groups, and a rule about the group is muted while it is paused."""
    app = alert_app
    app.alerts.rule("slow", "wait_time", channels="hook", threshold="5m", group_wait=0)
    app.alerts.rule("crm-dead", "dead", channels="hook", group="crm", group_wait=0)
    register_worker(app.store, now=T0, lease=1e7)
    submit(app.store, T0, group="crm")  # the oldest ready task, but its group is paused
    app.groups.pause("crm", by="test")
    _die(app, T0, group="crm")  # it ran before the pause
    clock.advance(400)
    _round(app, clock)
    # the dead task is tracked (one incident), but told to nobody while its group is paused
    assert [(i.rule, i.notices) for i in app.store.alert_open()] == [("crm-dead", 0)]
    assert receiver.accepted == []
    later = submit(app.store, clock.now(), group="etl")  # a task of another group waits too
    clock.advance(400)
    _round(app, clock)
    assert sorted(i.rule for i in app.store.alert_open()) == ["crm-dead", "slow"]
    (told,) = [n for a in receiver.accepted for n in a["body"]["notices"]]
    assert told["rule"] == "slow"
    assert told["cause_lines"][0].startswith(f"oldest waiting task {later}:"), told
    app.groups.resume("crm")
    clock.advance(1)
    _round(app, clock)
    rules = sorted(n["rule"] for a in receiver.accepted for n in a["body"]["notices"])
    assert rules == ["crm-dead", "slow"]  # told once resumed
