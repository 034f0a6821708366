"""The admission policy: which ready tasks enter their pool now. Pure: a snapshot in, decisions
out, so it is property-tested on its own, and it can say why a task was not admitted.

Per pool, while it has a free slot: take the highest level that has an eligible task; among the
groups with a task at that level, the one holding the fewest slots per unit of weight (ties: the
one whose head waited longest); that group's first task in its own order (level, then rank, then
age). Each admission counts at once against its group and its token buckets, so shares stay
within one slot of fair and caps and rate limits hold within the round.

Eligible: the group is under its cap, holds no exclusive task, and has a token in its own bucket;
the task has a token in its named bucket (else the group's next task is considered), and an
exclusive task needs its group to hold no slot at all (until then it blocks its group, so it is
not overtaken forever).

The snapshot holds, per group, only the first few ready tasks (`more` marks groups that have
others). When such a group runs out of known tasks while it could still win a slot, the pool's
round stops there rather than guess: the next round reads on.
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from .model import Bucket, DispatchSnapshot, GroupConfig, ReadyTask
from .ratelimit import RateLimit, buckets_of, group_bucket, key_bucket


@dataclass(frozen=True)
class Decision:
    task_id: int
    pool: str
    group: str
    level: int


@dataclass(frozen=True)
class Admission:
    decisions: list[Decision]
    """The tasks to admit, in admission (= claim) order."""
    buckets: list[Bucket] = field(default_factory=list)
    """The token buckets these admissions drew on, as they stand after them."""

    @property
    def task_ids(self) -> list[int]:
        return [d.task_id for d in self.decisions]


def free_slots(
    capacity: dict[str, int],
    active_by_pool: dict[str, int],
    prefetch: int = 0,
    prefetch_ratio: float = 0.0,
) -> dict[str, int]:
    """Slots each pool can take now: live capacity plus a prefetch (`prefetch` tasks, or
    `prefetch_ratio` times the capacity if more), less what it holds. The prefetch keeps
    workers from idling between rounds; it is bounded, since an admitted task has its place."""
    return {
        pool: max(
            0,
            slots + max(prefetch, math.ceil(slots * prefetch_ratio)) - active_by_pool.get(pool, 0),
        )
        for pool, slots in capacity.items()
    }


def config_of(snapshot: DispatchSnapshot, group: str) -> GroupConfig:
    """A group's settings: its own, else the defaults of groups never configured."""
    return snapshot.groups.get(group) or snapshot.defaults


def at_cap(config: GroupConfig | None, held: int) -> bool:
    return config is not None and config.max_parallel is not None and held >= config.max_parallel


def in_order(tasks: list[ReadyTask]) -> list[ReadyTask]:
    """A group's ready tasks in the order it admits them: level, then rank, then age."""
    return sorted(tasks, key=lambda t: (-t.level, -t.rank, t.ready_at, t.id))


class _Tokens:
    """The token buckets during one round: refilled to `now` on first use, debited per
    admission."""

    def __init__(self, snapshot: DispatchSnapshot, now: float) -> None:
        self._snapshot = snapshot
        self._now = now
        self._tokens: dict[str, float] = {}
        self._rates: dict[str, RateLimit] = {}
        self._drawn: set[str] = set()
        self._unlimited: set[str] = set()

    def rate_of(self, key: str) -> RateLimit | None:
        kind, _, name = key.partition(":")
        if kind == "group":
            return config_of(self._snapshot, name).rate_limit
        return self._snapshot.rate_limits.get(name)

    def level(self, key: str) -> float | None:
        """Tokens in the bucket now; None if the key has no rate limit."""
        if key in self._tokens:
            return self._tokens[key]
        if key in self._unlimited:
            return None
        rate = self.rate_of(key)
        if rate is None:
            self._unlimited.add(key)  # asked for again at each of its group's candidates
            return None
        bucket = self._snapshot.buckets.get(key)
        tokens = (
            rate.burst
            if bucket is None
            else rate.refill(bucket.tokens, bucket.updated_at, self._now)
        )
        self._tokens[key] = tokens
        self._rates[key] = rate
        return tokens

    def has(self, key: str) -> bool:
        tokens = self.level(key)
        return tokens is None or tokens >= 1.0

    def take(self, key: str, count: int = 1) -> None:
        if self.level(key) is not None:
            self._tokens[key] -= float(count)
            self._drawn.add(key)

    def drawn(self) -> list[Bucket]:
        """The buckets drawn on this round, as they stand now."""
        return [
            Bucket(key, self._tokens[key], self._now, self._rates[key].per_second,
                   self._rates[key].burst)
            for key in sorted(self._drawn)
        ]  # fmt: skip


