"""The read side: what the CLI, the demo and the coming REST API and dashboard show, read from
the store's bounded reads (store/readside_contract.py). No read here scans all of history:

- `tasks()`: a page of a filtered task list, newest first, with keyset paging. The cursor is the
  last row's sort key and id, opaque to callers; rows added while a caller pages never shift a
  page (they sort before the first one). A page is one indexed query.
- `task()`: one task with its attempts, its events and its most recent log lines (paged).
- `groups()` / `pools()`: the figures of now: unfinished tasks by state (the (state, id) index
  over the unfinished states: the cost follows the backlog), caps, weights and shares, and queue
  waits over a recent window (the tasks that first started in the last `window` seconds, at most
  `sample` of them: an index on the first start).

Bad input (an unknown state, a cursor this module did not give, a limit out of range) is a
ConfigError naming the field, the same on both backends."""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace

from . import limits, scopes
from .clock import Clock
from .errors import ConfigError, TaskNotFound
from .lifecycle import State
from .model import DEFAULTS_GROUP, Event, GroupConfig, TaskRecord, WorkerRecord
from .read_model import (
    GroupFigures,
    Order,
    PageQuery,
    PoolFigures,
    RecentStart,
    StateCount,
    TaskDetail,
    TaskFilter,
    TaskPage,
    Waits,
    WorkflowGraph,
)
from .store import Store

MAX_PAGE = 1000
"""The most tasks (or log lines, or events) one page holds."""
DEFAULT_PAGE = 50
DEFAULT_LOGS = 100
WINDOW = 900.0
"""The recent window of the queue waits: 15 minutes."""
SAMPLE = 5000
"""At most this many of the latest starts are read for the waits."""
ORDERS: tuple[Order, ...] = ("created", "finished")
MAX_GRAPH = 10_000
"""The most tasks a workflow's graph reads."""


