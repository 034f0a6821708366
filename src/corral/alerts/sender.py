"""The outbox sender: a leader service that delivers the notifications due, at least once.

Due rows of one rule, notice group and channel queued for one moment (a group's batch) go as
one message; the batch is marked sent only after the channel accepted it, so a crash between the
two sends it again, with the same idempotency key. A refusal or a timeout is recorded on each
row (tries, last error) and tried again after a backoff (corral.alerts.rules.backoff), for ever:
`corral alerts` shows it failing. Deliveries run in a thread of their own, so a slow server
never holds up the leader's other services; `deliver_due` is the same work, inline (tests,
`corral alerts`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from ..codec import loads
from ..errors import ConfigError
from ..store import Store
from ..store.contract.alerts import NotificationRow
from . import rules as policy
from .channels import DeliveryError, deliver
from .rules import Channel

log = logging.getLogger("corral.alerts")
BATCH = 100


class Sender:
    """A LeaderService (scheduler/services.py)."""

    name = "alert-sender"

    def __init__(
        self,
        store: Store,
        channels: Mapping[str, Channel],
        now: Callable[[], float],
        *,
        interval: float = 1.0,
    ) -> None:
        self.store = store
        self.channels = channels
        self.interval = interval
        self._now = now
        self._thread: threading.Thread | None = None

    def run(self, now: float) -> int:
        if self._thread is not None and self._thread.is_alive():
            return 0
        if not self.store.alert_notifications_due(now, 1):
            return 0
        self._thread = threading.Thread(
            target=self._deliver_guarded, name="corral-alert-sender", daemon=True
        )
        self._thread.start()
        return 1

    def _deliver_guarded(self) -> None:
        try:
            self.deliver_due(self._now())
        except Exception:
            log.exception("alert deliveries failed")

    def deliver_due(self, now: float) -> int:
        """Deliver the notifications due at `now`; returns how many were accepted."""
        batches: dict[tuple[str, str, str, float], list[NotificationRow]] = {}
        for row in self.store.alert_notifications_due(now, BATCH):
            batches.setdefault((row.rule, row.group_key, row.channel, row.due_at), []).append(row)
        accepted = 0
        for (_, _, name, _), rows in batches.items():
            notices = [notice(r) for r in rows]
            channel = self.channels.get(name)
            error: str | None = None
            if channel is None:
                error = f"no channel named {name!r} is declared in this process"
            else:
                try:
                    deliver(channel, notices, now)
                except (DeliveryError, ConfigError) as exc:
                    error = str(exc)
            for r in rows:
                retry_at = now + policy.backoff(r.tries + 1)
                self.store.alert_notification_end(r.id, error is None, error, retry_at, now)
            if error is None:
                accepted += len(rows)
            else:
                log.warning("alert %s to %s failed (try %d): %s", rows[0].rule, name,
                            rows[0].tries + 1, error)  # fmt: skip
        return accepted


def notice(row: NotificationRow) -> dict[str, Any]:
    """The notice a channel renders: the queued message, with its incident and key."""
    message: dict[str, Any] = dict(loads(row.message))
    message.update(incident_id=row.incident_id, idempotency_key=row.idempotency_key,
                   channel=row.channel)  # fmt: skip
    return message
