"""Backfills, the client side: `app.backfill(...)` starts one, `app.backfills` follows, pauses,
resumes and cancels them from any process. The leader's BackfillMaker makes their fires.

A backfill makes one fire per logical time of the schedule in [start, end], keyed like the live
fires, so it never duplicates a live fire or an earlier backfill. Its tasks go in a group of their
own, `backfill:<schedule>:<token>`, configured with the backfill's weight and max_parallel: the
admission policy gives it its fair share of contended slots and all the idle ones, never more.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, TransitionRefused
from ..lifecycle import TERMINAL, State
from ..store.contract import CancelParams, WorkflowCancelParams
from ..store.contract.schedules import BackfillRow, NewBackfill
from . import spec as timing

if TYPE_CHECKING:
    from ..app import App

REPROCESS = ("none", "failed", "all")
ORDER = ("forward", "backwards")
DEFAULT_LIMIT = 10_000


@dataclass(frozen=True)
class BackfillMade:
    """What `app.backfill` did: the backfill's id (None for a dry run), its group, how many fires
    it makes, and for a dry run the logical times it would make (in the schedule's zone)."""

    id: int
    group: str
    total: int
    dry_run: bool
    logical_times: list[datetime]


@dataclass(frozen=True)
class BackfillStatus:
    id: int
    schedule: str
    state: str
    total: int
    done: int
    failed: int
    running: int
    waiting: int
    skipped: int
    """Logical times that ran already (reprocess left them)."""
    eta: float | None
    """Seconds left at the pace so far (None until a fire is done)."""

    @property
    def ended(self) -> bool:
        return self.state == "cancelled" or (
            self.state == "done" and self.running == 0 and self.waiting == 0
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "schedule": self.schedule,
            "state": self.state,
            "total": self.total,
            "done": self.done,
            "failed": self.failed,
            "running": self.running,
            "waiting": self.waiting,
            "skipped": self.skipped,
            "eta_seconds": self.eta,
        }


def _bound(value: Any, field: str, spec: timing.Spec, end: bool) -> float:
    """A range bound: a timezone-aware datetime as it is, a naive one in the schedule's zone, a
    date (or an ISO string of one) as the day in that zone: its start, or for `end` its last
    second (the day is included)."""
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value)
        except ValueError:
            raise ConfigError(f"{field} must be a date or datetime (ISO), not {value!r}") from None
    zone = timing.zone(spec.tz)
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=zone)
        return moment.timestamp()
    if isinstance(value, date):
        day = value + timedelta(days=1) if end else value
        first = datetime.combine(day, time(0), tzinfo=zone).timestamp()
        return first - 1 if end else first
    raise ConfigError(f"{field} must be a date or datetime, not {value!r}")


def fire_progress(states: Sequence[State | None]) -> str:
    """Where a made fire stands by its tasks' states (None: a task gone): "done" (every one
    succeeded), "failed" (all ended, one not well), "running" (one admitted or running), else
    "waiting"."""
    if all(s == State.SUCCEEDED for s in states):
        return "done"
    if all(s in TERMINAL for s in states if s is not None):
        return "failed"
    if any(s in (State.RUNNING, State.ADMITTED) for s in states):
        return "running"
    return "waiting"


