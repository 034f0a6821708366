"""The admission policy on its own: a pure function from a snapshot to decisions, checked with
hypothesis against the architecture's invariants 3 (caps), 4 (fair share, work conservation,
levels first) and 5 (no starvation), plus rate limits, exclusive tasks and `explain`."""

from __future__ import annotations

import itertools
import math
from collections import Counter
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from corral import aging
from corral.admission import admissible, decide, explain, in_order
from corral.model import Bucket, DispatchSnapshot, GroupConfig, ReadyTask
from corral.ratelimit import parse

POOL = "p"


def tasks_of(
    group: str, count: int, level: int = 0, start: int = 0, t0: float = 0.0
) -> list[ReadyTask]:
    return [ReadyTask(start + i, POOL, group, level, t0 + i) for i in range(count)]


def snapshot(
    ready: list[ReadyTask],
    slots: int,
    held: dict[str, int] | None = None,
    groups: dict[str, GroupConfig] | None = None,
    **extra: object,
) -> DispatchSnapshot:
    held = held or {}
    return DispatchSnapshot(
        capacity={POOL: slots + sum(held.values())},
        active_by_pool={POOL: sum(held.values())},
        active_by_group=held,
        groups=groups or {},
        ready=ready,
        **extra,  # type: ignore[arg-type]
    )


@st.composite
def contended(draw: st.DrawFn) -> tuple[DispatchSnapshot, dict[str, int]]:
    """Groups with random backlogs, levels, caps, weights and slots already held."""
    n_groups = draw(st.integers(1, 8))
    ready: list[ReadyTask] = []
    groups: dict[str, GroupConfig] = {}
    held: dict[str, int] = {}
    ids = itertools.count()
    for g in range(n_groups):
        name = f"g{g}"
        for _ in range(draw(st.integers(0, 12))):
            level = draw(st.integers(0, 3))
            ready.append(ReadyTask(next(ids), POOL, name, level, draw(st.floats(0, 100))))
        cap = draw(st.one_of(st.none(), st.integers(1, 6)))
        weight = draw(st.sampled_from([0.5, 1.0, 1.0, 2.0, 3.0]))
        groups[name] = GroupConfig(name, cap, weight)
        held[name] = draw(st.integers(0, 3))
    slots = draw(st.integers(0, 30))
    return snapshot(ready, slots, held, groups), held


@settings(max_examples=300, deadline=None)
@given(contended())
def test_caps_are_never_exceeded(case: tuple[DispatchSnapshot, dict[str, int]]) -> None:
    snap, held = case
    admitted = Counter(d.group for d in decide(snap).decisions)
    for group, config in snap.groups.items():
        if config.max_parallel is not None:
            assert held[group] + admitted[group] <= max(config.max_parallel, held[group])


@settings(max_examples=300, deadline=None)
@given(contended())
def test_work_conserving_and_no_group_could_be_better_served(
    case: tuple[DispatchSnapshot, dict[str, int]],
) -> None:
    """Slots left free means every group with tasks left is at its cap; and no admitted slot of a
    group at the same level could go to a group holding fewer per weight that was left out."""
    snap, held = case
    decisions = decide(snap).decisions
    free = snap.capacity[POOL] - snap.active_by_pool[POOL]
    admitted = Counter(d.group for d in decisions)
    waiting = Counter(t.group for t in snap.ready) - admitted
    assert len(decisions) <= free
    if len(decisions) < free:
        for group in waiting:
            cap = snap.groups[group].max_parallel
            assert cap is not None and held[group] + admitted[group] >= cap


