"""Alerts declared in code: `app.alerts.channel(...)`, `app.alerts.rule(...)`, and the calls that
act on the stored incidents from any process (list, silence, resolve, test a channel).

Declaring touches no database. What can be checked alone (a kind, a threshold, a URL) is checked
at once; what names other declarations (a channel, a task type, a schedule) is checked when the
scheduler starts (`services()`), so the order of declarations does not matter. Either way a
ConfigError names the rule or channel and the field.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..durations import Duration, seconds
from ..errors import ConfigError
from ..store.contract.alerts import (
    RESOLVE,
    AlertApply,
    IncidentChange,
    IncidentRow,
    NotificationRow,
)
from . import rules as checks
from .rules import Channel, Rule

if TYPE_CHECKING:  # the scheduler's side, imported by those that run it (start-up: issue 15)
    from ..app import App
    from ..scheduler.services import LeaderService
    from .evaluator import Evaluator
    from .sender import Sender


@dataclass(frozen=True)
class AlertsView:
    """What `corral alerts` shows."""

    rules: list[Rule]
    open: list[IncidentRow]
    notifications: list[NotificationRow]
    silences: dict[str, float]


class Alerts:
    """The app's alerts (`app.alerts`)."""

    def __init__(self, app: App) -> None:
        self._app = app
        self._rules: dict[str, Rule] = {}
        self._channels: dict[str, Channel] = {}
        self.dashboard_url: str | None = os.environ.get("CORRAL_DASHBOARD_URL")
        """Notices link to a task's page under it when set (or CORRAL_DASHBOARD_URL)."""
        self.interval = 5.0
        """Seconds between the leader's evaluations of the rules."""

    @property
    def rules(self) -> Mapping[str, Rule]:
        return self._rules

    @property
    def channels(self) -> Mapping[str, Channel]:
        return self._channels

    def email(self, name: str, url: str, **options: Any) -> Channel:
        """An email channel: `url` smtps://user@host:465 or smtp://user@host:587 (STARTTLS),
        `to=`, `sender=`, `password_env=` or `password_file=` (docs/alerts.md)."""
        return self._add_channel(checks.email_channel(name, url, **options))

    def webhook(self, name: str, url: str, **options: Any) -> Channel:
        """A signed JSON webhook: `secret_env=` or `secret_file=` for `X-Corral-Signature`."""
        return self._add_channel(checks.webhook_channel(name, url, **options))

    def slack(self, name: str, url: str, **options: Any) -> Channel:
        """A Slack-compatible incoming webhook (`{"text": ...}`)."""
        return self._add_channel(checks.webhook_channel(name, url, slack=True, **options))

    def channel(self, name: str, url: str, **options: Any) -> Channel:
        """A channel by its URL's scheme: smtp(s):// is email, http(s):// a webhook (`slack=True`
        for Slack's payload)."""
        if isinstance(url, str) and url.startswith(("smtp://", "smtps://")):
            return self.email(name, url, **options)
        return self.webhook(name, url, **options)

    def _add_channel(self, channel: Channel) -> Channel:
        if channel.name in self._channels:
            raise ConfigError(f"an alert channel named {channel.name!r} is declared already")
        self._channels[channel.name] = channel
        return channel

    def rule(self, name: str, kind: str, *, channels: str | Sequence[str], **options: Any) -> Rule:
        """Declare a rule (kinds and options: corral.alerts.rules, docs/alerts.md)."""
        if name in self._rules:
            raise ConfigError(f"an alert rule named {name!r} is declared already")
        chosen = [channels] if isinstance(channels, str) else list(channels)
        rule = checks.make_rule(name, kind, chosen, **options)
        self._rules[name] = rule
        return rule

    def check(self) -> None:
        """Check what the rules name: channels, task types, schedules."""
        for rule in self._rules.values():
            for c in rule.channels:
                if c not in self._channels:
                    raise ConfigError(f"alert rule {rule.name!r}: channels: no channel named "
                                      f"{c!r} (declared: {sorted(self._channels)})")  # fmt: skip
            if rule.task is not None and rule.task not in self._app.tasks:
                raise ConfigError(f"alert rule {rule.name!r}: task: no task type named "
                                  f"{rule.task!r}")  # fmt: skip
            if rule.schedule is not None and rule.schedule not in self._app.schedules.declared:
                raise ConfigError(f"alert rule {rule.name!r}: schedule: no schedule named "
                                  f"{rule.schedule!r} is declared")  # fmt: skip

    def services(self, *, interval: float | None = None) -> builtins.list[LeaderService]:
        """The evaluator and the outbox sender (none when no rule is declared)."""
        if not self._rules:
            return []
        self.check()
        interval = self.interval if interval is None else interval
        return [self.evaluator(interval=interval), self.sender(interval=min(1.0, interval))]

    def evaluator(self, *, interval: float = 5.0) -> Evaluator:
        from .evaluator import Evaluator

        specs = {n: d.spec for n, d in self._app.schedules.declared.items()}
        return Evaluator(
            self._app.store, list(self._rules.values()), specs=specs,
            explain_fire=self._explain, dashboard_url=self.dashboard_url, interval=interval,
        )  # fmt: skip

    def sender(self, *, interval: float = 1.0) -> Sender:
        from .sender import Sender

        return Sender(self._app.store, self._channels, self._app.clock.now, interval=interval)

    def _explain(self, schedule: str, logical: float) -> str:
        try:
            return self._app.schedules.why(schedule, logical)
        except ConfigError as exc:
            return str(exc)

    # -- acting on the stored incidents -------------------------------------------------------
    def view(self, limit: int = 20) -> AlertsView:
        store, now = self._app.store, self._app.clock.now()
        return AlertsView(
            list(self._rules.values()), store.alert_open(), store.alert_notifications(None, limit),
            store.alert_silences(now),
        )  # fmt: skip

    def silence(self, rule: str, duration: Duration) -> float:
        """Silence a rule's notices for `duration` (0: end its silence); returns the end."""
        if rule not in self._rules:
            raise ConfigError(f"no alert rule named {rule!r} is declared "
                              f"(declared: {sorted(self._rules)})")  # fmt: skip
        now = self._app.clock.now()
        until = now + seconds(duration, name="for")
        self._app.store.alert_silence(rule, until, now)
        return until

    def resolve(self, incident_id: int, by: str = "operator") -> bool:
        """Resolve an open incident by hand (no resolve notice is sent); False if it was not
        open."""
        inc = self._app.store.alert_incident_get(incident_id)
        if inc is None:
            raise ConfigError(f"no incident with id {incident_id}")
        change = IncidentChange(RESOLVE, inc.rule, inc.subject, inc.id, resolved_by=by)
        made = self._app.store.alert_apply(AlertApply([change], self._app.clock.now()))
        return made[0] is not None

    def test(self, channel: str) -> str | None:
        """Send a test notice through `channel` now; None if accepted, else the error."""
        found = self._channels.get(channel)
        if found is None:
            raise ConfigError(f"no alert channel named {channel!r} "
                              f"(declared: {sorted(self._channels)})")  # fmt: skip
        now = self._app.clock.now()
        notice: dict[str, Any] = {
            "rule": "test", "kind": "test", "subject": "test", "transition": "test",
            "summary": "a test notice from corral", "cause_lines": [], "link": None,
            "incident_id": 0, "idempotency_key": f"corral-test-{int(now)}-{channel}",
            "channel": channel,
        }  # fmt: skip
        from .channels import DeliveryError, deliver

        try:
            deliver(found, [notice], now)
        except (DeliveryError, ConfigError) as exc:
            return str(exc)
        return None
