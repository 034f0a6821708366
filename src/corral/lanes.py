"""The fast lane: when a pool has free slots and nothing ready, a single submit need not wait for
a scheduling round. Pure rules; the leader's dispatcher and the stores apply them.

At the end of its round the leader opens a lane in each pool that it left with free slots and no
ready task it could see: half those slots (rounded up), for `TTL` seconds. A single submit whose
task nothing bounds takes a slot of its pool's lane in its own write and is admitted there, and
its pool's workers are told at once. The leader closes every lane before it reads the load of
its next round (`FastLanes.lane_close`), so it counts each slot taken as held and never hands it
out twice: the pool's slots hold. Caps, rate limits, pauses and exclusive steps hold because a
task under any of them never takes the lane (`takes_lane`, and the stores' checks of the
group's settings, pause and exclusive tasks in the same write). Fairness holds because a lane
opens only where every ready task the leader saw was admitted: with nothing waiting, the leader
would admit the new task at once too; as soon as one task is left ready, its submit wakes the
leader, whose next round closes the lanes and decides as always. Half the slots, not all: a
burst from one group leaves slots for the leader to share.

Not in the lane: a task with a delay, dependencies, a dedup key, a named rate limit or the
exclusive flag, a batch (`submit_many`, workflows), and a submit in the caller's transaction."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .model import DispatchSnapshot, HeadsWanted, NewTask

TTL = 1.0
"""Seconds a lane stays open without the leader renewing it (an idle leader runs a round every
half second): a leader that died leaves nothing open for long, and a new one closes every lane
first."""


def takes_lane(task: NewTask, state: str) -> bool:
    """Whether a task may take a lane slot, from what it carries: it starts ready, and neither a
    dedup key nor a named rate limit nor the exclusive flag asks for the leader's check. Its
    group's cap, rate limit, pause and exclusive tasks are the store's to check, in the write."""
    return (
        state == "ready"
        and task.dedup_key is None
        and task.rate_key is None
        and not task.exclusive
        and not task.depends_on
    )


def lanes_to_open(
    free: Mapping[str, int],
    wants: Iterable[HeadsWanted],
    snapshot: DispatchSnapshot,
    admitted: Iterable[int],
) -> dict[str, int]:
    """The lanes a round opens: for each pool that had free slots (`free`, before the round's
    admissions), if the round admitted every ready task it read of the pool, read fewer groups
    than it asked for, and knows of no more in them, then half the slots left, rounded up."""
    taken = set(admitted)
    asked = {w.pool: w.groups for w in wants}
    lanes: dict[str, int] = {}
    for pool, slots in free.items():
        if slots <= 0 or pool not in asked:
            continue
        heads = [t for t in snapshot.ready if t.pool == pool]
        if any(t.id not in taken for t in heads):
            continue  # a task stays ready: the leader decides
        if len({t.group for t in heads}) >= asked[pool]:
            continue  # groups may exist beyond those read
        if any(p == pool for p, _ in snapshot.more):
            continue
        left = slots - len(heads)
        if left > 0:
            lanes[pool] = (left + 1) // 2
    return lanes