class _Round:
    """The state of one dispatch round: slots held per group, exclusive holders, tokens."""

    def __init__(self, snapshot: DispatchSnapshot, now: float) -> None:
        self.snapshot = snapshot
        self.held: dict[str, int] = dict(snapshot.active_by_group)
        self.exclusive: set[str] = set(snapshot.exclusive_groups)
        self.tokens = _Tokens(snapshot, now)

    def group_blocked(self, group: str) -> bool:
        """The group can't take a slot now, whatever its tasks."""
        held = self.held.get(group, 0)
        return (
            group in self.snapshot.paused_groups
            or group in self.exclusive
            or at_cap(config_of(self.snapshot, group), held)
            or not self.tokens.has(group_bucket(group))
        )

    def candidate(self, queue: list[ReadyTask]) -> tuple[int, ReadyTask | None]:
        """The group's next admissible task: (its index in `queue`, it), or (-1, None). One
        whose named bucket is empty is passed over; an exclusive one waits for its group to
        drain, and blocks the group meanwhile."""
        for index, task in enumerate(queue):
            if task.exclusive and self.held.get(task.group, 0) > 0:
                return -1, None
            if task.rate_key is None or self.tokens.has(key_bucket(task.rate_key)):
                return index, task
        return -1, None

    def admit(self, task: ReadyTask, count: int = 1) -> None:
        """Count `count` admissions of tasks like `task` against its group and buckets."""
        self.held[task.group] = self.held.get(task.group, 0) + count
        if task.exclusive:
            self.exclusive.add(task.group)
        for key in buckets_of(task.group, task.rate_key):
            self.tokens.take(key, count)

    def room(self, task: ReadyTask, want: int) -> int:
        """How many tasks like `task` its group could take at once now, at most `want`: the
        same checks as `group_blocked` and `candidate`, counted rather than tried one by one."""
        if self.group_blocked(task.group):
            return 0
        held = self.held.get(task.group, 0)
        if task.exclusive:
            return min(want, 1) if held == 0 else 0
        cap = config_of(self.snapshot, task.group).max_parallel
        if cap is not None:
            want = min(want, cap - held)
        for key in buckets_of(task.group, task.rate_key):
            tokens = self.tokens.level(key)
            if tokens is not None:
                want = min(want, math.floor(tokens))
        return max(0, want)


Key = tuple[float, ...]
Ordering = Callable[[ReadyTask, ReadyTask, float], Key]
"""(a group's candidate task, the group's head, its slots held per weight) -> its place: the
group with the smallest key gets the next slot."""


def fair(task: ReadyTask, head: ReadyTask, share: float) -> Key:
    """corral's policy: the highest level; then the group holding the fewest slots per weight;
    then the group whose head waited longest."""
    return (-task.level, share, head.ready_at, head.id)


def strict_priority(task: ReadyTask, head: ReadyTask, share: float) -> Key:
    """A baseline for benchmarks: the highest level, then the oldest; groups don't count."""
    return (-task.level, head.ready_at, head.id)


def fifo(task: ReadyTask, head: ReadyTask, share: float) -> Key:
    """A baseline for benchmarks: the oldest first; levels and groups don't count."""
    return (head.ready_at, head.id)


POLICIES: dict[str, Ordering] = {"fair": fair, "priority": strict_priority, "fifo": fifo}
"""Caps, exclusive tasks and rate limits hold under each; only the order differs."""


def decide(
    snapshot: DispatchSnapshot,
    now: float = 0.0,
    prefetch: int = 0,
    prefetch_ratio: float = 0.0,
    ordering: Ordering = fair,
) -> Admission:
    """The tasks to admit now, in admission order, and the buckets they drew on."""
    state = _Round(snapshot, now)
    slots_of = free_slots(snapshot.capacity, snapshot.active_by_pool, prefetch, prefetch_ratio)
    decisions = _admit(snapshot.ready, slots_of, state, ordering)
    return Admission(decisions, state.tokens.drawn())


