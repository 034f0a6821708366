"""The alert evaluator: a leader service that turns the rules into incidents and queues their
notices (corral.alerts.rules says what each kind reads).

Each run reads the open incidents, the silences and, per rule, one bounded read: the failed
attempts of its window (their partial index), the read side's oldest ready task per pool or its
recent starts, the live workers, a schedule's latest fires. The changes of one run (incidents
opened, fired, notified again, resolved, each with its notices) are one transaction,
compare-and-set on what the run saw, so a second leader, or this one after a restart, writes
nothing twice: an open incident is unique per (rule, subject), a notice's key per (incident,
transition, channel). A finding carries its subject's labels; an incident opens in the notice
group of its rule's `group_by` values, and each group's batch time is stored with the notices it
schedules (a new leader reads it: no batch twice, none early). Cost per run: the rules times
their windows' rows, never the history.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..codec import dumps
from ..lifecycle import State
from ..scheduler.why import why
from ..schedules import spec as timing
from ..store import Store
from ..store.contract.alerts import (
    FIRE,
    FIRING,
    NOTIFY,
    OPEN,
    PENDING,
    RESOLVE,
    AlertApply,
    FailedAttempt,
    IncidentChange,
    IncidentRow,
    Notice,
)
from ..store.contract.schedules import FIRED, MISSED, FireRow
from . import rules as policy
from .rules import Rule

log = logging.getLogger("corral.alerts")
FAILED_LIMIT = 10_000
"""At most this many failed attempts are read per run (the latest first)."""
FIRE_PAGE = 500
"""A deadline rule reads its schedule's fires in pages of this many."""


@dataclass(frozen=True)
class Finding:
    """A subject for which a rule's condition holds now."""

    summary: str
    cause: list[str] = field(default_factory=list)
    link: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    """The subject's labels (corral.alerts.rules.LABELS): its notice group's values."""


class _Batches:
    """A rule's notice groups in one run: when each one's next batch goes (the rule's
    `batch_due`, once a group a run, so the incidents of a run join one batch), and the batch
    times to remember (`new_flushes`, written with the notices they schedule)."""

    def __init__(
        self,
        rule: Rule,
        now: float,
        mine: dict[str, IncidentRow],
        flushes: dict[tuple[str, str], float],
        new_flushes: dict[tuple[str, str], float],
    ) -> None:
        self.rule, self.now, self.flushes, self.new_flushes = rule, now, flushes, new_flushes
        self.active = {i.group_key for i in mine.values() if i.state == FIRING and i.notices > 0}
        self._due: dict[str, float] = {}

    def due(self, key: str) -> float:
        if key not in self._due:
            at = self.flushes.get((self.rule.name, key))
            due = policy.batch_due(self.rule, self.now, at, key in self.active)
            self._due[key] = due
            if due != at:
                self.new_flushes[(self.rule.name, key)] = due
        return self._due[key]


def _closed(
    flushes: dict[tuple[str, str], float],
    new_flushes: dict[tuple[str, str], float],
    open_by: dict[tuple[str, str], IncidentRow],
    changes: list[IncidentChange],
    now: float,
) -> list[tuple[str, str]]:
    """The groups with nothing open after this run's changes and no batch ahead: closed (their
    flush row goes; a new incident there waits `group_wait` again)."""
    resolved = {(c.rule, c.subject) for c in changes if c.action == RESOLVE}
    still = {(i.rule, i.group_key) for k, i in open_by.items() if k not in resolved}
    still |= {(c.rule, c.group_key) for c in changes if c.action == OPEN}
    return sorted(
        g for g, at in flushes.items() if at <= now and g not in still and g not in new_flushes
    )