@settings(max_examples=300, deadline=None)
@given(contended())
def test_levels_first_and_each_group_in_its_own_order(
    case: tuple[DispatchSnapshot, dict[str, int]],
) -> None:
    snap, held = case
    decisions = decide(snap).decisions
    chosen = {d.task_id for d in decisions}
    by_group: dict[str, list[ReadyTask]] = {}
    for task in snap.ready:
        by_group.setdefault(task.group, []).append(task)
    for tasks in by_group.values():
        ordered = in_order(tasks)
        taken = [t.id for t in ordered if t.id in chosen]
        assert taken == [t.id for t in ordered[: len(taken)]]  # a prefix of its own order
    lowest_admitted = min((d.level for d in decisions), default=None)
    for group, tasks in by_group.items():
        left = [t for t in tasks if t.id not in chosen]
        cap = snap.groups[group].max_parallel
        count = held[group] + sum(1 for d in decisions if d.group == group)
        if left and (cap is None or count < cap) and lowest_admitted is not None:
            # an uncapped group's task left behind is never above a level that got a slot
            assert max(t.level for t in left) <= lowest_admitted


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 12), st.integers(1, 60), st.integers(0, 4))
def test_equal_groups_share_within_one_slot(groups: int, slots: int, level: int) -> None:
    """Invariant 4: G backlogged groups of equal weight at one level get floor or ceil of S/G."""
    ready = [t for g in range(groups) for t in tasks_of(f"g{g}", 80, level, start=g * 1000)]
    counts = Counter(d.group for d in decide(snapshot(ready, slots)).decisions)
    assert sum(counts.values()) == slots
    for g in range(groups):
        assert counts[f"g{g}"] in (slots // groups, math.ceil(slots / groups))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([1.0, 2.0, 3.0]), min_size=2, max_size=5), st.integers(6, 60))
def test_weights_scale_the_shares(weights: list[float], slots: int) -> None:
    groups = {f"g{i}": GroupConfig(f"g{i}", None, w) for i, w in enumerate(weights)}
    ready = [t for i in range(len(weights)) for t in tasks_of(f"g{i}", 100, start=i * 1000)]
    counts = Counter(d.group for d in decide(snapshot(ready, slots, groups=groups)).decisions)
    total = sum(weights)
    for i, w in enumerate(weights):
        fair = slots * w / total
        assert abs(counts[f"g{i}"] - fair) <= max(weights) / min(weights) + 1


def test_a_lone_group_scales_up_to_its_cap_and_shares_what_it_cannot_use() -> None:
    ready = tasks_of("big", 100) + tasks_of("small", 2, start=500)
    groups = {"big": GroupConfig("big", max_parallel=7)}
    counts = Counter(d.group for d in decide(snapshot(ready, 20, groups=groups)).decisions)
    assert counts == {"big": 7, "small": 2}
    alone = Counter(d.group for d in decide(snapshot(tasks_of("big", 100), 20)).decisions)
    assert alone == {"big": 20}


def test_small_pipelines_are_not_stuck_behind_a_big_one_submitted_first() -> None:
    big = tasks_of("big", 1500)
    small = [t for g in range(30) for t in tasks_of(f"s{g}", 3, start=10_000 + g * 10, t0=2000)]
    counts = Counter(d.group for d in decide(snapshot(big + small, 32)).decisions)
    assert all(counts[f"s{g}"] == 1 for g in range(30))
    assert counts["big"] == 2


def test_higher_level_first_across_groups() -> None:
    ready = tasks_of("low", 10, level=1) + tasks_of("high", 3, level=5, start=100)
    decisions = decide(snapshot(ready, 5)).decisions
    assert [d.group for d in decisions] == ["high"] * 3 + ["low"] * 2


def test_defaults_apply_to_groups_never_configured() -> None:
    ready = tasks_of("a", 10) + tasks_of("b", 10, start=100)
    snap = snapshot(ready, 10, groups={"b": GroupConfig("b", 5)},
                    defaults=GroupConfig("*", max_parallel=2))  # fmt: skip
    assert Counter(d.group for d in decide(snap).decisions) == {"a": 2, "b": 5}


def test_an_exclusive_task_runs_alone_in_its_group() -> None:
    head = ReadyTask(1, POOL, "db", 0, 0.0, rank=9, exclusive=True)
    loads = [ReadyTask(i, POOL, "db", 0, float(i)) for i in range(2, 8)]
    other = tasks_of("other", 3, start=100)
    decisions = decide(snapshot([head, *loads, *other], 10)).decisions
    assert [d.task_id for d in decisions if d.group == "db"] == [1]  # alone, first (rank 9)
    # while a task of its group holds a slot, it waits, and its group waits with it
    waiting = decide(snapshot([head, *loads], 10, held={"db": 1})).decisions
    assert waiting == []
    # and while it runs, nothing else of the group is admitted
    running = decide(snapshot(loads, 10, held={"db": 1}, exclusive_groups=frozenset({"db"})))
    assert running.decisions == []


def test_higher_rank_first_within_a_group() -> None:
    ready = [ReadyTask(i, POOL, "g", 0, float(i), rank=r) for i, r in enumerate([0, 3, 1, 3])]
    assert [d.task_id for d in decide(snapshot(ready, 4)).decisions] == [1, 3, 2, 0]


def test_a_group_whose_unread_tasks_may_win_stops_the_round() -> None:
    """Only two of group a's tasks were read: after them, its next one may outrank b's."""
    ready = tasks_of("a", 2, level=3) + tasks_of("b", 5, level=1, start=100)
    snap = snapshot(ready, 6, more=frozenset({(POOL, "a")}))
    assert [d.group for d in decide(snap).decisions] == ["a", "a"]
    snap = snapshot(ready, 6)  # nothing unread: b takes the rest
    assert Counter(d.group for d in decide(snap).decisions) == {"a": 2, "b": 4}


# -- rate limits ----------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(
    st.integers(1, 20),
    st.sampled_from(["second", "minute"]),
    st.integers(1, 5),
    st.lists(st.floats(0.01, 5.0), min_size=1, max_size=40),
)
def test_a_rate_limit_is_never_exceeded(
    count: int, unit: str, burst: int, gaps: list[float]
) -> None:
    """Rounds at random moments, each with plenty of slots: in any window of t seconds at most
    burst + rate * t admissions draw on the bucket; the buckets carry over between rounds."""
    rate = parse(f"{count}/{unit}", burst)
    groups = {"api": GroupConfig("api", rate_limit=rate)}
    buckets: dict[str, Bucket] = {}
    admitted_at: list[float] = []
    now, ids = 1000.0, itertools.count()
    for gap in gaps:
        now += gap
        ready = [ReadyTask(next(ids), POOL, "api", 0, now) for _ in range(30)]
        result = decide(snapshot(ready, 30, groups=groups, buckets=dict(buckets)), now)
        admitted_at += [now] * len(result.decisions)
        buckets.update({b.key: b for b in result.buckets})
    for i, start in enumerate(admitted_at):
        for j in range(i, len(admitted_at)):
            window = admitted_at[j] - start
            assert j - i + 1 <= burst + rate.per_second * window + 1e-9