def _admit(
    ready: list[ReadyTask], slots_of: dict[str, int], state: _Round, ordering: Ordering
) -> list[Decision]:
    """One round: fill each pool's slots from its ready tasks, pool by pool."""
    by_pool: dict[str, dict[str, list[ReadyTask]]] = defaultdict(lambda: defaultdict(list))
    for task in ready:
        by_pool[task.pool][task.group].append(task)
    decisions: list[Decision] = []
    for pool, slots in slots_of.items():
        if slots and by_pool.get(pool):
            decisions.extend(_fill_pool(pool, slots, by_pool[pool], state, ordering))
    return decisions


def _fill_pool(
    pool: str,
    slots: int,
    groups: dict[str, list[ReadyTask]],
    state: _Round,
    ordering: Ordering,
) -> list[Decision]:
    """Admit up to `slots` tasks of one pool. A heap holds each group under the key of its
    current candidate. A key can only worsen while other groups are admitted (shared tokens run
    out), so a popped key is checked again."""
    queues = {group: in_order(tasks) for group, tasks in groups.items()}
    lasts = {group: queue[-1] for group, queue in queues.items()}
    heap: list[tuple[Key, str]] = []

    def key_of(group: str) -> Key | None:
        """The group's place in the heap; None if it can take nothing this round."""
        if state.group_blocked(group):
            return None
        share = state.held.get(group, 0) / config_of(state.snapshot, group).weight
        queue = queues[group]
        if not queue:
            if (pool, group) not in state.snapshot.more:
                return None
            # Its next tasks are unread: one may stand at the level of its last one, so it may
            # win against everything that ranks below that (ties included).
            unread = replace(lasts[group], ready_at=-math.inf)
            return ordering(unread, unread, share)
        _, task = state.candidate(queue)
        if task is None:
            return None
        return ordering(task, queue[0], share)

    def push(group: str) -> None:
        key = key_of(group)
        if key is not None:
            heapq.heappush(heap, (key, group))

    for group in queues:
        push(group)
    decisions: list[Decision] = []
    while heap and len(decisions) < slots:
        key, group = heapq.heappop(heap)
        current = key_of(group)
        if current is None:
            continue
        if current != key:
            heapq.heappush(heap, (current, group))
            continue
        if not queues[group]:
            break  # an unread task of this group may come first: the next round reads on
        index, task = state.candidate(queues[group])
        assert task is not None
        queues[group].pop(index)
        state.admit(task)
        decisions.append(Decision(task.id, pool, group, task.level))
        push(group)
    return decisions


def admissible(
    snapshot: DispatchSnapshot, ready: Mapping[tuple[str, str], int], now: float = 0.0
) -> dict[str, int]:
    """How many more tasks each pool could admit now if it had unlimited slots (the autoscaling
    signal); `ready` counts each (pool, group)'s ready tasks. The tasks the snapshot holds go
    through `decide`'s own round with a slot for each, pools in the capacity's order (caps,
    exclusive tasks, token buckets, and who gets a shared token first, all as the dispatcher
    would). A group's
    tasks beyond those read are then counted in bulk, taken to be like the last one read (as
    `decide` does), or plain (no named rate limit, not exclusive) if none was read, within its
    cap and tokens. Its cost follows the groups with ready tasks, never the number of tasks."""
    state = _Round(replace(snapshot, more=frozenset()), now)
    pools = {task.pool for task in snapshot.ready}
    order = [p for p in snapshot.capacity if p in pools] + sorted(pools - set(snapshot.capacity))
    decisions = _admit(snapshot.ready, {p: len(snapshot.ready) for p in order}, state, fair)
    out: dict[str, int] = defaultdict(int, {p: 0 for p, _ in ready})
    admitted: dict[tuple[str, str], int] = defaultdict(int)
    for d in decisions:
        out[d.pool] += 1
        admitted[(d.pool, d.group)] += 1
    known: dict[tuple[str, str], list[ReadyTask]] = defaultdict(list)
    for task in snapshot.ready:
        known[(task.pool, task.group)].append(task)
    for (pool, group), count in sorted(ready.items()):
        tasks = known.get((pool, group), [])
        if admitted[(pool, group)] < len(tasks) or count <= len(tasks):
            continue  # it stopped before its known tasks ran out, or it has no others
        config = config_of(snapshot, group)
        if (
            not tasks
            and config.max_parallel is None
            and config.rate_limit is None
            and (group not in state.exclusive)
            and group not in snapshot.paused_groups
        ):
            out[pool] += count  # plain tasks of a group nothing bounds: room() says so too
            continue
        model = in_order(tasks)[-1] if tasks else ReadyTask(0, pool, group, 0, 0.0)
        extra = state.room(model, count - len(tasks))
        if extra:
            state.admit(model, extra)
            out[pool] += extra
    return dict(out)


