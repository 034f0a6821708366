"""Workflows: a DAG of tasks submitted in one transaction.

```python
wf = app.workflow("nightly-db1", group="db1")
binlog = wf.add(load_binlog, "db1", exclusive=True)  # runs alone in its group, first
loads = [wf.add(load_table, t, after=[binlog]) for t in tables]
wf.add(report, after=loads, on_upstream_failure="run")
workflow_id = wf.submit()
```

Steps name what they wait for with the handles `add` returns, or with step keys (`step="x"`),
which may point forward, so a cycle can be written: `submit` refuses it, and a key no step has,
before anything is written. Each step gets its topological rank (the longest chain that waits
for it), so within the group the critical path is admitted first.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from . import dag, limits, tracing
from .errors import ConfigError, ConnectionLost
from .model import NewTask, NewWorkflow
from .store.contract import WorkflowInsertParams, join
from .submit_ids import repeatable, submit_id_for

if TYPE_CHECKING:
    from .app import App, Submission, TaskType


class Step:
    """A handle on one step of a workflow being built; after `submit`, `id` is its task id."""

    def __init__(self, workflow: Workflow, index: int, key: str) -> None:
        self.workflow = workflow
        self.index = index
        self.key = key

    @property
    def id(self) -> int:
        if self.workflow.ids is None:
            raise ConfigError(f"step {self.key!r} has no task id before the workflow is submitted")
        return self.workflow.ids[self.index]

    def __repr__(self) -> str:
        return f"Step({self.key!r})"


class Workflow:
    """A DAG being built; see the module's docstring. Made by `App.workflow`."""

    def __init__(self, app: App, name: str, group: str | None) -> None:
        if group is not None:
            limits.text("group", group)
        self.app = app
        self.name = name
        self.group = group or name
        self.id: int | None = None
        self.ids: list[int] | None = None
        """The task id of each step, in the order added, once submitted."""
        self._steps: list[Step] = []
        self._submissions: list[Submission] = []
        self._after: list[list[Step | str]] = []

    def add(
        self,
        task: TaskType[Any, Any] | str,
        *args: Any,
        after: Iterable[Step | str] = (),
        step: str | None = None,
        **options: Any,
    ) -> Step:
        """Add one step: `task` (a task type or its registered name) called with `args`. `after`:
        the steps it waits for (handles or step keys); `step`: its key (default "name#n").
        Other options as for `TaskType.submit` (priority, dedup_key, delay, depends_on on tasks
        already stored, exclusive, on_upstream_failure, and the handler's keyword arguments);
        the group is the workflow's."""
        if self.ids is not None:
            raise ConfigError(f"workflow {self.name!r} was submitted already")
        if "group" in options:
            raise ConfigError("a workflow's steps all take the workflow's group: drop group=")
        task_type = self.app.task_type(task) if isinstance(task, str) else task
        if task_type.app is not self.app:
            raise ConfigError(f"task {task_type.name!r} belongs to another app")
        key = f"{task_type.name}#{len(self._steps)}" if step is None else step
        if not isinstance(key, str) or not key:
            raise ConfigError(f"step must be a non-empty string, got {step!r}")
        if isinstance(after, Step | str):
            after = [after]
        upstream = list(after)
        for dep in upstream:
            if isinstance(dep, Step) and dep.workflow is not self:
                raise ConfigError(f"step {key!r} waits for {dep!r} of another workflow")
            if not isinstance(dep, Step | str):
                raise ConfigError(f"after takes steps or step keys, got {dep!r}")
        submission = task_type.prepare(*args, group=self.group, **options)
        handle = Step(self, len(self._steps), key)
        self._steps.append(handle)
        self._submissions.append(submission)
        self._after.append(upstream)
        return handle

    def submit(self, *, connection: Any = None, submit_id: str | None = None) -> int:
        """Check the DAG and store every step in one transaction; return the workflow's id.
        A cycle or a step waiting for one that doesn't exist raises ConfigError, and nothing is
        written. `connection`, `submit_id`: see `App.submit_many` (a workflow already stored
        under `submit_id` is returned, its steps' ids with it)."""
        workflow, tasks = self.prepare()
        sid = submit_id_for(submit_id, connection, self.app.store.replies_may_be_lost)
        names, groups = [t.name for t in tasks], [t.group for t in tasks]
        with tracing.sending(names, groups, workflow=self.name) as send:
            try:
                params = WorkflowInsertParams(workflow, send.stamp(tasks), self.app.clock.now(),
                                              join(connection), sid)  # fmt: skip
                stored = self.app.store.workflow_insert(params)
            except ConnectionLost as exc:
                raise repeatable(exc, sid) from None
            send.stored([t.id for t in stored.tasks])
        self.id = stored.id
        self.ids = [t.id for t in stored.tasks]
        return stored.id

    def prepare(self) -> tuple[NewWorkflow, list[NewTask]]:
        """Check the DAG and build the rows `submit` stores (a schedule's fire stores them with
        its own row); nothing is written."""
        if self.ids is not None:
            raise ConfigError(f"workflow {self.name!r} was submitted already")
        if not self._steps:
            raise ConfigError(f"workflow {self.name!r} has no steps")
        keys = [s.key for s in self._steps]
        named = {
            s.key: [d.key if isinstance(d, Step) else d for d in after]
            for s, after in zip(self._steps, self._after, strict=True)
        }
        after = dag.resolve(keys, named)
        try:
            ranks = dag.ranks(after)
        except dag.CycleError as exc:
            raise dag.CycleError([keys[i] for i in exc.cycle]) from None
        tasks = [
            replace(s.task, after=tuple(dict.fromkeys(a)), rank=r)
            for s, a, r in zip(self._submissions, after, ranks, strict=True)
        ]
        return NewWorkflow(self.name, self.group), tasks

    def __len__(self) -> int:
        return len(self._steps)