class ReadSide:
    """The read side over one store; `clock` gives the `now` that windows end at."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    # -- task lists ---------------------------------------------------------------------------
    def tasks(
        self,
        filter: TaskFilter | None = None,
        *,
        order: str = "created",
        after: str | None = None,
        limit: int = DEFAULT_PAGE,
    ) -> TaskPage:
        """A page of the tasks matching `filter`, newest first: by creation, or (`finished`)
        by when they ended (ended tasks only). `after`: the `next` cursor of the page before."""
        checked = check_filter(filter or TaskFilter())
        if order not in ORDERS:
            raise ConfigError(f"order must be one of {', '.join(ORDERS)}, got {order!r}")
        limit = _limit("limit", limit)
        key, last_id = decode_cursor(after, order) if after is not None else (None, None)
        query = PageQuery(checked, order, key, last_id, limit + 1)
        rows = self.store.task_page(query)
        page, more = rows[:limit], len(rows) > limit
        cursor = None
        if more and page:
            last = page[-1]
            cursor = encode_cursor(
                order, last.finished_at if order == "finished" else None, last.id
            )
        return TaskPage(page, cursor)

    # -- one task -----------------------------------------------------------------------------
    def task(self, task_id: int, *, logs: int = DEFAULT_LOGS, logs_before: str | None = None
             ) -> TaskDetail:  # fmt: skip
        """One task with its attempts, its events, its `logs` most recent log lines (before
        the `logs_before` cursor of an earlier detail) and its clean-ups; TaskNotFound if there
        is none."""
        limits.whole("task_id", task_id, 1, limits.ID_MAX)
        logs = _limit("logs", logs)
        before = decode_cursor(logs_before, "logs") if logs_before is not None else None
        record = self.store.task_get(task_id)
        if record is None:
            raise TaskNotFound(f"no task with id {task_id}")
        position = None if before is None else (int(before[0] or 0), before[1])
        lines = self.store.log_page(task_id, position, logs + 1)
        older = None
        if len(lines) > logs:
            lines = lines[:logs]
            older = encode_cursor("logs", lines[-1].line.attempt, lines[-1].id)
        return TaskDetail(
            record,
            self.store.attempt_list(task_id),
            self.store.event_list(task_id),
            [p.line for p in reversed(lines)],
            older,
            self.store.cleanup_list(task_id),
        )

    def events_after(self, after_id: int, limit: int = MAX_PAGE) -> list[Event]:
        """Events with an id above `after_id`, oldest first: the feed a live view follows."""
        limits.whole("after_id", after_id, 0, limits.ID_MAX)
        return self.store.event_fetch_after(after_id, _limit("limit", limit))

    def event_head(self) -> int:
        """The newest event's id (0: none yet): a live view reads `events_after` from it."""
        return self.store.event_head()

    def workflow(
        self, workflow_id: int, *, limit: int = MAX_PAGE, scope: tuple[str, ...] = ()
    ) -> WorkflowGraph:
        """A workflow's status, its newest `limit` tasks (of the groups `scope` sees; read in
        pages of MAX_PAGE) and the dependency edges among them; TaskNotFound if there is no
        such workflow."""
        limits.whole("workflow_id", workflow_id, 1, limits.ID_MAX)
        limits.whole("limit", limit, 1, MAX_GRAPH)
        status = self.store.workflow_get(workflow_id)
        if status is None:
            raise TaskNotFound(f"no workflow with id {workflow_id}")
        f = TaskFilter(workflow_id=workflow_id, scope=scope)
        tasks: list[TaskRecord] = []
        after: str | None = None
        while len(tasks) < limit:
            page = self.tasks(f, after=after, limit=min(MAX_PAGE, limit - len(tasks)))
            tasks += page.tasks
            after = page.next
            if after is None:
                break
        shown = {t.id for t in tasks}
        edges = [(t, d) for t, d in self.store.task_edges(sorted(shown)) if d in shown]
        return WorkflowGraph(status, tasks, edges, after is not None)

    # -- figures ------------------------------------------------------------------------------
    def groups(self, *, window: float = WINDOW, sample: int = SAMPLE) -> list[GroupFigures]:
        """Every group with unfinished tasks, a configured one, or one that started tasks in
        the window: its counts, settings, shares and recent waits, by name."""
        counts, starts = self._counts_and_starts(window, sample)
        configs = {c.name: c for c in self.store.group_list()}
        defaults = configs.pop(DEFAULTS_GROUP, GroupConfig(DEFAULTS_GROUP))
        by_group = _by_key(counts, lambda c: c.group)
        names = sorted(set(by_group) | set(configs) | {s.group for s in starts})
        config_of = {n: configs.get(n) or replace(defaults, name=n) for n in names}
        held = sum(_active(by_group.get(n, {})) for n in names)
        busy = {
            n for n in names if _active(by_group.get(n, {})) or by_group.get(n, {}).get("ready")
        }
        weights = sum(config_of[n].weight for n in busy)
        waits_of = _waits_by(starts, lambda s: s.group)
        return [
            GroupFigures(
                n,
                by_group.get(n, {}),
                config_of[n].max_parallel,
                config_of[n].weight,
                _spec(config_of[n]),
                _active(by_group.get(n, {})) / held if held else 0.0,
                config_of[n].weight / weights if n in busy and weights else 0.0,
                waits(waits_of.get(n, ())),
            )
            for n in names
        ]

    def busiest_groups(self, limit: int, *, window: float = WINDOW, sample: int = SAMPLE
                       ) -> list[GroupFigures]:  # fmt: skip
        """`busiest(self.groups())[:limit]`, read so that its cost does not follow the number
        of groups: the busiest groups' counts are ranked in the database, and the shares come
        from the totals of every group (the slots held, the weight of the groups with work)."""
        limit = _limit("limit", limit)
        since = self.clock.now() - limits.seconds("window", window)
        starts = self.store.task_recent_starts(since, limits.whole("sample", sample, 1, 100_000))
        configs = {c.name: c for c in self.store.group_list()}
        defaults = configs.pop(DEFAULTS_GROUP, GroupConfig(DEFAULTS_GROUP))
        top = self.store.task_busiest_groups(limit, defaults.weight)
        by_group = _by_key(top.groups, lambda c: c.group)
        # A group the database did not return ranks below all `limit` it did, so the top of
        # these and the groups without work (settings, recent starts) is the top of all.
        for n in (set(configs) | {s.group for s in starts}) - set(by_group):
            by_group[n] = {}
        shown = busiest_names(by_group)[:limit]
        waits_of = _waits_by(starts, lambda s: s.group)
        figures = []
        for n in shown:
            config = configs.get(n) or replace(defaults, name=n)
            counts = by_group.get(n, {})
            busy = bool(_active(counts) or counts.get("ready"))
            figures.append(GroupFigures(
                n, counts, config.max_parallel, config.weight, _spec(config),
                _active(counts) / top.held if top.held else 0.0,
                config.weight / top.busy_weight if busy and top.busy_weight else 0.0,
                waits(waits_of.get(n, ())),
            ))  # fmt: skip
        return figures

    def pools(self, *, window: float = WINDOW, sample: int = SAMPLE) -> list[PoolFigures]:
        """Every pool with unfinished tasks, live workers, or starts in the window."""
        counts, starts = self._counts_and_starts(window, sample)
        by_pool = _by_key(counts, lambda c: c.pool)
        workers = self.workers()
        names = sorted(
            set(by_pool) | {p for w in workers for p in w.pools} | {s.pool for s in starts}
        )
        waits_of = _waits_by(starts, lambda s: s.pool)
        return [
            PoolFigures(
                p,
                by_pool.get(p, {}),
                sum(p in w.pools for w in workers),
                sum(w.concurrency for w in workers if p in w.pools),
                waits(waits_of.get(p, ())),
            )
            for p in names
        ]

    def workers(self) -> list[WorkerRecord]:
        """The live workers."""
        return self.store.worker_list(self.clock.now())

    def unfinished(self) -> int:
        """How many tasks have not ended."""
        return sum(c.count for c in self.store.task_count_unfinished())

    def foreign_task(self, prefix: str) -> str | None:
        """A task type stored here whose name does not start with `prefix`, if there is one."""
        return self.store.task_name_outside(limits.text("prefix", prefix))

    def _counts_and_starts(self, window: float, sample: int
                           ) -> tuple[list[StateCount], list[RecentStart]]:  # fmt: skip
        limits.seconds("window", window)
        limits.whole("sample", sample, 1, 100_000)
        since = self.clock.now() - window
        return self.store.task_count_unfinished(), self.store.task_recent_starts(since, sample)


