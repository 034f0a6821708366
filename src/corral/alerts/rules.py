"""Alert rules and channels as declared, checked once (pure: no I/O), and the grouping rule of
notices (Alertmanager's `group_wait`, `group_interval`, `repeat_interval`, `send_resolved`).

A rule's kind says which subjects fire (corral.alerts.evaluator reads the store for them):
- `dead`: a task ran out of retries (or its stall limit failed it); subject: the task's attempt;
- `failures`: at least `count` failed attempts within `window`; subject: the task type (or the
  group, `by="group"`);
- `wait_time`: the ready tasks' wait above `threshold`: the oldest ready one's (`stat="oldest"`)
  or the p95 of the tasks that started within `window` (`stat="p95"`); subject: the pool;
- `schedule_missed`: a fire recorded missed, or not made by its logical time plus `grace`;
  subject: the schedule's logical time;
- `deadline`: a schedule's run for a logical time not succeeded by that time plus `after`;
  subject: the schedule's logical time (a backfilled old day can't mask a missing new one);
- `no_worker`: a pool with ready work and no live worker for longer than `grace`.

A subject has labels, by its kind (`LABELS`): `group_by` names some of them, and the rule's
incidents with the same values of those go out together, one notice per channel and batch: a new
group's first batch `group_wait` after its first incident, the next ones `group_interval` after
the group's last batch (a new incident, a resolution), and a still-firing group's incidents
again, together, once one of them was last told `repeat_interval` ago. `group_by=()` (the
default) is one group per rule; `("...",)` one per subject.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .. import limits
from ..durations import Duration, seconds
from ..errors import ConfigError

KINDS = ("dead", "failures", "wait_time", "schedule_missed", "deadline", "no_worker")
SCHEDULE_KINDS = ("schedule_missed", "deadline")
_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")
EVERY_LABEL = "..."
"""`group_by=("...",)`: every label, so one group per subject (Alertmanager's `...`)."""
LABELS: dict[str, tuple[str, ...]] = {
    "dead": ("task", "group", "pool"),
    "failures": ("task", "group"),  # the one its `by` counts by (failures_labels)
    "wait_time": ("pool",),
    "schedule_missed": ("schedule", "logical_time"),
    "deadline": ("schedule", "logical_time"),
    "no_worker": ("pool",),
}
"""The labels of a rule kind's subjects: what `group_by` may name."""


def labels_of(kind: str, by: str = "task") -> tuple[str, ...]:
    """The labels a rule's subjects have (a `failures` rule's: the one it counts by)."""
    if kind == "failures":
        return (by,)
    return LABELS[kind]


@dataclass(frozen=True)
class Rule:
    name: str
    kind: str
    channels: tuple[str, ...]
    task: str | None = None
    group: str | None = None
    pool: str | None = None
    schedule: str | None = None
    count: int = 1
    window: float = 3600.0
    threshold: float = 0.0
    stat: str = "oldest"
    by: str = "task"
    grace: float = 0.0
    after: float = 0.0
    for_: float = 0.0
    """How long the condition holds (pending) before the incident fires."""
    group_wait: float = 30.0
    group_interval: float = 300.0
    repeat_interval: float = 14400.0
    send_resolved: bool = True
    group_by: tuple[str, ...] = ()
    """The subject labels whose values split the rule's incidents into notice groups (() : one
    group, the rule; ("...",): one per subject)."""


def _duration(rule: str, name: str, value: Duration) -> float:
    try:
        result = seconds(value, name=name)
    except ConfigError as exc:
        raise ConfigError(f"alert rule {rule!r}: {exc}") from None
    if not math.isfinite(result):
        raise ConfigError(f"alert rule {rule!r}: {name} must be finite, not {value!r}")
    return result


def make_rule(
    name: str,
    kind: str,
    channels: Sequence[str],
    *,
    task: str | None = None,
    group: str | None = None,
    pool: str | None = None,
    schedule: str | None = None,
    count: int = 1,
    window: Duration = "1h",
    threshold: Duration = 0,
    stat: str = "oldest",
    by: str = "task",
    grace: Duration = 0,
    after: Duration = 0,
    for_: Duration = 0,
    group_wait: Duration = "30s",
    group_interval: Duration = "5m",
    repeat_interval: Duration = "4h",
    send_resolved: bool = True,
    group_by: str | Sequence[str] = (),
) -> Rule:
    """A checked rule; a ConfigError names the rule and the field."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"alert rule name must be 1-100 of A-Z a-z 0-9 _ . : -, not {name!r}")
    if kind not in KINDS:
        raise ConfigError(f"alert rule {name!r}: kind must be one of {', '.join(KINDS)}, "
                          f"not {kind!r}")  # fmt: skip
    if isinstance(channels, str):
        channels = [channels]
    if not channels:
        raise ConfigError(f"alert rule {name!r}: channels: name at least one channel")
    if kind in SCHEDULE_KINDS and schedule is None:
        raise ConfigError(f"alert rule {name!r}: a {kind} rule needs schedule=")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ConfigError(f"alert rule {name!r}: count must be a whole number >= 1, not {count!r}")
    if stat not in ("oldest", "p95"):
        raise ConfigError(f"alert rule {name!r}: stat must be 'oldest' or 'p95', not {stat!r}")
    if by not in ("task", "group"):
        raise ConfigError(f"alert rule {name!r}: by must be 'task' or 'group', not {by!r}")
    grouping = _group_by(name, kind, by, group_by)
    for label, value in (("task", task), ("group", group), ("pool", pool), ("schedule", schedule)):
        if value is not None:
            limits.text(f"alert rule {name!r}: {label}", value)
    values = {
        key: _duration(name, key.rstrip("_"), val)
        for key, val in (
            ("window", window), ("threshold", threshold), ("grace", grace), ("after", after),
            ("for_", for_), ("group_wait", group_wait), ("group_interval", group_interval),
            ("repeat_interval", repeat_interval),
        )
    }  # fmt: skip
    if values["window"] <= 0:
        raise ConfigError(f"alert rule {name!r}: window must be above 0, not {window!r}")
    if kind == "wait_time" and values["threshold"] <= 0:
        raise ConfigError(f"alert rule {name!r}: a wait_time rule needs threshold= above 0")
    if kind == "deadline" and values["after"] <= 0:
        raise ConfigError(f"alert rule {name!r}: a deadline rule needs after= above 0")
    if values["repeat_interval"] <= 0 or values["group_interval"] <= 0:
        raise ConfigError(f"alert rule {name!r}: repeat_interval and group_interval must be > 0")
    return Rule(
        name, kind, tuple(channels), task=task, group=group, pool=pool, schedule=schedule,
        count=count, stat=stat, by=by, send_resolved=bool(send_resolved), group_by=grouping,
        **values,
    )  # fmt: skip


def _group_by(rule: str, kind: str, by: str, group_by: str | Sequence[str]) -> tuple[str, ...]:
    """The checked `group_by`: labels of the kind's subjects, in order, no repeats; or `...`."""
    chosen = (group_by,) if isinstance(group_by, str) else tuple(group_by)
    if not all(isinstance(label, str) for label in chosen):
        raise ConfigError(f"alert rule {rule!r}: group_by must be label names, not {group_by!r}")
    if EVERY_LABEL in chosen:
        if len(chosen) > 1:
            others = [c for c in chosen if c != EVERY_LABEL]
            raise ConfigError(f"alert rule {rule!r}: group_by: '...' (every label) stands "
                              f"alone, not with {others}")  # fmt: skip
        return chosen
    known = labels_of(kind, by)
    for label in chosen:
        if label not in known:
            why = f" (by={by!r})" if kind == "failures" else ""
            raise ConfigError(f"alert rule {rule!r}: group_by: a {kind} rule's subjects{why} "
                              f"have no label {label!r} (they have: {', '.join(known)}; or "
                              f"'...' for one group per subject)")  # fmt: skip
    if len(set(chosen)) != len(chosen):
        raise ConfigError(f"alert rule {rule!r}: group_by names a label twice: {list(chosen)}")
    return chosen


def group_key(rule: Rule, subject: str, labels: dict[str, str]) -> str:
    """The notice group of a subject with these labels: '' (the rule's one group), the subject
    (`...`), or `label=value` of each `group_by` label, joined by ','."""
    if not rule.group_by:
        return ""
    if rule.group_by == (EVERY_LABEL,):
        return subject
    return ",".join(f"{label}={labels.get(label, '')}" for label in rule.group_by)


@dataclass(frozen=True)
class EmailChannel:
    name: str
    host: str
    port: int
    security: str
    """'ssl' (smtps://), 'starttls' (smtp://...?starttls=1, the default for smtp://) or 'none'."""
    username: str | None
    to: tuple[str, ...]
    sender: str
    password_env: str | None = None
    password_file: str | None = None
    timeout: float = 10.0
    verify: bool = True
    """Verify the server's certificate (False or a CA file path in `cafile` for self-signed)."""
    cafile: str | None = None


@dataclass(frozen=True)
class WebhookChannel:
    name: str
    url: str
    slack: bool = False
    secret_env: str | None = None
    secret_file: str | None = None
    timeout: float = 10.0
    headers: dict[str, str] = field(default_factory=dict)


Channel = EmailChannel | WebhookChannel


def email_channel(
    name: str,
    url: str,
    *,
    to: Sequence[str],
    sender: str,
    password_env: str | None = None,
    password_file: str | None = None,
    timeout: Duration = 10,
    verify: bool = True,
    cafile: str | None = None,
) -> EmailChannel:
    """`url`: smtps://user@host:465 (SSL) or smtp://user@host:587 (STARTTLS; `?starttls=0` for
    none, only on 127.0.0.1)."""
    where = f"alert channel {name!r}"
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ConfigError(f"{where}: url must be smtp://[user@]host[:port] or smtps://..., "
                          f"not {url!r}")  # fmt: skip
    if parts.password:
        raise ConfigError(f"{where}: put no password in the url; use password_env or "
                          "password_file")  # fmt: skip
    security = "ssl" if parts.scheme == "smtps" else "starttls"
    if "starttls=0" in parts.query:
        security = "none"
    try:
        port = parts.port or (465 if security == "ssl" else 587)
    except ValueError:
        raise ConfigError(f"{where}: the url's port is not a number: {url!r}") from None
    recipients = (to,) if isinstance(to, str) else tuple(to)
    if not recipients or not all(isinstance(r, str) and "@" in r for r in recipients):
        raise ConfigError(f"{where}: to must be one or more email addresses, not {to!r}")
    if not isinstance(sender, str) or "@" not in sender:
        raise ConfigError(f"{where}: sender must be an email address, not {sender!r}")
    if password_env is not None and password_file is not None:
        raise ConfigError(f"{where}: give password_env or password_file, not both")
    return EmailChannel(
        name, parts.hostname, port, security, parts.username, recipients, sender, password_env,
        password_file, seconds(timeout, name=f"{where}: timeout"), bool(verify), cafile,
    )  # fmt: skip


def webhook_channel(
    name: str,
    url: str,
    *,
    slack: bool = False,
    secret_env: str | None = None,
    secret_file: str | None = None,
    timeout: Duration = 10,
    headers: dict[str, str] | None = None,
) -> WebhookChannel:
    where = f"alert channel {name!r}"
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{where}: url must be an http(s):// URL, not {url!r}")
    if secret_env is not None and secret_file is not None:
        raise ConfigError(f"{where}: give secret_env or secret_file, not both")
    return WebhookChannel(
        name, url, slack, secret_env, secret_file, seconds(timeout, name=f"{where}: timeout"),
        dict(headers or {}),
    )  # fmt: skip


def batch_due(rule: Rule, now: float, flush_at: float | None, group_active: bool) -> float:
    """When a group's next notice (a new incident's first, a resolution) goes: with the group's
    batch still waiting (`flush_at` ahead); else, in a group already notified, `group_interval`
    after its last batch; else after `group_wait` (Alertmanager's rule)."""
    if flush_at is not None and flush_at > now:
        return flush_at
    if group_active and flush_at is not None:
        return max(now, flush_at + rule.group_interval)
    return now + rule.group_wait


def repeat_due(
    rule: Rule, now: float, notified_at: float | None, group_repeats: bool = False
) -> bool:
    """Whether a firing incident that was notified is due its next repeat: its own
    `repeat_interval` has passed, or its group repeats now (another of its incidents is due) and
    its last notice has gone (a notice queued at q is due by q + max(group_wait,
    group_interval)), so a still-firing group is told again as one batch."""
    if notified_at is None:
        return False
    if now - notified_at >= rule.repeat_interval:
        return True
    return group_repeats and now - notified_at >= max(rule.group_wait, rule.group_interval)


def p95(values: Sequence[float]) -> float:
    """The 95th percentile (nearest rank) of non-empty `values`."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def backoff(tries: int) -> float:
    """Seconds before a failed delivery's next try: 5 s doubling, at most 5 minutes."""
    return float(min(300.0, 5.0 * 2 ** max(0, tries - 1)))
