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

A workflow goes once none of its own tasks is left. The store executes the rule in bounded
batches (`PrunePlan.batch` tasks a run), the oldest first; the cutoffs are computed here.
"""

from __future__ import annotations

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


def plan(retention: Retention, now: float, batch: int = DEFAULT_BATCH) -> PrunePlan:
    """The cutoffs of a prune run at `now`."""
    return PrunePlan(
        default_cutoff=now - retention.default,
        per_type={name: now - kept for name, kept in sorted(retention.per_type.items())},
        batch=batch,
    )


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