class Backfills:
    """`app.backfills`: the stored backfills, by id."""

    def __init__(self, app: App) -> None:
        self._app = app

    def start(
        self,
        schedule: str,
        *,
        start: Any,
        end: Any,
        max_parallel: int | None = None,
        weight: float = 1.0,
        reprocess: str = "none",
        order: str = "forward",
        dry_run: bool = False,
        limit: int = DEFAULT_LIMIT,
        allow_large: bool = False,
    ) -> BackfillMade:
        """See `App.backfill`."""
        declared = self._app.schedules.declared.get(schedule)
        if declared is None:
            known = ", ".join(sorted(self._app.schedules.declared)) or "none"
            raise ConfigError(f"backfill: unknown schedule {schedule!r} (declared: {known})")
        if reprocess not in REPROCESS:
            raise ConfigError(f"reprocess must be one of {REPROCESS}, not {reprocess!r}")
        if order not in ORDER:
            raise ConfigError(f"order must be one of {ORDER}, not {order!r}")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ConfigError(f"limit must be a whole number of fires >= 1, not {limit!r}")
        spec = declared.spec
        start_at, end_at = _bound(start, "start", spec, False), _bound(end, "end", spec, True)
        if end_at < start_at:
            raise ConfigError(f"backfill: end ({end}) is before start ({start})")
        total = timing.count_fires(spec, start_at - 1, end_at, limit)
        if total > limit and not allow_large:
            raise ConfigError(
                f"backfill: the range makes more than {limit} fires; pass a higher "
                "limit, or allow_large=True (--allow-large) to make them all"
            )
        if total > limit:
            total = timing.count_fires(spec, start_at - 1, end_at, 10**9)
        if total == 0:
            raise ConfigError(f"backfill: no fire of {schedule!r} lies between {start} and {end}")
        from .backfill_service import logical_times  # the scheduler's side: not at start-up
        from .service import sync

        forward = order == "forward"
        if not self._app.store.schedule_list([schedule]) and not dry_run:
            sync(self._app.store, {schedule: declared}, self._app.clock.now(), remove=False)
        if dry_run:
            times = logical_times(spec, start_at, end_at, forward, None, min(total, limit))
            shown = [timing.local_time(spec, t) for t in times]
            return BackfillMade(0, "", total, True, shown)
        group = f"backfill:{schedule}:{uuid.uuid4().hex[:8]}"
        self._app.groups.configure(group, max_parallel=max_parallel, weight=weight)
        now = self._app.clock.now()
        new = NewBackfill(schedule, start_at, end_at, reprocess, forward, group, total, now)
        return BackfillMade(self._app.store.backfill_create(new), group, total, False, [])

    def get(self, backfill_id: int) -> BackfillRow:
        row = self._app.store.backfill_get(backfill_id)
        if row is None:
            raise ConfigError(f"no backfill with id {backfill_id}")
        return row

    def list(self) -> builtins.list[BackfillRow]:
        return self._app.store.backfill_list(running_only=False)

    def status(self, backfill_id: int) -> BackfillStatus:
        """Fires done, failed, running and waiting; and the time left at the pace so far."""
        row = self.get(backfill_id)
        fires = self._app.store.backfill_fires(backfill_id)
        ids = [i for f in fires for i in f.task_ids]
        states = self._app.store.task_states(ids) if ids else {}
        done = failed = running = queued = 0
        for fire in fires:
            progress = fire_progress([states.get(i) for i in fire.task_ids])
            if progress == "done":
                done += 1
            elif progress == "failed":
                failed += 1
            elif progress == "running":
                running += 1
            else:
                queued += 1
        skipped = row.made - len(fires)
        waiting = row.total - row.made + queued if row.state != "cancelled" else 0
        elapsed = self._app.clock.now() - row.created_at
        left = waiting + running
        eta = None if done == 0 or elapsed <= 0 else left * elapsed / done
        return BackfillStatus(
            row.id,
            row.schedule_name,
            row.state,
            row.total,
            done,
            failed,
            running,
            max(0, waiting),
            max(0, skipped),
            eta,
        )

    def pause(self, backfill_id: int) -> None:
        """Stop making its fires; those made run on."""
        self._move(backfill_id, ("running",), "paused")

    def resume(self, backfill_id: int) -> None:
        self._move(backfill_id, ("paused",), "running")

    def cancel(self, backfill_id: int) -> int:
        """Stop it, and cancel its unfinished tasks (a running one is interrupted and cleans
        up). Returns how many tasks were cancelled or asked to stop."""
        self._move(backfill_id, ("running", "paused", "done"), "cancelled")
        now, store, cancelled = self._app.clock.now(), self._app.store, 0
        for fire in store.backfill_fires(backfill_id):
            if fire.workflow_id is not None:
                cancelled += sum(store.workflow_cancel(WorkflowCancelParams(fire.workflow_id, now)))
                continue
            for task_id, state in store.task_states(fire.task_ids).items():
                if state in TERMINAL:
                    continue
                try:
                    store.task_cancel(CancelParams(task_id, now))
                    cancelled += 1
                except TransitionRefused:
                    continue
        return cancelled

    def _move(self, backfill_id: int, from_states: tuple[str, ...], state: str) -> None:
        row = self.get(backfill_id)
        if not self._app.store.backfill_set_state(
            backfill_id, from_states, state, self._app.clock.now()
        ):
            raise ConfigError(f"backfill {backfill_id} is {row.state}: it can't be {state} now")
