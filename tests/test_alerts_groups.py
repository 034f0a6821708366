"""Alert notice groups (`group_by`, Alertmanager's) on both backends with a moved clock: a rule's
incidents with the same group_by values go out as one message per channel and batch, different
values as separate ones; a new incident in a notified group waits for its group_interval; resolve
notices go at the group's next flush (never with send_resolved=False); a group all resolved is
told once and closed; the batch times are rows, so a new leader's evaluator keeps them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from conftest import T0, finish, register_worker, start, submit
from receivers import Receiver

import corral
from corral.alerts.rules import group_key, make_rule
from corral.clock import ManualClock
from corral.errors import ConfigError
from corral.lifecycle import State
from corral.store.contract.alerts import OPEN, RESOLVE, AlertApply, IncidentChange, Notice


@pytest.fixture
def alert_app(app_url: str, clock: ManualClock, receiver: Receiver) -> Iterator[corral.App]:
    application = corral.App(app_url, clock=clock)

    @application.task(name="job")
    def job(ctx: corral.Context) -> None: ...

    application.alerts.webhook("hook", receiver.url)
    register_worker(application.store)
    yield application
    application.close()


def _round(app: corral.App, clock: ManualClock) -> None:
    app.alerts.evaluator().run(clock.now())
    app.alerts.sender().deliver_due(clock.now())


def _die(app: corral.App, now: float, **overrides: Any) -> int:
    task_id = submit(app.store, now, **overrides)
    finish(app.store, start(app.store, task_id, now), State.DEAD, now)
    return task_id


def messages(receiver: Receiver) -> list[list[tuple[str, str, str]]]:
    """Each accepted message's notices: (group, transition, subject), sorted."""
    return [
        sorted((n["group"], n["transition"], n["subject"]) for n in a["body"]["notices"])
        for a in receiver.accepted
    ]


def test_same_group_by_values_go_as_one_message_different_ones_as_two(
    alert_app: corral.App, clock: ManualClock, receiver: Receiver
) -> None:
    app = alert_app
    app.alerts.rule("dead", "dead", channels="hook", group_by=("group",), group_wait=30,
                    group_interval=60)  # fmt: skip
    a1, a2 = _die(app, T0, group="etl"), _die(app, T0, group="etl")
    _round(app, clock)
    clock.advance(10)
    b1 = _die(app, clock.now(), group="web")
    _round(app, clock)
    assert receiver.accepted == []  # group_wait holds both groups' first batch
    clock.advance(20)  # etl's group_wait is over, web's (opened 10 s later) is not
    _round(app, clock)
    assert messages(receiver) == [
        [("group=etl", "firing", f"task:{a1}#1"), ("group=etl", "firing", f"task:{a2}#1")],
    ]
    clock.advance(10)
    _round(app, clock)
    assert messages(receiver)[1:] == [[("group=web", "firing", f"task:{b1}#1")]]
    keys = {n["idempotency_key"] for a in receiver.accepted for n in a["body"]["notices"]}
    assert len(keys) == 3
    groups = {i.subject: i.group_key for i in app.store.alert_open()}
    assert groups == {f"task:{a1}#1": "group=etl", f"task:{a2}#1": "group=etl",
                      f"task:{b1}#1": "group=web"}  # fmt: skip


def test_two_groups_due_at_one_moment_are_still_two_messages(
    alert_app: corral.App, clock: ManualClock, receiver: Receiver
) -> None:
    app = alert_app
    app.alerts.rule("dead", "dead", channels="hook", group_by="group", group_wait=0)
    _die(app, T0, group="etl")
    _die(app, T0, group="web")
    _round(app, clock)
    assert sorted(m[0][0] for m in messages(receiver)) == ["group=etl", "group=web"]


def test_every_label_is_one_group_per_subject(
    alert_app: corral.App, clock: ManualClock, receiver: Receiver
) -> None:
    app = alert_app
    app.alerts.rule("dead", "dead", channels="hook", group_by=("...",), group_wait=0)
    first, second = _die(app, T0), _die(app, T0)
    _round(app, clock)
    assert sorted(messages(receiver)) == [
        [(f"task:{first}#1", "firing", f"task:{first}#1")],
        [(f"task:{second}#1", "firing", f"task:{second}#1")],
    ]


def test_a_new_incident_in_a_notified_group_waits_for_group_interval(
    alert_app: corral.App, clock: ManualClock, receiver: Receiver
) -> None:
    app = alert_app
    app.alerts.rule("dead", "dead", channels="hook", group_by=("group",), group_wait=30,
                    group_interval=120)  # fmt: skip
    _die(app, T0, group="etl")
    _round(app, clock)
    clock.advance(30)
    _round(app, clock)  # etl's first batch, at T0 + 30
    assert len(receiver.accepted) == 1
    clock.advance(10)
    late = _die(app, clock.now(), group="etl")  # joins a notified group
    other = _die(app, clock.now(), group="web")  # a new group: group_wait
    _round(app, clock)
    clock.advance(30)  # T0 + 70: web's group_wait is over, etl's group_interval is not
    _round(app, clock)
    assert messages(receiver)[1:] == [[("group=web", "firing", f"task:{other}#1")]]
    clock.advance(79)  # T0 + 149: still 1 s before etl's next flush
    _round(app, clock)
    assert len(receiver.accepted) == 2
    clock.advance(1)  # T0 + 150 = the first batch + group_interval
    _round(app, clock)
    assert messages(receiver)[2:] == [[("group=etl", "firing", f"task:{late}#1")]]


