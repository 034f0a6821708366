"""The transitions decided once (corral.moves) follow the lifecycle table. Pure: no store."""

from __future__ import annotations

import itertools

import pytest
from conftest import new_task

from corral import moves
from corral.errors import TransitionRefused
from corral.lifecycle import ALLOWED, CANCELLABLE_AT_ONCE, RETRYABLE, TERMINAL, State
from corral.model import AttemptReport, Submitted

NAMED = [m for m in vars(moves).values() if isinstance(m, moves.Move)]


def test_every_named_move_is_in_the_lifecycle_table() -> None:
    assert len(NAMED) >= 6
    for named in NAMED:
        assert named.target is None or named.target in ALLOWED[named.source], named


def test_a_move_outside_the_table_cannot_be_made() -> None:
    with pytest.raises(ValueError, match="ALLOWED"):
        moves.Move("ready", State.SUCCEEDED, State.READY)
    with pytest.raises(TransitionRefused, match="from waiting to running"):
        moves.move(State.WAITING, State.RUNNING)


def test_the_sets_the_stores_consult_are_read_from_the_table() -> None:
    assert {s for s in TERMINAL if State.READY in ALLOWED[s]} == RETRYABLE
    assert {State.DEAD, State.CANCELLED, State.UPSTREAM_FAILED} == RETRYABLE
    assert {State.WAITING, State.READY, State.ADMITTED, State.RETRY_WAIT} == CANCELLABLE_AT_ONCE
    assert moves.TERMINAL_SQL == "('succeeded', 'dead', 'cancelled', 'upstream_failed')"
    assert moves.sql_states([State.READY, State.WAITING]) == "('waiting', 'ready')"


@pytest.mark.parametrize("state", list(State))
def test_cancel_plan_for_every_state(state: State) -> None:
    if state in TERMINAL:
        with pytest.raises(TransitionRefused, match="already ended"):
            moves.plan_cancel(7, state, 1, 5.0)
        return
    plan = moves.plan_cancel(7, state, 2, 5.0)
    assert plan.before == state
    if state == State.RUNNING:
        assert plan.after is None
        assert plan.event == (7, 5.0, "cancel_requested", "running", None, 2, None)
    else:
        assert plan.after == State.CANCELLED and State.CANCELLED in ALLOWED[state]
        assert plan.event == (7, 5.0, "cancelled", str(state), "cancelled", 2, None)


@pytest.mark.parametrize("state", list(State))
def test_retry_plan_for_every_state(state: State) -> None:
    if state not in RETRYABLE:
        with pytest.raises(TransitionRefused, match="only dead, cancelled or upstream_failed"):
            moves.plan_retry(7, state, 1, 5.0)
        return
    event = moves.plan_retry(7, state, 3, 5.0)
    assert event == (7, 5.0, "ready", str(state), "ready", 3, moves.RETRIED)


def test_completion_events_write_the_flag_then_the_move() -> None:
    report = AttemptReport(4, 2, "stalled", State.DEAD, error="stuck", flag="stalled")
    flag, end = moves.completion_events(report, 9.0)
    assert flag[:6] == (4, 9.0, "stalled", "running", None, 2)
    assert end[:6] == (4, 9.0, "dead", "running", "dead", 2)
    with pytest.raises(TransitionRefused):
        moves.check_completions([AttemptReport(4, 2, "succeeded", State.WAITING)])


def test_ids_are_planned_once_for_a_batch_with_dedup_keys() -> None:
    tasks = [new_task(dedup_key="a"), new_task(), new_task(dedup_key="a"), new_task(dedup_key="b")]
    planned = moves.plan_ids(tasks, {"b": 3}, itertools.count(10))
    assert planned == [
        Submitted(10, created=True),
        Submitted(11, created=True),
        Submitted(10, created=False),
        Submitted(3, created=False),
    ]
