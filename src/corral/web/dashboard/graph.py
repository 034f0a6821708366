"""A workflow's DAG laid out for an inline SVG, layered by depth (pure: no I/O, no JS library).

A task's depth is the length of its longest chain of dependencies among the tasks shown (a root
is at depth 0); the layers run left to right. Within a layer the tasks are ordered by the mean
position of their dependencies in the layers before (the barycentre: it untangles most edges
of a pipeline's fan-out and fan-in), ties by id. The cost is linear in the tasks and edges shown,
which the read side bounds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ...model import TaskRecord

NODE_W, NODE_H = 170, 38
GAP_X, GAP_Y = 70, 18
PAD = 12


@dataclass(frozen=True)
class Node:
    id: int
    label: str
    state: str
    depth: int
    x: int
    y: int


@dataclass(frozen=True)
class Edge:
    """From the dependency (x1, y1) to the task that waits for it (x2, y2)."""

    source: int
    target: int
    x1: int
    y1: int
    x2: int
    y2: int

    @property
    def path(self) -> str:
        """A cubic curve leaving the dependency's right side and entering the task's left."""
        bend = (self.x2 - self.x1) // 2
        return (
            f"M{self.x1},{self.y1} C{self.x1 + bend},{self.y1} "
            f"{self.x2 - bend},{self.y2} {self.x2},{self.y2}"
        )


@dataclass(frozen=True)
class Layout:
    nodes: list[Node]
    edges: list[Edge]
    width: int
    height: int


def depths(ids: Sequence[int], edges: Sequence[tuple[int, int]]) -> dict[int, int]:
    """Each task's longest chain of dependencies among `ids` (edges: (task, its dependency));
    a task on a cycle (which corral's DAG checks forbid) or unreachable stays at depth 0."""
    shown = set(ids)
    deps: dict[int, list[int]] = {i: [] for i in ids}
    waiting: dict[int, list[int]] = {i: [] for i in ids}
    for task, dep in edges:
        if task in shown and dep in shown and task != dep:
            deps[task].append(dep)
            waiting[dep].append(task)
    left = {i: len(deps[i]) for i in ids}
    depth = dict.fromkeys(ids, 0)
    ready = sorted(i for i in ids if left[i] == 0)
    while ready:
        current = ready.pop()
        for task in waiting[current]:
            depth[task] = max(depth[task], depth[current] + 1)
            left[task] -= 1
            if left[task] == 0:
                ready.append(task)
    return depth


def layout(tasks: Sequence[TaskRecord], edges: Sequence[tuple[int, int]]) -> Layout:
    """Positions for every task and edge: layers by depth, barycentre order within a layer."""
    by_id = {t.id: t for t in tasks}
    depth = depths(list(by_id), edges)
    deps: dict[int, list[int]] = {i: [] for i in by_id}
    for task, dep in edges:
        if task in by_id and dep in by_id:
            deps[task].append(dep)
    layers: dict[int, list[int]] = {}
    for task_id in sorted(by_id):
        layers.setdefault(depth[task_id], []).append(task_id)
    row: dict[int, float] = {}
    for d in sorted(layers):
        members = layers[d]

        def centre(task_id: int) -> tuple[float, int]:
            placed = [row[p] for p in deps[task_id] if p in row]
            return (sum(placed) / len(placed) if placed else float("inf"), task_id)

        if d > 0:
            members.sort(key=centre)
        for index, task_id in enumerate(members):
            row[task_id] = float(index)
    nodes = {
        i: Node(
            i,
            f"{by_id[i].name} #{i}",
            str(by_id[i].state),
            depth[i],
            PAD + depth[i] * (NODE_W + GAP_X),
            PAD + int(row[i]) * (NODE_H + GAP_Y),
        )
        for i in by_id
    }
    drawn = [
        Edge(dep, task, nodes[dep].x + NODE_W, nodes[dep].y + NODE_H // 2,
             nodes[task].x, nodes[task].y + NODE_H // 2)
        for task, dep in edges
        if task in nodes and dep in nodes
    ]  # fmt: skip
    columns = max(layers, default=0) + 1
    tallest = max((len(m) for m in layers.values()), default=0)
    width = 2 * PAD + columns * NODE_W + (columns - 1) * GAP_X
    height = 2 * PAD + tallest * NODE_H + max(0, tallest - 1) * GAP_Y
    return Layout(sorted(nodes.values(), key=lambda n: n.id), drawn, width, height)
