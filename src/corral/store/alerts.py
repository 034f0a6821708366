"""The alert store's methods (the contract: store/contract/alerts.py), once for both backends:
each runs its backend's named statement (`alert_queries.X`). A backend gives its write
transaction (durable on PostgreSQL: a notice queued is a notice that survives a crash)."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from types import ModuleType
from typing import Any

from ..limits import ID_MAX
from .contract.alerts import (
    FIRE,
    NOTIFY,
    OPEN,
    RESOLVE,
    AlertApply,
    FailedAttempt,
    IncidentChange,
    IncidentRow,
    NotificationRow,
    idempotency_key,
)


class NamedAlerts:
    """The AlertStore methods, mixed into each backend's store."""

    alert_queries: ModuleType

    def _read(self, query: str, params: Any = None) -> list[Any]:
        raise NotImplementedError

    def _alert_tx(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def alert_apply(self, params: AlertApply) -> list[int | None]:
        aq, now = self.alert_queries, params.now
        made: list[int | None] = []
        queued: set[tuple[str, str]] = set()  # the groups this transaction queued notices of
        with self._alert_tx() as tx:
            for change in params.changes:
                row = tx.execute(*_statement(aq, change, now)).fetchone()
                incident_id = None if row is None else int(row[0])
                made.append(incident_id)
                if incident_id is None:
                    continue
                if change.notices:
                    queued.add((change.rule, change.group_key))
                for notice in change.notices:
                    key = idempotency_key(incident_id, notice.transition, notice.channel)
                    values = {
                        "incident_id": incident_id,
                        "rule": change.rule,
                        "channel": notice.channel,
                        "transition": notice.transition,
                        "key": key,
                        "message": notice.message,
                        "due_at": notice.due_at,
                        "group_key": change.group_key,
                        "now": now,
                    }
                    tx.execute(aq.INSERT_NOTIFICATION, values)
            for (rule, key), flush_at in params.flushes.items():
                if (rule, key) in queued:  # a batch time stands only with the notices it times
                    values = {"rule": rule, "group_key": key, "flush_at": flush_at}
                    tx.execute(aq.SET_FLUSH, values)
            for rule, key in params.closed:
                tx.execute(aq.CLOSE_GROUP, {"rule": rule, "group_key": key, "now": now})
        return made

    def alert_open(self) -> list[IncidentRow]:
        return [_incident(r) for r in self._read(self.alert_queries.OPEN_INCIDENTS)]

    def alert_incidents(self, before_id: int | None, limit: int) -> list[IncidentRow]:
        params = {"before": ID_MAX if before_id is None else before_id, "limit": limit}
        return [_incident(r) for r in self._read(self.alert_queries.INCIDENTS, params)]

    def alert_incident_get(self, incident_id: int) -> IncidentRow | None:
        rows = self._read(self.alert_queries.INCIDENT, {"id": incident_id})
        return _incident(rows[0]) if rows else None

    def alert_seen(self, rule: str, subjects: Sequence[str]) -> set[str]:
        query = self.alert_queries.SEEN
        return {s for s in subjects if self._read(query, {"rule": rule, "subject": s})}

    def alert_notifications(self, before_id: int | None, limit: int) -> list[NotificationRow]:
        params = {"before": ID_MAX if before_id is None else before_id, "limit": limit}
        return [_notification(r) for r in self._read(self.alert_queries.NOTIFICATIONS, params)]

    def alert_notifications_due(self, now: float, limit: int) -> list[NotificationRow]:
        rows = self._read(self.alert_queries.DUE_NOTIFICATIONS, {"now": now, "limit": limit})
        return [_notification(r) for r in rows]

    def alert_notification_end(
        self, notification_id: int, sent: bool, error: str | None, retry_at: float, now: float
    ) -> bool:
        aq = self.alert_queries
        with self._alert_tx() as tx:
            if sent:
                params: dict[str, Any] = {"id": notification_id, "now": now}
                return tx.execute(aq.NOTIFICATION_SENT, params).fetchone() is not None
            params = {"id": notification_id, "error": error, "retry_at": retry_at}
            return tx.execute(aq.NOTIFICATION_FAILED, params).fetchone() is not None

    def alert_silence(self, rule: str, until: float, now: float) -> None:
        with self._alert_tx() as tx:
            tx.execute(self.alert_queries.SILENCE, {"rule": rule, "until": until, "now": now})

    def alert_silences(self, now: float) -> dict[str, float]:
        rows = self._read(self.alert_queries.SILENCES, {"now": now})
        return {str(rule): float(until) for rule, until in rows}

    def alert_flushes(self) -> dict[tuple[str, str], float]:
        rows = self._read(self.alert_queries.FLUSHES)
        return {(str(r), str(key)): float(at) for r, key, at in rows}

    def alert_failed_attempts(self, since: float, limit: int) -> list[FailedAttempt]:
        rows = self._read(self.alert_queries.FAILED_ATTEMPTS, {"since": since, "limit": limit})
        return [
            FailedAttempt(int(r[0]), int(r[1]), r[2], r[3], r[4], r[5], r[6], float(r[7]), r[8],
                          int(r[9]))
            for r in rows
        ]  # fmt: skip

    def alert_oldest_ready(self, pool: str) -> int | None:
        rows = self._read(self.alert_queries.OLDEST_READY, {"pool": pool})
        return int(rows[0][0]) if rows else None


def _statement(aq: ModuleType, change: IncidentChange, now: float) -> tuple[str, dict[str, Any]]:
    """The named statement of one change, with its parameters."""
    notify = bool(change.notices)
    if change.action == OPEN:
        return aq.OPEN_INCIDENT, {
            "rule": change.rule,
            "subject": change.subject,
            "state": change.state,
            "summary": change.summary,
            "cause": change.cause,
            "notify": notify and change.state == "firing",
            "group_key": change.group_key,
            "now": now,
        }
    base = {"id": change.incident_id, "now": now}
    if change.action == FIRE:
        return aq.FIRE_INCIDENT, {
            **base, "summary": change.summary, "cause": change.cause, "notify": notify,
        }  # fmt: skip
    if change.action == NOTIFY:
        return aq.NOTIFY_INCIDENT, {
            **base, "summary": change.summary, "cause": change.cause, "seen": change.seen_notices,
        }  # fmt: skip
    if change.action == RESOLVE:
        return aq.RESOLVE_INCIDENT, {**base, "by": change.resolved_by}
    raise ValueError(f"unknown incident change {change.action!r}")


def _incident(r: Any) -> IncidentRow:
    return IncidentRow(
        int(r[0]), r[1], r[2], r[3], r[4], r[5], float(r[6]), _f(r[7]), _f(r[8]), r[9], _f(r[10]),
        int(r[11]), r[12],
    )  # fmt: skip


def _notification(r: Any) -> NotificationRow:
    return NotificationRow(
        int(r[0]), int(r[1]), r[2], r[3], r[4], r[5], r[6], r[7], int(r[8]), float(r[9]), r[10],
        float(r[11]), _f(r[12]), r[13],
    )  # fmt: skip


def _f(value: Any) -> float | None:
    return None if value is None else float(value)