class Evaluator:
    """A LeaderService (scheduler/services.py)."""

    name = "alerts"

    def __init__(
        self,
        store: Store,
        rules: Sequence[Rule],
        *,
        specs: Mapping[str, timing.Spec],
        explain_fire: Callable[[str, float], str],
        dashboard_url: str | None = None,
        interval: float = 5.0,
    ) -> None:
        self.store = store
        self.rules = list(rules)
        self.specs = specs
        self.explain_fire = explain_fire
        self.dashboard_url = dashboard_url.rstrip("/") if dashboard_url else None
        self.interval = interval
        self._failed_rows: list[FailedAttempt] | None = None
        self._oldest: dict[str, float] | None = None
        self._paused_groups: frozenset[str] = frozenset()

    def run(self, now: float) -> int:
        store = self.store
        self._failed_rows = self._oldest = None  # read once a run, shared by the rules
        self._paused_groups = frozenset(p.name for p in store.group_paused_list())
        open_by: dict[tuple[str, str], IncidentRow] = {
            (i.rule, i.subject): i for i in store.alert_open()
        }
        silences = store.alert_silences(now)
        flushes = store.alert_flushes()
        changes: list[IncidentChange] = []
        new_flushes: dict[tuple[str, str], float] = {}
        for rule in self.rules:
            mine = {s: i for (r, s), i in open_by.items() if r == rule.name}
            try:
                found = self.findings(rule, now, mine)
            except Exception:  # one bad rule never stops the others, nor the leader
                log.exception("alert rule %s could not be evaluated", rule.name)
                continue
            muted = rule.name in silences or self._paused(rule)
            batches = _Batches(rule, now, mine, flushes, new_flushes)
            changes.extend(self._diff(rule, now, mine, found, muted, batches))
        closed = _closed(flushes, new_flushes, open_by, changes, now)
        if not changes and not closed:
            return 0
        made = store.alert_apply(AlertApply(changes, now, new_flushes, closed))
        return sum(1 for m in made if m is not None)

    # -- what changes -----------------------------------------------------------------------
    def _diff(
        self,
        rule: Rule,
        now: float,
        mine: dict[str, IncidentRow],
        found: dict[str, Finding],
        muted: bool,
        batches: _Batches,
    ) -> list[IncidentChange]:
        out: list[IncidentChange] = []
        queued: list[Notice]

        def notices(subject: str, transition: str, f: Finding, key: str) -> list[Notice]:
            if muted:
                return []
            due = batches.due(key)
            message = self._message(rule, subject, transition, f, key)
            return [Notice(c, transition, message, due) for c in rule.channels]

        repeating = {  # the groups told again now: one of their firing incidents is due
            i.group_key
            for s, i in mine.items()
            if s in found and i.state == FIRING and policy.repeat_due(rule, now, i.notified_at)
        }
        for subject, f in found.items():
            inc = mine.get(subject)
            cause = dumps({"lines": f.cause, "link": f.link})
            if inc is None:
                state = FIRING if rule.for_ <= 0 else PENDING
                key = policy.group_key(rule, subject, f.labels)
                queued = notices(subject, "firing", f, key) if state == FIRING else []
                out.append(IncidentChange(OPEN, rule.name, subject, state=state,
                                          summary=f.summary, cause=cause, notices=queued,
                                          group_key=key))  # fmt: skip
            elif inc.state == PENDING:
                if now - inc.opened_at >= rule.for_:
                    queued = notices(subject, "firing", f, inc.group_key)
                    out.append(IncidentChange(FIRE, rule.name, subject, inc.id, summary=f.summary,
                                              cause=cause, notices=queued,
                                              group_key=inc.group_key))  # fmt: skip
            elif not muted and (
                inc.notices == 0
                or policy.repeat_due(rule, now, inc.notified_at, inc.group_key in repeating)
            ):
                transition = "firing" if inc.notices == 0 else f"repeat{inc.notices}"
                queued = notices(subject, transition, f, inc.group_key)
                out.append(IncidentChange(NOTIFY, rule.name, subject, inc.id, summary=f.summary,
                                          cause=cause, seen_notices=inc.notices, notices=queued,
                                          group_key=inc.group_key))  # fmt: skip
        for subject, inc in mine.items():
            if subject in found:
                continue
            queued = []
            if rule.send_resolved and inc.notices > 0 and not muted:
                ended = Finding(f"resolved: {inc.summary}")
                queued = notices(subject, "resolved", ended, inc.group_key)
            out.append(IncidentChange(RESOLVE, rule.name, subject, inc.id, notices=queued,
                                      group_key=inc.group_key))  # fmt: skip
        return out

    def _message(self, rule: Rule, subject: str, transition: str, f: Finding, key: str) -> str:
        return dumps({
            "rule": rule.name, "kind": rule.kind, "subject": subject, "transition": transition,
            "summary": f.summary, "cause_lines": f.cause, "link": f.link, "group": key,
        })  # fmt: skip

    def _paused(self, rule: Rule) -> bool:
        """A rule about a paused group or a paused schedule is muted."""
        if rule.group is not None and rule.group in self._paused_groups:
            return True
        if rule.schedule is None:
            return False
        rows = self.store.schedule_list([rule.schedule])
        return bool(rows and rows[0].paused)

    # -- which subjects fire --------------------------------------------------------------------
    def findings(self, rule: Rule, now: float, mine: dict[str, IncidentRow]) -> dict[str, Finding]:
        kind: Callable[[Rule, float, dict[str, IncidentRow]], dict[str, Finding]] = getattr(
            self, f"_{rule.kind}"
        )
        return kind(rule, now, mine)

    def _matches(self, rule: Rule, name: str, group: str, pool: str) -> bool:
        return (
            (rule.task is None or rule.task == name)
            and (rule.group is None or rule.group == group)
            and (rule.pool is None or rule.pool == pool)
        )

    def _failed(self, now: float, window: float) -> list[FailedAttempt]:
        """The failed attempts of the last `window` seconds, latest first: one read a run, of
        the widest window of the rules that read them (a narrower one is its prefix)."""
        if self._failed_rows is None:
            kinds = ("dead", "failures")
            widest = max([r.window for r in self.rules if r.kind in kinds] + [window])
            self._failed_rows = self.store.alert_failed_attempts(now - widest, FAILED_LIMIT)
        since = now - window
        return [a for a in self._failed_rows if a.finished_at >= since]

    def _oldest_ready(self) -> dict[str, float]:
        """The oldest ready task's ready_at per pool, paused groups left out: one read a run
        (and one a pool while a group is paused)."""
        if self._oldest is None:
            oldest = self.store.task_oldest_ready()
            if self._paused_groups:  # their tasks wait on purpose: the oldest of the others
                pools, oldest = oldest, {}
                for pool in pools:
                    task_id = self.store.alert_oldest_ready(pool)  # not of a paused group
                    record = None if task_id is None else self.store.task_get(task_id)
                    if record is not None and record.ready_at is not None:
                        oldest[pool] = record.ready_at
            self._oldest = oldest
        return self._oldest

    def _link(self, task_id: int) -> str | None:
        return None if self.dashboard_url is None else f"{self.dashboard_url}/tasks/{task_id}"

    def _dead(self, rule: Rule, now: float, mine: dict[str, IncidentRow]) -> dict[str, Finding]:
        found: dict[str, Finding] = {}
        candidates: dict[str, Any] = {}
        for a in self._failed(now, rule.window):
            dead = a.task_state == State.DEAD and a.task_attempt == a.attempt
            if dead and self._matches(rule, a.name, a.group, a.pool):
                candidates[f"task:{a.task_id}#{a.attempt}"] = a
        new = [s for s in candidates if s not in mine]
        seen = self.store.alert_seen(rule.name, new) if new else set()
        for subject, a in candidates.items():
            if subject not in seen:
                found[subject] = self._dead_finding(a.task_id, a.name, a.attempt, a.error)
                found[subject].labels.update(task=a.name, group=a.group, pool=a.pool)
        # an open one stays open while its task is still dead (retried: resolved)
        ids = {int(s.split(":")[1].split("#")[0]): s for s in mine if s not in found}
        states = self.store.task_states(list(ids)) if ids else {}
        for task_id, subject in ids.items():
            if states.get(task_id) == State.DEAD:
                inc = mine[subject]
                found[subject] = Finding(inc.summary, [], self._link(task_id))
        return found

    def _dead_finding(self, task_id: int, name: str, attempt: int, error: str | None) -> Finding:
        lines = [f"error: {error or '(none recorded)'}"]
        tail = [line.message for line in self.store.log_list(task_id, attempt)][-10:]
        if tail:
            lines.append("last log lines of its attempt:")
            lines.extend(f"  {m}" for m in tail)
        summary = f"task {task_id} ({name}) is dead after attempt {attempt}"
        return Finding(summary, lines, self._link(task_id))

    def _failures(self, rule: Rule, now: float, mine: dict[str, IncidentRow]) -> dict[str, Finding]:
        counts: dict[str, list[Any]] = {}
        for a in self._failed(now, rule.window):
            if self._matches(rule, a.name, a.group, a.pool):
                key = f"task:{a.name}" if rule.by == "task" else f"group:{a.group}"
                counts.setdefault(key, []).append(a)
        found = {}
        window = _span(rule.window)
        for subject, failed in counts.items():
            if len(failed) >= rule.count:
                last = failed[0]
                lines = [f"latest: task {last.task_id} attempt {last.attempt}: "
                         f"{last.outcome}: {last.error or ''}"]  # fmt: skip
                found[subject] = Finding(
                    f"{len(failed)} failed attempts of {subject} in {window}", lines,
                    self._link(last.task_id), {rule.by: subject.split(":", 1)[1]},
                )  # fmt: skip
        return found

    def _wait_time(
        self, rule: Rule, now: float, mine: dict[str, IncidentRow]
    ) -> dict[str, Finding]:
        found = {}
        if rule.stat == "oldest":
            waits = {p: now - at for p, at in self._oldest_ready().items()}
        else:
            samples: dict[str, list[float]] = {}
            for s in self.store.task_recent_starts(now - rule.window, FAILED_LIMIT):
                if rule.group is None or s.group == rule.group:
                    samples.setdefault(s.pool, []).append(s.wait)
            waits = {p: policy.p95(v) for p, v in samples.items() if v}
        for pool, wait in waits.items():
            if (rule.pool is not None and pool != rule.pool) or wait <= rule.threshold:
                continue
            lines, link = [], None
            oldest = self.store.alert_oldest_ready(pool)
            if oldest is not None:
                _, reasons = why(self.store, oldest, now)
                held = "; ".join(r.text for r in reasons) or "goes at the next round"
                lines = [f"oldest waiting task {oldest}: {held}"]
                link = self._link(oldest)
            found[f"pool:{pool}"] = Finding(
                f"{rule.stat} wait in pool {pool} is {_span(wait)} "
                f"(threshold {_span(rule.threshold)})", lines, link, {"pool": pool},
            )  # fmt: skip
        return found

    def _no_worker(
        self, rule: Rule, now: float, mine: dict[str, IncidentRow]
    ) -> dict[str, Finding]:
        served = {p for w in self.store.worker_list(now) for p in w.pools}
        found = {}
        for pool, at in self._oldest_ready().items():
            if rule.pool is not None and pool != rule.pool:
                continue
            if pool not in served and now - at > rule.grace:
                found[f"pool:{pool}"] = Finding(
                    f"pool {pool} has ready work and no live worker",
                    [f"its oldest ready task waits since {_at(at)}"],
                    labels={"pool": pool},
                )
        return found

    def _schedule_missed(
        self, rule: Rule, now: float, mine: dict[str, IncidentRow]
    ) -> dict[str, Finding]:
        name = rule.schedule or ""
        rows = self.store.schedule_list([name])
        if not rows or rows[0].removed_at is not None:
            return {}
        row, found = rows[0], {}
        fires = self.store.fire_list(name, None, 50)
        ran_after = max((f.logical_time for f in fires if f.outcome == FIRED), default=None)
        for fire in fires:
            if fire.logical_time < now - rule.window:
                break
            if fire.outcome == MISSED and (ran_after is None or ran_after < fire.logical_time):
                found[f"schedule:{name}@{_at(fire.logical_time)}"] = Finding(
                    f"schedule {name} missed its fire of {_at(fire.logical_time)}",
                    [self.explain_fire(name, fire.logical_time)],
                    labels={"schedule": name, "logical_time": _at(fire.logical_time)},
                )
        if not row.paused and row.next_at + rule.grace < now:
            found[f"schedule:{name}@{_at(row.next_at)}"] = Finding(
                f"schedule {name} did not fire {_at(row.next_at)} within {_span(rule.grace)}",
                [self.explain_fire(name, row.next_at)],
                labels={"schedule": name, "logical_time": _at(row.next_at)},
            )
        return found

    def _deadline(self, rule: Rule, now: float, mine: dict[str, IncidentRow]) -> dict[str, Finding]:
        name = rule.schedule or ""
        spec = self.specs.get(name)
        rows = self.store.schedule_list([name])
        if spec is None or not rows:
            return {}
        # the logical times of the window, none before the schedule was stored (never due)
        since = max(now - rule.after - rule.window, rows[0].created_at)
        logicals = set(timing.fires(spec, since, now - rule.after, 1000))
        prefix = f"schedule:{name}@"
        for subject in mine:  # an open one is checked again, whatever its age
            if subject.startswith(prefix):
                logicals.add(int(datetime.fromisoformat(subject[len(prefix) :]).timestamp()))
        due = sorted(logical for logical in logicals if logical + rule.after <= now)
        fires = self._fires_at(name, due, since)
        task_ids = sorted({t for f in fires.values() for t in f.task_ids})
        all_states = self.store.task_states(task_ids) if task_ids else {}
        found = {}
        for logical in due:
            fire = fires.get(logical)
            states = {t: all_states[t] for t in fire.task_ids if t in all_states} if fire else {}
            if (
                fire is not None
                and fire.task_ids
                and all(s == State.SUCCEEDED for s in states.values())
                and len(states) == len(fire.task_ids)
            ):
                continue
            if fire is None:
                why_not = self.explain_fire(name, float(logical))
            else:
                left = sorted({str(s) for s in states.values() if s != State.SUCCEEDED})
                why_not = f"its tasks {list(fire.task_ids)[:10]} are {', '.join(left) or 'gone'}"
            found[f"{prefix}{_at(logical)}"] = Finding(
                f"schedule {name}'s run for {_at(logical)} has not succeeded by "
                f"{_at(logical + rule.after)}", [why_not],
                labels={"schedule": name, "logical_time": _at(logical)},
            )  # fmt: skip
        return found

    def _fires_at(self, name: str, logicals: list[int], since: float) -> dict[int, FireRow]:
        """The schedule's fires of these logical times: those since `since` in pages of its fires
        (latest first), an older one (an open incident's) by itself."""
        wanted, fires = set(logicals), {}
        before: float | None = max(logicals) + 1.0 if logicals else None
        while before is not None:
            page = self.store.fire_list(name, before, FIRE_PAGE)
            fires.update({int(f.logical_time): f for f in page if int(f.logical_time) in wanted})
            last = page[-1].logical_time if page else since
            before = last if len(page) == FIRE_PAGE and last >= since else None
        for logical in wanted - fires.keys():
            if logical < since and (fire := self.store.fire_get(name, float(logical))):
                fires[logical] = fire
        return fires


def _at(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).isoformat()


def _span(value: float) -> str:
    if value >= 3600:
        return f"{value / 3600:g}h"
    if value >= 60:
        return f"{value / 60:g}m"
    return f"{value:g}s"