def test_a_named_rate_limit_is_shared_across_groups_and_passed_over() -> None:
    limited = [ReadyTask(i, POOL, f"g{i}", 0, float(i), rate_key="crm") for i in range(5)]
    free = ReadyTask(10, POOL, "g0", 0, 10.0)
    snap = snapshot([*limited, free], 10, rate_limits={"crm": parse("1/minute", burst=2)})
    decision = decide(snap, now=0.0)
    assert sorted(d.task_id for d in decision.decisions) == [0, 1, 10]
    assert [(b.key, b.tokens) for b in decision.buckets] == [("key:crm", 0.0)]


def test_malformed_rates_are_refused() -> None:
    import pytest

    from corral import ConfigError

    for bad in ("100/fortnight", "fast", "0/minute", "-1/s", "10/"):
        with pytest.raises(ConfigError, match="rate limit"):
            parse(bad)


# -- no starvation ---------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 10), st.integers(1, 8), st.booleans())
def test_ageing_bounds_the_wait_of_a_low_priority_task(
    every: int, high: int, same_group: bool
) -> None:
    """One slot; each second the running task ends and a new high-priority task arrives, so
    high-priority work saturates the pool. The low task (priority 0, +1 level every `every` s up to
    `high`) starts once ageing has lifted it to the top level: within high * every + 1 seconds."""
    ageing = aging.step(every=every, cap=high)
    low = ReadyTask(0, POOL, "lo" if not same_group else "hi", 0, 0.0)
    queue = [ReadyTask(i, POOL, "hi", high, 0.0) for i in range(1, 4)]
    ids = itertools.count(100)
    for second in range(0, high * every + 2):
        now = float(second)
        low_now = ReadyTask(low.id, POOL, low.group, ageing.level(0, now), 0.0)
        decision = decide(snapshot([low_now, *queue], 1), now)
        (admitted,) = decision.decisions
        if admitted.task_id == low.id:
            assert second <= high * every + 1
            return
        queue = [t for t in queue if t.id != admitted.task_id]
        queue.append(ReadyTask(next(ids), POOL, "hi", high, now))
    raise AssertionError("the low-priority task starved")


def test_explain_names_what_holds_a_task_back() -> None:
    task = ReadyTask(1, POOL, "g", 0, 0.0, rate_key="crm")
    snap = DispatchSnapshot(
        capacity={POOL: 4},
        active_by_pool={POOL: 4},
        active_by_group={"g": 2},
        groups={"g": GroupConfig("g", max_parallel=2, rate_limit=parse("1/hour"))},
        buckets={"group:g": Bucket("group:g", 0.0, 0.0, 1 / 3600, 1.0)},
    )
    codes = [r.code for r in explain(snap, task, ahead=3, now=60.0)]
    assert codes == ["pool_full", "group_cap", "rate_limit", "rate_key_unknown", "higher_level"]
    nobody = DispatchSnapshot(capacity={}, active_by_pool={}, active_by_group={}, groups={})
    assert [r.code for r in explain(nobody, ReadyTask(2, "gpu", "g", 0, 0.0))] == ["no_worker"]


@settings(max_examples=300, deadline=None)
@given(contended(), st.data())
def test_a_paused_group_gets_nothing_and_its_share_goes_to_the_others(
    case: tuple[DispatchSnapshot, dict[str, int]], data: st.DataObject
) -> None:
    """Pausing a group is as if its ready tasks were gone: none admitted, and the other groups
    get exactly what they would without it (caps, levels and fair share as ever)."""
    snap, _ = case
    paused = frozenset(data.draw(st.sets(st.sampled_from(sorted(snap.groups)))))
    decisions = decide(replace(snap, paused_groups=paused)).decisions
    assert not any(d.group in paused for d in decisions)
    without = replace(snap, ready=[t for t in snap.ready if t.group not in paused])
    assert decisions == decide(without).decisions


def test_a_paused_group_asks_for_no_worker_and_explains_itself() -> None:
    snap = snapshot(tasks_of("big", 3) + tasks_of("small", 2, start=10), slots=0)
    counts = {(POOL, "big"): 1000, (POOL, "small"): 2}
    assert admissible(snap, counts) == {POOL: 1002}
    paused = replace(snap, paused_groups=frozenset({"big"}))
    assert admissible(paused, counts) == {POOL: 2}
    codes = [r.code for r in explain(paused, tasks_of("big", 1)[0])]
    assert codes == ["no_worker", "group_paused"]  # no slot at all, and paused
