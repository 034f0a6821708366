"""Retention: which finished history may be pruned. A pure rule, no I/O.

A task may go, with its attempts, events, logs, dependency links and submit-id record, when all
of these hold:

- it is finished: succeeded, dead, cancelled or upstream_failed (`lifecycle.TERMINAL`);
- it finished before `now - retention`, the retention of its task type, else the default
  (7 days unless configured);
- no task that depends on it is unfinished (a waiting dependent still needs its outcome);
- it is in no unfinished workflow, as its own step or as a linked one (the workflow's state and
  progress count it);
- none of its events is after the cursor of the slowest event consumer (it is undelivered).

A workflow goes once none of its own tasks is left.

A schedule's fire (its row keyed by schedule and logical time) may go when all of these hold:

- it was made before `now` minus the default retention;
- none of its tasks is still stored (so an unfinished one keeps it, and a task type's longer
  retention keeps its fires as long as their tasks);
- it is not the latest fire of its schedule, nor the latest that ran (outcome fired): the
  overlap rule and `corral why` read them; the catch-up reads the schedule's own cursor;
- it is not part of a backfill still running or paused (the backfill's status counts them).

A backfill goes once it ended (done or cancelled) before the same cutoff and no fire of it is
left. A pruned fire's logical time may fire again only by a backfill over it (the clock moves
forward from its cursor): a backfill with `reprocess="none"` over pruned history runs it again.

The store executes the rule in bounded batches (`PrunePlan.batch` tasks a run), the oldest
first; the cutoffs are computed here.

Whole days (PostgreSQL, where events, logs and attempts are partitioned by UTC day): a day of a
history table is dropped at once, instead of row by row, when

- it ended before the drop line: `now` minus the LONGEST retention in force (the default and
  every task type's), so no task type's retention is cut short by a drop;
- no task still stored has a row in it (every task with history that day has been pruned by the
  rule above: its task row went, its rows that day were left for the drop);
- (events) no event in it is after the slowest consumer's cursor.

A pruned task's rows in a day that ended before the drop line are left for that day's drop, and
no read shows them meanwhile; its rows elsewhere (newer days, the DEFAULT partition that catches
times outside every day) are deleted with it. The pruner also makes the days ahead
(`DAYS_AHEAD`), so rows land in a day partition from their first moment.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from . import limits
from .durations import Duration, seconds
from .errors import ConfigError

DEFAULT_RETENTION = 7 * 86400.0
"""Seconds a finished task is kept when nothing is configured."""
DEFAULT_KEY = "*"
"""The stored name of the default retention (refused as a task type name in `per_type`)."""
MIN_RETENTION = 1.0
"""The shortest retention: one second (0 would prune a task the moment it ends)."""
DEFAULT_BATCH = 1000
DAY = 86400.0
"""The span of one history partition: a UTC day."""
DAYS_AHEAD = 2
"""Days after today whose partitions the pruner makes ahead of their rows."""


@dataclass(frozen=True)
class Retention:
    """How long finished tasks are kept: `default` seconds, or their type's in `per_type`."""

    default: float = DEFAULT_RETENTION
    per_type: Mapping[str, float] = field(default_factory=dict)

    def of(self, task_name: str) -> float:
        return self.per_type.get(task_name, self.default)


@dataclass(frozen=True)
class PrunePlan:
    """What one prune run may delete: tasks finished before `default_cutoff`, except the types
    in `per_type`, finished before their own cutoff; at most `batch` tasks."""

    default_cutoff: float
    per_type: Mapping[str, float]
    batch: int
    now: float
    """The moment of the run: the days ahead are made from it."""

    @property
    def drop_line(self) -> float:
        """Whole days that ended by then may be dropped: the oldest cutoff in force."""
        return min([self.default_cutoff, *self.per_type.values()])

    def may_drop(self, day: float) -> bool:
        """Whether the day starting at `day` ended before the drop line (what else must hold,
        no stored task's rows and no undelivered event in it, the store checks)."""
        return day + DAY <= self.drop_line

    def days_ahead(self) -> list[float]:
        """The starts of today and the `DAYS_AHEAD` days after it, whose partitions must exist."""
        today = day_of(self.now)
        return [today + n * DAY for n in range(DAYS_AHEAD + 1)]


def plan(retention: Retention, now: float, batch: int = DEFAULT_BATCH) -> PrunePlan:
    """The cutoffs of a prune run at `now`."""
    return PrunePlan(
        default_cutoff=now - retention.default,
        per_type={name: now - kept for name, kept in sorted(retention.per_type.items())},
        batch=batch,
        now=now,
    )


def day_of(moment: float) -> float:
    """The start of the UTC day holding `moment` (epoch seconds)."""
    return math.floor(moment / DAY) * DAY


def from_rows(rows: Mapping[str, float]) -> Retention:
    """The retention stored as rows (task name → seconds; '*' the default)."""
    per_type = {name: kept for name, kept in rows.items() if name != DEFAULT_KEY}
    return Retention(rows.get(DEFAULT_KEY, DEFAULT_RETENTION), per_type)


def checked(field_name: str, value: Duration) -> float:
    """A retention the user wrote ("7d", 3600, timedelta), in seconds, or a ConfigError."""
    kept = limits.seconds(field_name, seconds(value, name=field_name))
    if kept < MIN_RETENTION:
        raise ConfigError(
            f"{field_name} must be at least {MIN_RETENTION:.0f} second, got {value!r}"
        )
    return kept
