"""Alerts in the store contract: incidents, their outbox of notifications, silences, and the
bounded reads the alert rules evaluate (corral.alerts, docs/alerts.md).

An incident is a rule's firing for one subject: pending -> firing -> resolved. At most one is open
per (rule, subject), under a unique partial index: a second leader, or one restarted, that opens
it again writes nothing. Each change of an incident (`alert_apply`) and the notifications it
queues are one transaction; each notification's idempotency key is (incident, transition,
channel), unique, so it is queued once and its deliveries, at least once, carry the same key. An
incident belongs to one notice group of its rule (`group_key`, fixed when it opens), and each
group's latest batch time is a row (`alert_flushes`), written in the same transaction as the
notices it schedules. The store decides nothing: which subjects fire, their group, when a notice
is due, come from corral.alerts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

PENDING, FIRING, RESOLVED = "pending", "firing", "resolved"
OPEN_STATES = (PENDING, FIRING)
SENT = "sent"
FAILED_OUTCOMES = ("failed", "lost", "timed_out", "stalled")
"""The attempt outcomes that count as a failure for the alert rules (the partial index's)."""


@dataclass(frozen=True, slots=True)
class IncidentRow:
    id: int
    rule: str
    subject: str
    state: str
    summary: str
    cause: str
    """JSON: what the message says of the cause."""
    opened_at: float
    firing_at: float | None
    resolved_at: float | None
    resolved_by: str | None
    notified_at: float | None
    notices: int
    group_key: str = ""
    """The notice group it belongs to ('' : the rule's one group; corral.alerts.rules.group_key)."""


@dataclass(frozen=True, slots=True)
class NotificationRow:
    id: int
    incident_id: int
    rule: str
    channel: str
    transition: str
    idempotency_key: str
    message: str
    state: str
    tries: int
    due_at: float
    last_error: str | None
    created_at: float
    sent_at: float | None
    group_key: str = ""
    """Its incident's group: the sender batches the due rows of one (rule, group, channel)."""


@dataclass(frozen=True, slots=True)
class Notice:
    """A notification to queue with an incident's change: its key is the store's
    (`idempotency_key(incident_id, transition, channel)`), its message the caller's JSON."""

    channel: str
    transition: str
    message: str
    due_at: float


OPEN, FIRE, NOTIFY, RESOLVE = "open", "fire", "notify", "resolve"


@dataclass(frozen=True, slots=True)
class IncidentChange:
    """One change of one incident, compare-and-set on what the caller saw:
    - OPEN (`rule`, `subject`, `state` pending or firing): written unless one is open already;
    - FIRE (`incident_id`): pending -> firing;
    - NOTIFY (`incident_id`, `seen_notices`): a firing incident's next notice (first or repeat),
      only if no other leader queued it since (its count is still `seen_notices`);
    - RESOLVE (`incident_id`, `resolved_by`): open -> resolved.
    `notices` are queued only if the change was made, with the incident's `group_key` (OPEN
    stores it; the others pass the incident's)."""

    action: str
    rule: str
    subject: str = ""
    incident_id: int | None = None
    state: str = FIRING
    summary: str = ""
    cause: str = "{}"
    seen_notices: int = 0
    resolved_by: str = "rule"
    notices: Sequence[Notice] = ()
    group_key: str = ""


@dataclass(frozen=True, slots=True)
class AlertApply:
    changes: Sequence[IncidentChange]
    now: float
    flushes: dict[tuple[str, str], float] = field(default_factory=dict)
    """Per (rule, group key), the group's batch time to remember (group_interval counts from
    it): written only if a change made in this transaction queued notices of that group (a
    leader that lost the race to another moves no batch time)."""
    closed: Sequence[tuple[str, str]] = ()
    """(rule, group key) of groups with nothing open: their flush row goes, if it is not ahead
    of `now` (a batch still waiting keeps it)."""


@dataclass(frozen=True, slots=True)
class FailedAttempt:
    """A failed attempt (FAILED_OUTCOMES) with its task as it stands now."""

    task_id: int
    attempt: int
    name: str
    group: str
    pool: str
    outcome: str
    error: str | None
    finished_at: float
    task_state: str
    task_attempt: int


def idempotency_key(incident_id: int, transition: str, channel: str) -> str:
    return f"corral-{incident_id}-{transition}-{channel}"


class AlertStore(Protocol):
    def alert_apply(self, params: AlertApply) -> list[int | None]:
        """Apply the changes in one transaction, each with its notices if it was made; per
        change, the incident's id, or None where it was not made (one is open already, or the
        incident moved meanwhile)."""
        ...

    def alert_open(self) -> list[IncidentRow]:
        """The open incidents (their unique partial index: the cost follows the open ones)."""
        ...

    def alert_incidents(self, before_id: int | None, limit: int) -> list[IncidentRow]:
        """Incidents, newest first, before an id (the primary key)."""
        ...

    def alert_incident_get(self, incident_id: int) -> IncidentRow | None: ...

    def alert_seen(self, rule: str, subjects: Sequence[str]) -> set[str]:
        """Which of `subjects` ever had an incident of `rule` ((rule, subject) index probes)."""
        ...

    def alert_notifications(self, before_id: int | None, limit: int) -> list[NotificationRow]:
        """Notifications, newest first, before an id."""
        ...

    def alert_notifications_due(self, now: float, limit: int) -> list[NotificationRow]:
        """Pending notifications due by `now`, the earliest first (the pending ones' index)."""
        ...

    def alert_notification_end(
        self, notification_id: int, sent: bool, error: str | None, retry_at: float, now: float
    ) -> bool:
        """Record a delivery: sent, or failed (tried once more, due again at `retry_at`, its
        error kept). False if it was sent already."""
        ...

    def alert_silence(self, rule: str, until: float, now: float) -> None:
        """Silence a rule's notices until `until` (replaces its silence; a past `until` ends it)."""
        ...

    def alert_silences(self, now: float) -> dict[str, float]:
        """The silences not expired at `now`: rule -> until."""
        ...

    def alert_flushes(self) -> dict[tuple[str, str], float]:
        """Per (rule, group key), its latest batch's time (a row a group with a recent batch or
        open incidents: closed groups are dropped)."""
        ...

    def alert_failed_attempts(self, since: float, limit: int) -> list[FailedAttempt]:
        """Up to `limit` failed attempts that ended at or after `since`, the latest first (the
        failed attempts' partial index, each joined to its task by its key)."""
        ...

    def alert_oldest_ready(self, pool: str) -> int | None:
        """The id of the pool's ready task waiting the longest (the ready tasks' index)."""
        ...
