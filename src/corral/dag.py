"""DAG checks for workflows: a cycle or a dependency on an unknown step is refused, and each step
gets its topological rank. Pure: no I/O, so it is property-tested on its own.

A workflow is given as `after[i]`: the steps that step `i` waits for. A step's rank is the length
of the longest path from it to a sink (a step nothing waits for has rank 0), so the steps on the
critical path rank highest and, within their group, are admitted first: the work that gates the
most of the rest starts as soon as it can.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any, TypeVar

from .errors import ConfigError

K = TypeVar("K", bound=Hashable)


class CycleError(ConfigError):
    """The steps of a workflow wait for each other in a loop; `cycle` lists one such loop."""

    def __init__(self, cycle: Sequence[Any]) -> None:
        self.cycle: list[Any] = list(cycle)
        path = " -> ".join(repr(step) for step in [*self.cycle, self.cycle[0]])
        super().__init__(f"the workflow has a cycle, so none of it can run: {path}")


def resolve(keys: Sequence[K], after: Mapping[K, Sequence[K]]) -> list[list[int]]:
    """`after` by step key -> by index into `keys`. Raises ConfigError naming a duplicate key or
    a key that no step has."""
    index: dict[K, int] = {}
    for i, key in enumerate(keys):
        if key in index:
            raise ConfigError(f"two steps of the workflow are named {key!r}")
        index[key] = i
    resolved: list[list[int]] = [[] for _ in keys]
    for key, upstream in after.items():
        if key not in index:
            raise ConfigError(f"the workflow has no step {key!r}")
        for dep in upstream:
            if dep not in index:
                raise ConfigError(f"step {key!r} waits for {dep!r}, which is not in the workflow")
            resolved[index[key]].append(index[dep])
    return resolved


def topological_order(after: Sequence[Sequence[int]]) -> list[int]:
    """The steps, each after every step it waits for. Raises CycleError (with one cycle, as
    indices) if there is none, and ConfigError for an index out of range."""
    n = len(after)
    waiting_on = [0] * n
    dependents: list[list[int]] = [[] for _ in range(n)]
    for step, upstream in enumerate(after):
        for dep in set(upstream):
            if not 0 <= dep < n:
                raise ConfigError(f"step {step} waits for step {dep}, which does not exist")
            waiting_on[step] += 1
            dependents[dep].append(step)
    order = [step for step in range(n) if waiting_on[step] == 0]
    for step in order:  # grows while we walk it (Kahn's algorithm)
        for child in dependents[step]:
            waiting_on[child] -= 1
            if waiting_on[child] == 0:
                order.append(child)
    if len(order) < n:
        raise CycleError(_find_cycle(after, {s for s in range(n) if waiting_on[s] > 0}))
    return order


def ranks(after: Sequence[Sequence[int]]) -> list[int]:
    """Each step's rank: the number of steps on the longest chain that waits for it (0 for a step
    nothing waits for). Raises like `topological_order`."""
    rank = [0] * len(after)
    for step in reversed(topological_order(after)):
        for dep in after[step]:
            rank[dep] = max(rank[dep], rank[step] + 1)
    return rank


def _find_cycle(after: Sequence[Sequence[int]], stuck: set[int]) -> list[int]:
    """One cycle among the `stuck` steps (those Kahn's algorithm could not order): walk from one
    of them to a stuck step it waits for until a step repeats. Each stuck step waits for at least
    one stuck step, so the walk never ends elsewhere."""
    step = min(stuck)
    seen: dict[int, int] = {}
    path: list[int] = []
    while step not in seen:
        seen[step] = len(path)
        path.append(step)
        step = min(dep for dep in after[step] if dep in stuck)
    # the walk went from dependent to dependency; a cycle reads in the order things run
    return list(reversed(path[seen[step] :]))


__all__ = ["CycleError", "ranks", "resolve", "topological_order"]
