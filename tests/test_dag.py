"""The pure DAG checks: orders, ranks and cycles, property-tested."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral.dag import CycleError, ranks, resolve, topological_order
from corral.errors import ConfigError


@st.composite
def dags(draw: st.DrawFn, max_size: int = 40) -> list[list[int]]:
    """A random DAG as `after` lists: edges only point to lower numbers, then the numbering is
    shuffled so that the order of the input says nothing."""
    n = draw(st.integers(0, max_size))
    edges = [
        sorted(draw(st.sets(st.integers(0, i - 1), max_size=4))) if i else [] for i in range(n)
    ]
    perm = draw(st.permutations(range(n)))
    after: list[list[int]] = [[] for _ in range(n)]
    for i, deps in enumerate(edges):
        after[perm[i]] = [perm[d] for d in deps]
    return after


@st.composite
def cyclic(draw: st.DrawFn) -> list[list[int]]:
    """A DAG plus a back edge that closes a loop (possibly a self-loop)."""
    after = draw(dags(max_size=30).filter(lambda a: len(a) > 0))
    order = topological_order(after)
    i = draw(st.integers(0, len(order) - 1))
    j = draw(st.integers(i, len(order) - 1))
    # order[j] runs after order[i] (or is it): making order[i] wait for order[j] closes a loop
    # as soon as a path runs from order[i] to order[j]; ensure one by adding it too.
    if i != j:
        after[order[j]] = sorted({*after[order[j]], order[i]})
    after[order[i]] = sorted({*after[order[i]], order[j]})
    return after


@given(dags())
def test_topological_order_puts_every_step_after_what_it_waits_for(after: list[list[int]]) -> None:
    order = topological_order(after)
    assert sorted(order) == list(range(len(after)))
    position = {step: p for p, step in enumerate(order)}
    for step, deps in enumerate(after):
        for dep in deps:
            assert position[dep] < position[step]


@given(dags())
def test_rank_is_the_longest_chain_that_waits_for_a_step(after: list[list[int]]) -> None:
    rank = ranks(after)
    dependents: dict[int, list[int]] = {i: [] for i in range(len(after))}
    for step, deps in enumerate(after):
        for dep in deps:
            dependents[dep].append(step)
    for step in range(len(after)):
        below = [rank[d] + 1 for d in dependents[step]]
        assert rank[step] == max(below, default=0)  # sinks 0; one more than its deepest waiter
        for dep in after[step]:
            assert rank[dep] > rank[step]  # what a step waits for ranks higher: it goes first


@given(cyclic())
def test_a_cycle_is_refused_and_named(after: list[list[int]]) -> None:
    with pytest.raises(CycleError) as info:
        topological_order(after)
    cycle = info.value.cycle
    assert cycle, "the error names a cycle"
    assert len(set(cycle)) == len(cycle)
    for a, b in zip(cycle, [*cycle[1:], cycle[0]], strict=True):
        assert a in after[b], f"{b} must wait for {a} in the cycle {cycle}"
    with pytest.raises(CycleError):
        ranks(after)
    assert "cycle" in str(info.value)


def test_a_chain_ranks_by_distance_to_its_end() -> None:
    assert ranks([[], [0], [1], [2]]) == [3, 2, 1, 0]
    assert ranks([[], [0], [0], [1, 2]]) == [2, 1, 1, 0]
    assert ranks([]) == []


def test_a_long_chain_needs_no_recursion() -> None:
    n = 20_000
    assert ranks([[i - 1] if i else [] for i in range(n)])[0] == n - 1


def test_resolve_names_what_is_wrong() -> None:
    assert resolve(["a", "b"], {"b": ["a"]}) == [[], [0]]
    with pytest.raises(ConfigError, match="'c', which is not in the workflow"):
        resolve(["a", "b"], {"b": ["c"]})
    with pytest.raises(ConfigError, match="two steps of the workflow are named 'a'"):
        resolve(["a", "a"], {})
    with pytest.raises(ConfigError, match="no step 'x'"):
        resolve(["a"], {"x": ["a"]})
    with pytest.raises(ConfigError, match="does not exist"):
        topological_order([[3]])


def test_cycle_message_reads_in_run_order() -> None:
    with pytest.raises(CycleError) as info:
        topological_order([[2], [0], [1]])  # 0 waits for 2, 1 for 0, 2 for 1
    cycle = info.value.cycle
    start = cycle.index(0)
    assert cycle[start:] + cycle[:start] == [0, 1, 2]
    for edge in ("0 -> 1", "1 -> 2", "2 -> 0"):
        assert edge in str(info.value)