def test_resolve_notices_go_at_the_next_flush_and_a_resolved_group_closes(
    alert_app: corral.App, clock: ManualClock, receiver: Receiver
) -> None:
    app = alert_app
    app.alerts.rule("dead", "dead", channels="hook", group_by=("group",), group_wait=0,
                    group_interval=300)  # fmt: skip
    ids = [_die(app, T0, group="etl") for _ in range(2)]
    _round(app, clock)  # the first batch, at T0
    assert len(receiver.accepted) == 1
    clock.advance(100)
    app.retry(ids[0])
    _round(app, clock)  # resolved at T0 + 100: not told at once
    clock.advance(100)
    app.retry(ids[1])
    _round(app, clock)  # both resolved, the group has nothing open: still not told
    assert app.store.alert_open() == [] and len(receiver.accepted) == 1
    assert ("dead", "group=etl") in app.store.alert_flushes()  # its batch still waits
    clock.advance(99)
    _round(app, clock)
    assert len(receiver.accepted) == 1
    clock.advance(1)  # T0 + 300: the group's next flush tells both, in one message
    _round(app, clock)
    assert messages(receiver)[1:] == [
        [("group=etl", "resolved", f"task:{ids[0]}#1"),
         ("group=etl", "resolved", f"task:{ids[1]}#1")],
    ]  # fmt: skip
    clock.advance(1)
    _round(app, clock)  # told once, then closed: its batch time is gone
    assert ("dead", "group=etl") not in app.store.alert_flushes()
    assert len(receiver.accepted) == 2
    again = _die(app, clock.now(), group="etl")  # a closed group starts anew: group_wait (0)
    _round(app, clock)
    assert messages(receiver)[2:] == [[("group=etl", "firing", f"task:{again}#1")]]


def test_a_resolve_joins_a_batch_that_waits(
    alert_app: corral.App, clock: ManualClock, receiver: Receiver
) -> None:
    app = alert_app
    app.alerts.rule("dead", "dead", channels="hook", group_wait=0, group_interval=60)
    first = _die(app, T0)
    _round(app, clock)
    clock.advance(10)
    second = _die(app, clock.now())  # due at T0 + 60
    _round(app, clock)
    clock.advance(10)
    app.retry(first)  # its resolve joins the waiting batch, T0 + 60
    _round(app, clock)
    clock.advance(40)
    _round(app, clock)
    assert messages(receiver)[1:] == [
        [("", "firing", f"task:{second}#1"), ("", "resolved", f"task:{first}#1")],
    ]


def test_send_resolved_false_tells_no_resolve(
    alert_app: corral.App, clock: ManualClock, receiver: Receiver
) -> None:
    app = alert_app
    app.alerts.rule("dead", "dead", channels="hook", group_by=("group",), group_wait=0,
                    group_interval=60, send_resolved=False)  # fmt: skip
    task_id = _die(app, T0, group="etl")
    _round(app, clock)
    app.retry(task_id)
    clock.advance(1)
    _round(app, clock)
    assert app.store.alert_open() == []
    for _ in range(3):
        clock.advance(60)
        _round(app, clock)
    assert [t for m in messages(receiver) for _, t, _ in m] == ["firing"]
    assert all(n.transition != "resolved" for n in app.store.alert_notifications(None, 10))


def test_a_still_firing_group_is_told_again_as_one_batch(
    alert_app: corral.App, clock: ManualClock, receiver: Receiver
) -> None:
    """repeat_interval is the group's: once one of its firing incidents is due, the others whose
    notice has gone repeat with it, in one message; a group with nothing due is left alone."""
    app = alert_app
    app.alerts.rule("dead", "dead", channels="hook", group_by=("group",), group_wait=0,
                    group_interval=60, repeat_interval=600)  # fmt: skip
    first = _die(app, T0, group="etl")
    _round(app, clock)
    clock.advance(100)
    second = _die(app, clock.now(), group="etl")  # its own batch, T0 + 100
    other = _die(app, clock.now(), group="web")
    _round(app, clock)
    assert len(receiver.accepted) == 3  # etl's first, then etl's and web's second batches
    clock.advance(500)  # T0 + 600: the first is due its repeat; the second comes along
    _round(app, clock)
    assert messages(receiver)[3:] == [
        [("group=etl", "repeat1", f"task:{first}#1"),
         ("group=etl", "repeat1", f"task:{second}#1")],
    ]  # fmt: skip
    clock.advance(100)  # T0 + 700: web's own repeat
    _round(app, clock)
    assert messages(receiver)[4:] == [[("group=web", "repeat1", f"task:{other}#1")]]
    clock.advance(499)  # T0 + 1199
    _round(app, clock)
    assert len(receiver.accepted) == 5  # nothing due: nothing told
    clock.advance(1)  # T0 + 1200: etl's next repeat, both again
    _round(app, clock)
    assert [t for _, t, _ in messages(receiver)[5]] == ["repeat2", "repeat2"]