@dataclass(frozen=True)
class Reason:
    """One thing that holds a ready task back, in words for `corral why`."""

    code: str
    text: str


def explain(
    snapshot: DispatchSnapshot, task: ReadyTask, ahead: int = 0, now: float = 0.0
) -> list[Reason]:
    """Why `task` (ready) is not admitted now: what the policy would check, in words. `ahead`
    counts the ready tasks of its pool at a higher level (read by the caller)."""
    reasons: list[Reason] = []
    state = _Round(snapshot, now)
    config = config_of(snapshot, task.group)
    held = snapshot.active_by_group.get(task.group, 0)
    if snapshot.capacity.get(task.pool, 0) == 0:
        reasons.append(
            Reason("no_worker", f"no live worker serves pool {task.pool!r}: start one with "
                   f"`corral worker --pool {task.pool}`")
        )  # fmt: skip
    elif free_slots(snapshot.capacity, snapshot.active_by_pool).get(task.pool, 0) == 0:
        reasons.append(
            Reason("pool_full", f"pool {task.pool!r} is full: "
                   f"{snapshot.active_by_pool.get(task.pool, 0)} tasks hold its "
                   f"{snapshot.capacity[task.pool]} slots")
        )  # fmt: skip
    if task.group in snapshot.paused_groups:
        reasons.append(
            Reason("group_paused", f"group {task.group!r} is paused: nothing of it is admitted "
                   f"until `corral groups resume {task.group}`")
        )  # fmt: skip
    if at_cap(config, held):
        reasons.append(
            Reason("group_cap", f"group {task.group!r} is at its cap: {held} of "
                   f"max_parallel={config.max_parallel} running or admitted")
        )  # fmt: skip
    if task.group in snapshot.exclusive_groups:
        reasons.append(
            Reason("exclusive_running", f"an exclusive task of group {task.group!r} runs: "
                   "the group waits until it ends")
        )  # fmt: skip
    if task.exclusive and held > 0:
        reasons.append(
            Reason("exclusive_waits", f"the task is exclusive: it waits until the {held} "
                   f"tasks of group {task.group!r} that hold slots end")
        )  # fmt: skip
    for key in buckets_of(task.group, task.rate_key):
        tokens = state.tokens.level(key)
        rate = state.tokens.rate_of(key)
        if tokens is not None and rate is not None and tokens < 1.0:
            reasons.append(
                Reason("rate_limit", f"rate limit {key} ({rate.spec}) has no token: the next "
                       f"one comes in {rate.next_token_in(tokens):.1f}s")
            )  # fmt: skip
    if task.rate_key is not None and task.rate_key not in snapshot.rate_limits:
        reasons.append(
            Reason("rate_key_unknown", f"warning: rate limit key {task.rate_key!r} is not "
                   "configured, so it limits nothing (app.rate_limits.configure)")
        )  # fmt: skip
    if ahead:
        reasons.append(
            Reason("higher_level", f"{ahead} ready tasks of pool {task.pool!r} stand at a "
                   f"higher level than this one ({task.level})")
        )  # fmt: skip
    return reasons


__all__ = [
    "POLICIES",
    "Admission",
    "Decision",
    "Reason",
    "admissible",
    "at_cap",
    "config_of",
    "decide",
    "explain",
    "fair",
    "fifo",
    "free_slots",
    "in_order",
    "strict_priority",
]
