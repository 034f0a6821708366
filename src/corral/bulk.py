"""Bulk cancel and retry by filter: count first, then act in bounded batches.

A bulk action is two calls. `preview` counts the tasks a filter matches that the action can take
(a cancel: the unfinished ones; a retry: dead, cancelled, upstream_failed), refusing a filter
that matches nothing or more than `max_matches` (unless `allow_large`), and notes the newest
matching id: its high-water mark. `execute` then walks the same filter newest first, never
above that mark (a task submitted after the preview is not part of it), a page of `batch` ids at
a time, each page one store transaction (`task_cancel_many` / `task_retry_many`) that checks
every task's state again inside it. So a bulk of any size holds no long transaction, a task that
moved since the preview is skipped rather than forced, and nothing outside the filter changes.

The cost of a preview follows the tasks it counts (the read side's indexed pages, at most
`max_matches` + 1 of them without `allow_large`); an execution's, the tasks it acts on.

The faces (REST API, CLI) add what is theirs: who may ask, the confirmation that ties the
execution to its preview (corral.web.confirmations)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from . import limits
from .errors import ConfigError
from .lifecycle import RETRYABLE, TERMINAL, State
from .read_model import TaskFilter
from .readside import MAX_PAGE, ReadSide, encode_cursor
from .store import Store
from .store.contract import BulkOutcome, BulkParams

Action = Literal["cancel", "retry"]
BATCH = 500
"""Tasks acted on per transaction."""
MAX_MATCHES = 100_000
"""The most tasks a bulk action takes without `allow_large`."""
TAKES: dict[str, frozenset[State]] = {
    "cancel": frozenset(s for s in State if s not in TERMINAL),
    "retry": RETRYABLE,
}
"""The states each action can take a task from."""


class BulkRefused(ConfigError):
    """A bulk action refused before anything changed; `field` names the input at fault."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Preview:
    """What a bulk action would take: `count` tasks matching `filter` (narrowed to the states
    the action takes), none newer than the task `high_water`."""

    action: Action
    filter: TaskFilter
    count: int
    high_water: int


@dataclass(frozen=True)
class BulkDone:
    """What an execution did. `changed`: cancelled (or back to ready); `requested`: running
    tasks asked to stop; `skipped`: tasks of the preview that had left the filter or moved when
    their batch ran; `batches`: the transactions it took."""

    action: Action
    previewed: int
    changed: int
    requested: int
    skipped: int
    batches: int


class Bulk:
    """Bulk actions over one store, through its read side."""

    def __init__(
        self,
        reads: ReadSide,
        *,
        batch: int = BATCH,
        max_matches: int = MAX_MATCHES,
    ) -> None:
        self.reads = reads
        self.store: Store = reads.store
        self.batch = limits.whole("batch", batch, 1, MAX_PAGE)
        self.max_matches = limits.whole("max_matches", max_matches, 1)

    def narrowed(self, action: str, filter: TaskFilter) -> TaskFilter:
        """The filter with its states cut to those `action` takes (all of those if it names
        none); BulkRefused if none is left or the action is unknown."""
        if action not in TAKES:
            raise BulkRefused(f"action must be cancel or retry, got {action!r}", "action")
        takes = TAKES[action]
        states = tuple(s for s in State if s in takes and (not filter.states or s in filter.states))
        if not states:
            asked = ", ".join(str(s) for s in filter.states)
            can = ", ".join(str(s) for s in State if s in takes)
            raise BulkRefused(
                f"states: no task in {asked} can be {_done(action)} (only {can})", "states"
            )
        return replace(filter, states=states)

    def preview(self, action: Action, filter: TaskFilter, *, allow_large: bool = False) -> Preview:
        """Count what `action` would take; BulkRefused if that is nothing, or more than
        `max_matches` without `allow_large` (counting stops there)."""
        narrowed = self.narrowed(action, filter)
        count, high_water, after = 0, 0, None
        while True:
            page = self.reads.tasks(narrowed, after=after, limit=MAX_PAGE)
            if page.tasks and not high_water:
                high_water = page.tasks[0].id
            count += len(page.tasks)
            if not allow_large and count > self.max_matches:
                raise BulkRefused(
                    f"the filter matches more than {self.max_matches:,} tasks to "
                    f"{action}: narrow it, or pass allow_large",
                    "allow_large",
                )
            after = page.next
            if after is None:
                break
        if count == 0:
            raise BulkRefused(f"the filter matches no task that can be {_done(action)}", "filter")
        return Preview(action, narrowed, count, high_water)

    def execute(self, preview: Preview) -> BulkDone:
        """Act on the preview's tasks, a batch a transaction, newest first; each task's state
        is checked again in its batch's transaction."""
        states = frozenset(preview.filter.states)
        store = self.store
        act = store.task_cancel_many if preview.action == "cancel" else store.task_retry_many
        after: str | None = encode_cursor("created", None, preview.high_water + 1)
        found = changed = requested = skipped = batches = 0
        while after is not None:
            page = self.reads.tasks(preview.filter, after=after, limit=self.batch)
            if not page.tasks:
                break
            ids = [t.id for t in page.tasks]
            outcome: BulkOutcome = act(BulkParams(ids, states, self.reads.clock.now()))
            found += len(ids)
            changed += len(outcome.changed)
            requested += len(outcome.requested)
            skipped += len(outcome.skipped)
            batches += 1
            after = page.next
        skipped += max(0, preview.count - found)
        return BulkDone(preview.action, preview.count, changed, requested, skipped, batches)


def _done(action: str) -> str:
    return "cancelled" if action == "cancel" else "retried"
