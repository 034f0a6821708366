"""The records that cross the store contract. Plain frozen dataclasses; payloads travel as JSON
text, encoded and decoded by the app, so a store never imports user code."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .isolation import QUARANTINE_AFTER
from .lifecycle import TERMINAL, Outcome, State
from .ratelimit import RateLimit

DEFAULT_GROUP = "default"
DEFAULT_POOL = "default"
DEFAULTS_GROUP = "*"
"""The group settings row that holds the defaults of groups never configured."""


@dataclass(frozen=True)
class NewTask:
    """One task to insert. `depends_on` lists task ids that must succeed first."""

    name: str
    pool: str
    group: str
    priority: int
    level: int
    aging: str  # JSON of the ageing function
    args: str  # JSON array
    kwargs: str  # JSON object
    max_retries: int
    backoff: str  # JSON of the Backoff
    max_runtime: float | None
    on_timeout: str
    run_at: float | None = None
    dedup_key: str | None = None
    depends_on: tuple[int, ...] = ()
    promote_at: float | None = None
    rank: int = 0
    """Within its group, a higher rank is admitted first (a DAG's topological rank)."""
    exclusive: bool = False
    """Runs alone in its group: admitted only when nothing else of the group holds a slot."""
    rate_key: str | None = None
    """A named rate limit the task draws on, besides its group's."""
    after: tuple[int, ...] = ()
    """Positions, in the same batch, of the tasks this one depends on (a workflow's edges)."""
    on_upstream_failure: str = "fail"
    """'fail': a dependency that ends dead or cancelled makes this task upstream_failed; 'run':
    it runs once every dependency ended, however."""
    workflow_id: int | None = None
    trace_context: str | None = None
    """The W3C trace context of the submit's span (JSON), when tracing is on."""
    quarantine_after: int = QUARANTINE_AFTER
    """Crashes of its worker while it runs alone before it is quarantined (see isolation)."""
    cleanup: bool = False
    """Its type has a clean-up (on_cleanup): a lost attempt leaves a clean-up row that holds
    the next attempt until it ended (see corral.worker.cleanups)."""
    logical_time: float | None = None
    """The logical time of the schedule's fire (or backfill) that made it (UTC, UNIX seconds)."""
    data_start: float | None = None
    """The start of that fire's data interval; it ends at `logical_time`."""
    schedule_name: str | None = None
    """The schedule whose fire (or backfill) made it: written with the row, so a fire's tasks
    are never updated after their insert to say so."""


NEW_TASK_FIELDS = frozenset(NewTask.__dataclass_fields__)


def new_task(values: dict[str, Any]) -> NewTask:
    """A NewTask from a dict of every one of its fields (NEW_TASK_FIELDS), without the frozen
    dataclass's `__init__`: that sets each of its 27 fields with `object.__setattr__`, a quarter
    of what preparing a task cost. The caller names every field (a test holds `prepare` to it)."""
    task = object.__new__(NewTask)
    object.__setattr__(task, "__dict__", values)
    return task


@dataclass(frozen=True)
class Submitted:
    id: int
    created: bool
    """False when the dedup key matched a task that is not finished: `id` is that task."""


@dataclass(frozen=True)
class TaskRecord:
    id: int
    name: str
    pool: str
    group: str
    state: State
    priority: int
    level: int
    args: str
    kwargs: str
    dedup_key: str | None
    attempt: int
    failures: int
    max_retries: int
    max_runtime: float | None
    on_timeout: str
    created_at: float
    enqueued_at: float
    run_at: float | None
    ready_at: float | None
    first_started_at: float | None
    started_at: float | None
    finished_at: float | None
    worker_id: str | None
    cancel_requested: bool
    checkpoint: str | None
    shared: str | None
    result: str | None
    error: str | None
    rank: int
    exclusive: bool
    rate_key: str | None
    workflow_id: int | None = None
    on_upstream_failure: str = "fail"
    stalled_slices: int = 0
    """Consecutive time slices that ended with the checkpoint unchanged."""
    suspect: bool = False
    """Lost while its worker ran other tasks: it runs alone (see corral.isolation)."""
    isolated_crashes: int = 0
    """Its attempts lost while it ran alone."""
    quarantine_after: int = QUARANTINE_AFTER
    depends_on: tuple[int, ...] = ()

    @property
    def wait_seconds(self) -> float | None:
        """From the moment it could first run (its delay over, its dependencies done) to its
        first start."""
        if self.first_started_at is None:
            return None
        return self.first_started_at - self.enqueued_at


@dataclass(frozen=True)
class ClaimedTask:
    """A task a worker now runs: everything it needs to call the handler and decide the outcome."""

    id: int
    name: str
    group: str
    attempt: int
    failures: int
    max_retries: int
    backoff: str
    max_runtime: float | None
    on_timeout: str
    args: str
    kwargs: str
    dedup_key: str | None
    checkpoint: str | None
    shared: str | None
    stalled_slices: int = 0
    """Consecutive slices so far that ended with the checkpoint unchanged."""
    isolated: bool = False
    """A suspect, claimed alone: its worker claims nothing else while it runs."""
    logical_time: float | None = None
    data_start: float | None = None
    pool: str = DEFAULT_POOL
    ready_at: float | None = None
    """When it last became ready (store clock): its wait ends when it starts."""
    trace_context: str | None = None
    """The W3C trace context its submit stored (JSON), or None."""
    workflow_id: int | None = None


@dataclass(frozen=True)
class AttemptReport:
    """The end of one attempt, to record with a compare-and-set on (id, attempt, running)."""

    task_id: int
    attempt: int
    outcome: Outcome
    target: State
    counts_as_failure: bool = False
    worker_id: str | None = None
    """When set, the report is refused unless this worker still holds the task."""
    result: str | None = None
    error: str | None = None
    traceback: str | None = None
    retry_at: float | None = None
    stalled_slices: int | None = None
    """A time slice: the task's count of unchanged-checkpoint slices from now on (None: keep)."""
    flag: str | None = None
    """An extra event kind to record with the transition (`stalled`, `suspect`,
    `quarantined`), its detail the error."""
    suspect: bool | None = None
    """The task's suspect mark from now on (None: keep)."""
    isolated_crashes: int | None = None
    """The task's count of isolated crashes from now on (None: keep)."""
    cleanup: str | None = None
    """The attempt ended badly and its type has a clean-up: the reason (corral.cleanup), for a
    clean-up row written with the report. A retry_wait target is then held (run_at NULL) until
    the clean-up ended; `retry_at` is when it is due after that."""


@dataclass(frozen=True)
class ExpiredTask:
    id: int
    attempt: int
    failures: int
    max_retries: int
    on_timeout: str
    cancel_requested: bool
    worker_id: str | None
    isolated: bool = False
    """The lost attempt ran alone on its worker."""
    isolated_crashes: int = 0
    quarantine_after: int = QUARANTINE_AFTER
    cleanup: bool = False
    """Its type has a clean-up: the lost attempt leaves a clean-up row."""
    name: str = ""
    """Its task type (the lost attempts are counted by it)."""


@dataclass(frozen=True)
class Promotable:
    id: int
    name: str
    priority: int
    level: int
    aging: str
    ready_at: float


@dataclass(frozen=True)
class LevelChange:
    id: int
    level: int
    promote_at: float | None


@dataclass(frozen=True)
class ReadyTask:
    """A ready task as the dispatcher sees it."""

    id: int
    pool: str
    group: str
    level: int
    ready_at: float
    rank: int = 0
    exclusive: bool = False
    rate_key: str | None = None


@dataclass(frozen=True)
class GroupConfig:
    name: str
    max_parallel: int | None = None
    weight: float = 1.0
    rate_limit: RateLimit | None = None


@dataclass(frozen=True)
class Bucket:
    """A token bucket as it stood at `updated_at`, with the rate it refills at."""

    key: str
    tokens: float
    updated_at: float
    per_second: float
    burst: float


@dataclass(frozen=True)
class DispatchLoad:
    """What holds slots now: live capacity per pool, slots held per pool and group, the groups an
    exclusive task holds, the settings of the groups that hold slots (plus the defaults), and
    the groups an operator paused."""

    capacity: dict[str, int]
    active_by_pool: dict[str, int]
    active_by_group: dict[str, int]
    exclusive_groups: frozenset[str]
    groups: dict[str, GroupConfig]
    defaults: GroupConfig
    paused_groups: frozenset[str] = frozenset()


@dataclass(frozen=True)
class HeadsWanted:
    """For one pool: the best `groups` groups by their head (level, then age), and about `tasks`
    of their ready tasks in all, shared evenly between them (at least one each)."""

    pool: str
    groups: int
    tasks: int


@dataclass(frozen=True)
class DispatchHeads:
    """The first ready tasks of the best groups of some pools, with what the policy needs about
    them: `more` names the (pool, group)s that have ready tasks beyond those read."""

    ready: list[ReadyTask]
    more: frozenset[tuple[str, str]]
    groups: dict[str, GroupConfig]
    buckets: dict[str, Bucket]
    rate_limits: dict[str, RateLimit]


@dataclass(frozen=True)
class DispatchSnapshot:
    """What the admission policy decides from: capacity and slots held per pool and group, the
    group settings (`defaults` for groups never configured), the first ready tasks of the
    groups that may get a slot, the token buckets and named rate limits they draw on."""

    capacity: dict[str, int]
    active_by_pool: dict[str, int]
    active_by_group: dict[str, int]
    groups: dict[str, GroupConfig]
    ready: list[ReadyTask] = field(default_factory=list)
    defaults: GroupConfig = field(default_factory=lambda: GroupConfig(DEFAULTS_GROUP))
    exclusive_groups: frozenset[str] = frozenset()
    more: frozenset[tuple[str, str]] = frozenset()
    buckets: dict[str, Bucket] = field(default_factory=dict)
    rate_limits: dict[str, RateLimit] = field(default_factory=dict)
    paused_groups: frozenset[str] = frozenset()
    """Groups an operator paused: none of their tasks is admitted."""


@dataclass(frozen=True)
class WorkerInfo:
    id: str
    hostname: str
    pid: int
    pools: tuple[str, ...]
    concurrency: int


@dataclass(frozen=True)
class WorkerRecord:
    id: str
    hostname: str
    pid: int
    pools: tuple[str, ...]
    concurrency: int
    started_at: float
    heartbeat_at: float
    lease_expires_at: float
    running: int


@dataclass(frozen=True)
class Event:
    id: int
    task_id: int
    at: float
    kind: str
    from_state: str | None
    to_state: str | None
    attempt: int
    detail: str | None


@dataclass(frozen=True)
class AttemptRecord:
    task_id: int
    attempt: int
    worker_id: str | None
    started_at: float
    finished_at: float | None
    outcome: str | None
    error: str | None
    traceback: str | None
    isolated: bool = False
    """It ran alone on its worker (a suspect)."""


@dataclass(frozen=True)
class LogLine:
    task_id: int
    attempt: int
    at: float
    level: int
    message: str


@dataclass(frozen=True)
class TaskQuery:
    states: tuple[State, ...] = ()
    group: str | None = None
    name: str | None = None
    limit: int = 100
    ids: tuple[int, ...] = ()


# -- workflows and event consumers ----------------------------------------------------------------


@dataclass(frozen=True)
class NewWorkflow:
    name: str
    group: str


@dataclass(frozen=True)
class WorkflowSubmitted:
    id: int
    tasks: list[Submitted]


@dataclass(frozen=True)
class WorkflowStatus:
    """A workflow as a whole: its tasks counted by state, with those its steps were
    deduplicated onto."""

    id: int
    name: str
    group: str
    created_at: float
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def finished(self) -> int:
        return sum(n for s, n in self.counts.items() if State(s) in TERMINAL)

    @property
    def state(self) -> str:
        """`succeeded` when every task did; `failed` once all ended and one is dead or
        upstream_failed; `cancelled` once all ended and one was cancelled (none failed);
        `running` while a task is admitted, running or retrying; else `waiting`."""
        if self.finished < self.total:
            busy = ("admitted", "running", "retry_wait", "succeeded", "dead", "cancelled")
            return "running" if any(self.counts.get(s) for s in busy) else "waiting"
        if self.counts.get("dead") or self.counts.get("upstream_failed"):
            return "failed"
        if self.counts.get("cancelled"):
            return "cancelled"
        return "succeeded"


@dataclass(frozen=True)
class FeedEvent:
    """An event as an event consumer sees it: with its task's name, group and workflow, and
    where it stands in the feed (`xid`: 0 on SQLite, the writing transaction on PostgreSQL)."""

    event: Event
    task_name: str | None
    group: str | None
    workflow_id: int | None
    xid: int = 0


@dataclass(frozen=True)
class ConsumerRecord:
    """An event consumer's stored row: who holds its lease until when, and its cursor (the
    (xid, id) of the last event it went past; xid is 0 on SQLite)."""

    name: str
    holder: str | None
    lease_expires_at: float
    cursor: tuple[int, int]

    def held(self, now: float) -> bool:
        """Whether a process holds its lease at `now`."""
        return self.holder is not None and self.lease_expires_at >= now


@dataclass(frozen=True)
class ClaimedCleanup:
    """A clean-up a worker now runs (corral.cleanup): the failed attempt, why it ended, what it
    recorded in `shared`, and the task's payload for the context."""

    id: int
    task_id: int
    task_name: str
    attempt: int
    reason: str
    shared: str | None
    tries: int
    """Tries so far, this one included."""
    group: str
    args: str
    kwargs: str
    dedup_key: str | None


@dataclass(frozen=True)
class CleanupRecord:
    """One attempt's clean-up as `corral status TASK` shows it."""

    id: int
    task_id: int
    attempt: int
    reason: str
    state: str
    """pending, running, succeeded or failed."""
    tries: int
    next_try_at: float | None
    holder: str | None
    created_at: float
    finished_at: float | None
    last_error: str | None