def test_a_new_leader_keeps_the_groups_batch_times(
    alert_app: corral.App, clock: ManualClock, receiver: Receiver
) -> None:
    """The batch times are rows: a second evaluator (a leader taking over, or two at one moment)
    joins the waiting batch, or waits for group_interval, and never queues a batch twice."""
    app = alert_app
    app.alerts.rule("dead", "dead", channels="hook", group_by=("group",), group_wait=30,
                    group_interval=120)  # fmt: skip
    _die(app, T0, group="etl")
    app.alerts.evaluator().run(clock.now())
    clock.advance(10)
    _die(app, clock.now(), group="etl")
    first, second = app.alerts.evaluator(), app.alerts.evaluator()  # the old leader, the new
    first.run(clock.now())
    second.run(clock.now())
    clock.advance(20)
    app.alerts.sender().deliver_due(clock.now())
    app.alerts.sender().deliver_due(clock.now())
    assert [len(m) for m in messages(receiver)] == [2]  # one batch, once
    clock.advance(10)
    _die(app, clock.now(), group="etl")
    app.alerts.evaluator().run(clock.now())  # a new leader: group_interval after T0 + 30
    (pending,) = [n for n in app.store.alert_notifications(None, 10) if n.state == "pending"]
    assert pending.due_at == T0 + 150 and pending.group_key == "group=etl"


def test_group_key_of_the_labels() -> None:
    plain = make_rule("r", "dead", ["hook"])
    assert group_key(plain, "task:1#1", {"task": "job", "pool": "p"}) == ""
    by_two = make_rule("r", "dead", ["hook"], group_by=["pool", "task"])
    assert group_key(by_two, "task:1#1", {"task": "job", "pool": "p"}) == "pool=p,task=job"
    every = make_rule("r", "no_worker", ["hook"], group_by="...")
    assert group_key(every, "pool:p", {"pool": "p"}) == "pool:p"


def test_a_bad_group_by_names_the_rule_and_the_label(alert_app: corral.App) -> None:
    app = alert_app
    with pytest.raises(ConfigError, match=r"'slow'.*group_by.*wait_time.*'task'.*pool"):
        app.alerts.rule("slow", "wait_time", channels="hook", threshold="5m", group_by=("task",))
    with pytest.raises(ConfigError, match=r"'flaky'.*group_by.*by='task'.*'group'"):
        app.alerts.rule("flaky", "failures", channels="hook", group_by=["group"])
    with pytest.raises(ConfigError, match=r"'x'.*'\.\.\.'.*alone"):
        app.alerts.rule("x", "dead", channels="hook", group_by=("...", "pool"))
    with pytest.raises(ConfigError, match=r"'x'.*twice"):
        app.alerts.rule("x", "dead", channels="hook", group_by=("pool", "pool"))
    assert "slow" not in app.alerts.rules and "flaky" not in app.alerts.rules
    ok = app.alerts.rule("flaky", "failures", channels="hook", by="group", group_by="group")
    assert ok.group_by == ("group",)


def test_a_batch_time_stands_only_with_the_notices_it_times(alert_app: corral.App) -> None:
    """A leader that lost the race (its incident was opened by another) moves no batch time."""
    store, now = alert_app.store, T0
    notice = Notice("hook", "firing", "{}", now + 30)
    first = IncidentChange(OPEN, "dead", "task:1#1", notices=[notice], group_key="group=etl")
    store.alert_apply(AlertApply([first], now, {("dead", "group=etl"): now + 30}))
    late = IncidentChange(OPEN, "dead", "task:1#1", notices=[replace(notice, due_at=now + 31)],
                          group_key="group=etl")  # fmt: skip
    made = store.alert_apply(AlertApply([late], now + 1, {("dead", "group=etl"): now + 31}))
    assert made == [None]
    assert store.alert_flushes() == {("dead", "group=etl"): now + 30}
    assert [n.due_at for n in store.alert_notifications(None, 10)] == [now + 30]
    # a group with nothing open is closed only once its batch is not ahead
    resolve = IncidentChange(RESOLVE, "dead", "task:1#1", made_id(store), group_key="group=etl")
    store.alert_apply(AlertApply([resolve], now + 2, closed=[("dead", "group=etl")]))
    assert store.alert_flushes() == {("dead", "group=etl"): now + 30}
    store.alert_apply(AlertApply([], now + 30, closed=[("dead", "group=etl")]))
    assert store.alert_flushes() == {}


def made_id(store: Any) -> int:
    (inc,) = store.alert_open()
    return int(inc.id)
