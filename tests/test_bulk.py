"""Bulk cancel and retry by filter (corral.bulk and the store's task_cancel_many /
task_retry_many) on every backend: the preview's count and its refusals, execution in bounded
batches, a task that moved between the preview and its batch skipped and counted, nothing outside
the filter or newer than the preview changed, and a retry whose dedup key is taken skipped."""

from __future__ import annotations

import pytest
from conftest import T0, finish, start, submit

from corral.bulk import Bulk, BulkRefused
from corral.clock import ManualClock
from corral.lifecycle import State
from corral.read_model import TaskFilter
from corral.readside import ReadSide
from corral.store import Store
from corral.store.contract import BulkParams, CancelParams


def bulk(store: Store, **options: int) -> Bulk:
    return Bulk(ReadSide(store, ManualClock(T0 + 10)), **options)


def states(store: Store, ids: list[int]) -> dict[int, State]:
    return {i: store.task_states([i])[i] for i in ids}


def test_cancel_by_group_in_batches_touches_only_the_filter(store: Store) -> None:
    mine = [submit(store, group="g1") for _ in range(7)]
    other = [submit(store, group="g2") for _ in range(3)]
    b = bulk(store, batch=3)
    preview = b.preview("cancel", TaskFilter(group="g1"))
    assert preview.count == 7 and preview.high_water == max(mine)
    newer = submit(store, group="g1")  # after the preview: not part of it
    done = b.execute(preview)
    assert (done.changed, done.requested, done.skipped, done.batches) == (7, 0, 0, 3)
    assert set(states(store, mine).values()) == {State.CANCELLED}
    assert set(states(store, [*other, newer]).values()) == {State.READY}
    kinds = [e.kind for e in store.event_list(mine[0])]
    assert kinds[-1] == "cancelled"


def test_a_task_that_moved_since_the_preview_is_skipped_and_counted(store: Store) -> None:
    ids = [submit(store) for _ in range(4)]
    b = bulk(store)
    preview = b.preview("cancel", TaskFilter())
    assert preview.count == 4
    finish(store, start(store, ids[1], T0 + 1), State.SUCCEEDED, T0 + 2)  # ended meanwhile
    running = start(store, ids[2], T0 + 3)  # running: a cancel is a request
    done = b.execute(preview)
    assert (done.changed, done.requested, done.skipped) == (2, 1, 1)
    got = states(store, ids)
    assert got[ids[1]] == State.SUCCEEDED
    assert got[ids[2]] == State.RUNNING
    assert store.task_get(running.id).cancel_requested  # type: ignore[union-attr]
    assert got[ids[0]] == got[ids[3]] == State.CANCELLED


def test_the_batch_checks_each_state_inside_its_transaction(store: Store) -> None:
    a, b, c = submit(store), submit(store), submit(store)
    store.task_cancel(CancelParams(b, T0 + 1))
    params = BulkParams([a, b, c, 999_999], frozenset({State.READY}), T0 + 2)
    out = store.task_cancel_many(params)
    assert (out.changed, out.requested, out.skipped) == ([a, c], [], [b, 999_999])
    # a retry takes only the states it is given: c (cancelled) is not in them
    out = store.task_retry_many(BulkParams([a, b, c], frozenset({State.DEAD}), T0 + 3))
    assert (out.changed, out.skipped) == ([], [a, b, c])
    assert set(states(store, [a, b, c]).values()) == {State.CANCELLED}


def test_retry_by_state_and_a_taken_dedup_key_is_skipped(store: Store) -> None:
    first = submit(store, dedup_key="k")
    plain = submit(store)
    for i in (first, plain):
        store.task_cancel(CancelParams(i, T0 + 1))
    holder = submit(store, now=T0 + 2, dedup_key="k")  # holds "k" now
    b = bulk(store)
    preview = b.preview("retry", TaskFilter(states=(State.CANCELLED,)))
    assert preview.count == 2
    done = b.execute(preview)
    assert (done.changed, done.skipped) == (1, 1)
    got = states(store, [first, plain, holder])
    assert got == {first: State.CANCELLED, plain: State.READY, holder: State.READY}


def test_refusals_change_nothing(store: Store) -> None:
    ids = [submit(store, group="g") for _ in range(5)]
    b = bulk(store, max_matches=3)
    with pytest.raises(BulkRefused) as nothing:
        b.preview("cancel", TaskFilter(group="nobody"))
    assert nothing.value.field == "filter"
    with pytest.raises(BulkRefused) as large:
        b.preview("cancel", TaskFilter(group="g"))
    assert large.value.field == "allow_large" and "more than 3" in str(large.value)
    with pytest.raises(BulkRefused) as wrong:
        b.preview("retry", TaskFilter(states=(State.READY, State.RUNNING)))
    assert wrong.value.field == "states" and "can be retried" in str(wrong.value)
    with pytest.raises(BulkRefused) as action:
        b.preview("delete", TaskFilter())  # type: ignore[arg-type]
    assert action.value.field == "action"
    assert set(states(store, ids).values()) == {State.READY}
    assert b.preview("cancel", TaskFilter(group="g"), allow_large=True).count == 5