# -- rules (pure) -------------------------------------------------------------------------------


def check_filter(f: TaskFilter) -> TaskFilter:
    """The filter with its states as States; ConfigError naming the first bad field."""
    states = []
    for state in f.states:
        try:
            states.append(State(state))
        except ValueError:
            known = ", ".join(str(s) for s in State)
            raise ConfigError(f"states: unknown state {state!r} (one of {known})") from None
    for field in ("name", "group", "pool", "schedule"):
        value = getattr(f, field)
        if value is not None:
            limits.text(field, value)
    for entry in f.scope:
        scopes.check_entry(entry)
    if f.workflow_id is not None:
        limits.whole("workflow_id", f.workflow_id, 1, limits.ID_MAX)
    for field in ("created_from", "created_until", "finished_from", "finished_until"):
        value = getattr(f, field)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"{field} must be a UNIX time, got {value!r}")
            limits.unix_time(field, value)
    return replace(f, states=tuple(dict.fromkeys(states)))


def encode_cursor(kind: str, key: float | None, last_id: int) -> str:
    """An opaque cursor: the kind of list, the last row's sort key and id."""
    raw = json.dumps([kind, key, last_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, kind: str) -> tuple[float | None, int]:
    """(sort key, id) of a cursor `encode_cursor` gave for this kind of list; else ConfigError."""
    bad = ConfigError(f"after: {cursor!r} is not a cursor of this {kind} list (pass back `next`)")
    if not isinstance(cursor, str) or not 0 < len(cursor) <= 200:
        raise bad
    try:
        got = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error):
        raise bad from None
    if not (isinstance(got, list) and len(got) == 3 and got[0] == kind):
        raise bad
    key, last_id = got[1], got[2]
    if (
        isinstance(last_id, bool)
        or not isinstance(last_id, int)
        or not 0 < last_id <= limits.ID_MAX
    ):
        raise bad
    if key is not None and (isinstance(key, bool) or not isinstance(key, int | float)
                            or not math.isfinite(key)):  # fmt: skip
        raise bad
    return (None if key is None else float(key)), last_id


def waits(values: Sequence[float]) -> Waits:
    """Mean, 95th percentile, max and median (nearest rank) of queue waits."""
    if not values:
        return Waits(0, None, None, None)
    ordered = sorted(values)
    rank = max(1, math.ceil(0.95 * len(ordered)))
    median = ordered[max(1, math.ceil(0.5 * len(ordered))) - 1]
    return Waits(len(ordered), sum(ordered) / len(ordered), ordered[rank - 1], ordered[-1], median)


def _limit(field: str, value: int) -> int:
    return limits.whole(field, value, 1, MAX_PAGE)


def _spec(config: GroupConfig) -> str | None:
    return None if config.rate_limit is None else config.rate_limit.spec


def _active(counts: dict[str, int]) -> int:
    return counts.get(str(State.ADMITTED), 0) + counts.get(str(State.RUNNING), 0)


def _waits_by(starts: Iterable[RecentStart], key: Callable[[RecentStart], str]
              ) -> dict[str, list[float]]:  # fmt: skip
    """The recent waits by group (or pool): one pass over the starts, not one per group."""
    found: dict[str, list[float]] = {}
    for start in starts:
        found.setdefault(key(start), []).append(start.wait)
    return found


def busiest_names(by_group: dict[str, dict[str, int]]) -> list[str]:
    """Group names in `busiest` order, from their counts by state."""
    return sorted(by_group, key=lambda n: (-by_group[n].get("ready", 0), -_active(by_group[n]), n))


def busiest(groups: Iterable[GroupFigures]) -> list[GroupFigures]:
    """Groups by backlog: the most ready first, then the most held, then by name."""
    return sorted(groups, key=lambda g: (-g.ready, -g.active, g.group))


def _by_key(
    counts: Iterable[StateCount], key: Callable[[StateCount], str]
) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for c in counts:
        k = key(c)
        by_state = out.setdefault(k, {})
        by_state[str(c.state)] = by_state.get(str(c.state), 0) + c.count
    return out
