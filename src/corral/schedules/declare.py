"""Schedules declared in code: `app.schedules.add(...)`, and the calls that act on the stored ones
from any process or host (sync, list, preview, pause, resume, trigger, fires).

A schedule's target is a task type (one task per fire, with the schedule's arguments) or a
workflow builder, `def build(wf: corral.Workflow, logical_time: datetime) -> None`, that adds the
pipeline's steps: one fire submits the whole DAG. Every task a fire makes carries the fire's
logical time and data interval (`ctx.logical_time`, `ctx.data_interval`).
"""

from __future__ import annotations

import builtins
import functools
import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .. import limits
from ..codec import dumps, loads
from ..durations import Duration
from ..errors import ConfigError
from ..model import DEFAULT_GROUP, NewTask, NewWorkflow
from ..registry import TaskDef
from ..store.contract.schedules import FIRED, FireRow, ScheduleRow
from . import policy as rules
from . import spec as timing

if TYPE_CHECKING:  # the scheduler's side is imported on use: a worker doesn't need it to start
    from ..app import App, TaskType
    from ..scheduler.services import LeaderService
    from ..workflow import Workflow
    from .service import Declared, SyncReport

Builder = Callable[["Workflow", datetime], None]
SAMPLE = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)


@dataclass(frozen=True)
class ScheduleInfo:
    """A stored schedule as `corral schedules` shows it."""

    row: ScheduleRow
    spec: timing.Spec
    declared: bool
    """Whether this process's code declares it."""

    @property
    def name(self) -> str:
        return self.row.name

    @property
    def next_fire(self) -> datetime | None:
        if self.row.removed_at is not None:
            return None
        return timing.local_time(self.spec, self.row.next_at)

    @property
    def group(self) -> str:
        """The group its fires' tasks go to (a backfill's go to a group of its own): whose
        schedule it is, for a token scoped to groups."""
        return options_group(self.row.options)

    @property
    def last_fire(self) -> datetime | None:
        last = self.row.last_logical
        return None if last is None else timing.local_time(self.spec, last)


def options_group(options_json: str) -> str:
    """The group a schedule's options (JSON, stored or declared) send its tasks to: the one
    named, else the default group."""
    chosen = loads(options_json).get("group")
    return str(chosen) if chosen else DEFAULT_GROUP


def spec_json(spec: timing.Spec) -> str:
    if isinstance(spec, timing.Cron):
        return dumps({"cron": spec.expr, "tz": spec.tz})
    return dumps({"every": spec.seconds, "anchor": spec.anchor, "tz": spec.tz})


def spec_from_json(text: str) -> timing.Spec:
    data = loads(text)
    if "cron" in data:
        return timing.Cron(data["cron"], data["tz"])
    return timing.Every(int(data["every"]), int(data["anchor"]), data["tz"])


def dedup_key_for(template: str, spec: timing.Spec, logical: int, start: int) -> str:
    """The dedup key of a fire's task: `template` formatted with `logical`, `start` and `end`
    (datetimes in the schedule's zone) and `name`-free fields only."""
    moment = timing.local_time(spec, logical)
    return template.format(logical=moment, start=timing.local_time(spec, start), end=moment)


class Schedules:
    """The app's schedules (`app.schedules`). Declaring one touches no database; the scheduler's
    leader syncs them into the store when it starts (or `corral schedules sync`)."""

    def __init__(self, app: App) -> None:
        self._app = app
        self._declared: dict[str, Declared] = {}

    @property
    def declared(self) -> Mapping[str, Declared]:
        return self._declared

    def add(
        self,
        name: str,
        target: TaskType[Any, Any] | Builder,
        *,
        cron: str | None = None,
        every: Duration | None = None,
        tz: str = "UTC",
        args: Iterable[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        group: str | None = None,
        catchup: str = "all",
        max_catchup: int = 100,
        catchup_window: Duration | None = None,
        overlap: str = "skip",
        dedup_key: str | None = None,
        start: datetime | None = None,
    ) -> Declared:
        """Declare a schedule; see docs/schedules.md for every option. Bad input raises
        ConfigError naming the field, and nothing is declared."""
        limits.text("schedule name", name)
        if name in self._declared:
            raise ConfigError(f"a schedule named {name!r} is declared already")
        spec = timing.parse(cron=cron, every=every, tz=tz)
        policy = rules.check(catchup, max_catchup, catchup_window, overlap)
        if group is not None:
            limits.text("group", group)
        arguments, keywords = list(args), dict(kwargs or {})
        options: dict[str, Any] = {**policy.to_json(), "group": group, "dedup_key": dedup_key}
        if isinstance(target, TaskDef):
            if getattr(target, "app", None) is not self._app:
                raise ConfigError(f"schedule {name!r}: task {target.name!r} is another app's")
            _check_call(name, target.fn, arguments, keywords)
            options.update(args=arguments, kwargs=keywords)
            target_name = target.name
        elif callable(target):
            if arguments or keywords:
                raise ConfigError(
                    f"schedule {name!r}: args and kwargs are for a task type "
                    "target; a workflow builder adds its own steps"
                )
            target_name = f"workflow:{getattr(target, '__qualname__', repr(target))}"
        else:
            raise ConfigError(
                f"schedule {name!r}: the target must be a task type or a workflow "
                f"builder, not {target!r}"
            )
        if dedup_key is not None:
            limits.text("dedup_key", dedup_key)
            try:
                dedup_key_for(dedup_key, spec, int(SAMPLE.timestamp()), int(SAMPLE.timestamp()))
            except (KeyError, ValueError, IndexError, AttributeError) as exc:
                raise ConfigError(
                    f"dedup_key {dedup_key!r} can use {{logical}}, {{start}} and "
                    f"{{end}} only (with a date format), not: {exc}"
                ) from None
        if start is not None and (not isinstance(start, datetime) or start.tzinfo is None):
            raise ConfigError(f"start must be a timezone-aware datetime, not {start!r}")
        from .service import Declared

        declared = Declared(
            name=name,
            spec=spec,
            policy=policy,
            target=target_name,
            spec_json=spec_json(spec),
            options_json=dumps(options, what=f"the arguments of schedule {name!r}"),
            make=functools.partial(
                self.build, name, target, spec, arguments, keywords, group, dedup_key
            ),
            start=None if start is None else start.timestamp(),
        )
        self._declared[name] = declared
        return declared

    def build(
        self,
        name: str,
        target: Any,
        spec: timing.Spec,
        args: list[Any],
        kwargs: dict[str, Any],
        group: str | None,
        dedup_key: str | None,
        logical: int,
        start: int,
        group_override: str | None = None,
    ) -> tuple[list[NewTask], NewWorkflow | None]:
        """The rows of one fire of a schedule (a backfill passes its own group)."""
        key = None if dedup_key is None else dedup_key_for(dedup_key, spec, logical, start)
        chosen = group_override or group
        if isinstance(target, TaskDef):
            task_type: Any = target  # a TaskType: a TaskDef bound to this app
            prepared = task_type.prepare(
                *args, group=chosen or DEFAULT_GROUP, dedup_key=key, **kwargs
            )
            task = replace(
                prepared.task,
                logical_time=float(logical),
                data_start=float(start),
                schedule_name=name,
            )
            return [task], None
        moment = datetime.fromtimestamp(logical, UTC)
        wf = self._app.workflow(f"{name}@{moment.isoformat()}", group=chosen)
        target(wf, moment)
        workflow, tasks = wf.prepare()
        if key is not None:
            tasks = [replace(t, dedup_key=f"{key}#{i}") for i, t in enumerate(tasks)]
        if group_override is not None:
            tasks = [replace(t, group=group_override) for t in tasks]
        stamped = [
            replace(t, logical_time=float(logical), data_start=float(start), schedule_name=name)
            for t in tasks
        ]
        return stamped, workflow

    # -- acting on the stored schedules ----------------------------------------------------------
    def services(self, *, interval: float = 0.25) -> builtins.list[LeaderService]:
        """The leader services that fire this app's schedules and backfills (the scheduler runs
        them); none when the app declares no schedule, so a scheduler without the code (or
        with an App that declares none) never marks the stored ones removed."""
        if not self._declared:
            return []
        from .backfill_service import BackfillMaker
        from .service import ScheduleClock

        store = self._app.store
        return [
            ScheduleClock(store, self._declared, interval=interval),
            BackfillMaker(store, self._declared, interval=min(interval, 0.1)),
        ]

    def sync(self) -> SyncReport:
        """Write the declared schedules into the store now; those stored but no longer declared
        stop firing (their fires stay)."""
        from .service import sync

        return sync(self._app.store, self._declared, self._app.clock.now())

    def list(self) -> builtins.list[ScheduleInfo]:
        return [
            ScheduleInfo(row, spec_from_json(row.spec), row.name in self._declared)
            for row in self._app.store.schedule_list()
        ]

    def get(self, name: str) -> ScheduleInfo:
        rows = self._app.store.schedule_list([name])
        if not rows:
            raise ConfigError(f"no schedule named {name!r} is stored{self._hint()}")
        return ScheduleInfo(rows[0], spec_from_json(rows[0].spec), name in self._declared)

    def _hint(self) -> str:
        if self._declared:
            return " (declared here but not synced yet? run `corral schedules sync`)"
        return ""

    def preview(self, name: str, count: int = 5) -> builtins.list[datetime]:
        """The next `count` fire times of a schedule, in its zone."""
        limits.whole("count", count, 1, 1000)
        if name in self._declared:
            spec: timing.Spec = self._declared[name].spec
        else:
            spec = self.get(name).spec
        now = self._app.clock.now()
        return [timing.local_time(spec, t) for t in timing.fires(spec, now, float("inf"), count)]

    def pause(self, name: str) -> None:
        self._set_paused(name, True)

    def resume(self, name: str) -> None:
        """Resume; the fires that came due while paused were recorded missed ("paused")."""
        self._set_paused(name, False)

    def _set_paused(self, name: str, paused: bool) -> None:
        if not self._app.store.schedule_set_paused(name, paused, self._app.clock.now()):
            raise ConfigError(f"no schedule named {name!r} is stored{self._hint()}")

    def trigger(self, name: str) -> None:
        """Fire the schedule once now (the leader makes it within a second; the overlap rule
        applies). Its logical time is now."""
        if not self._app.store.schedule_trigger(name, self._app.clock.now()):
            raise ConfigError(
                f"no schedule named {name!r} is stored (or it was removed){self._hint()}"
            )

    def why(self, name: str, when: float | None = None) -> str:
        """Why a fire of `name` ran, was skipped or missed: the one at `when` (or the latest
        fire at or before it), else the latest one skipped or missed."""
        info = self.get(name)
        store = self._app.store
        if when is None:
            for row in store.fire_list(name, None, 1000):
                if row.outcome != FIRED:
                    return explain_fire(info, row, row.logical_time)
            return f"no fire of {name!r} among its latest 1000 was skipped or missed"
        logical = float(when)
        fire = store.fire_get(name, logical)
        if fire is None:
            logical = float(timing.previous_fire(info.spec, int(when) + 1))
            fire = store.fire_get(name, logical)
        return explain_fire(info, fire, logical)

    def fires(
        self, name: str, limit: int = 20, before: float | None = None
    ) -> builtins.list[FireRow]:
        """A schedule's fires, latest first."""
        self.get(name)
        return self._app.store.fire_list(name, before, limits.whole("limit", limit, 1, 10_000))


def explain_fire(info: ScheduleInfo, fire: FireRow | None, logical: float) -> str:
    """Why the fire of `info`'s schedule at `logical` ran, was skipped or missed, or not yet."""
    moment = _local(info.spec, logical)
    if fire is not None:
        if fire.outcome != FIRED:
            return f"the fire of {moment} was {fire.reason or fire.outcome}"
        made = f"workflow {fire.workflow_id}, " if fire.workflow_id is not None else ""
        ids = ", ".join(str(i) for i in fire.task_ids[:10])
        return f"the fire of {moment} ran ({fire.kind}, run {fire.runs}): {made}tasks {ids}"
    row = info.row
    if row.buffered_at == logical:
        return (f"the fire of {moment} is held by overlap=buffer_one until the previous run "
                "ends")  # fmt: skip
    if row.removed_at is not None:
        return f"no fire at {moment}: the schedule was removed from the code"
    if logical > row.cursor_at:
        return f"the fire of {moment} is not due yet (next fire: {_local(info.spec, row.next_at)})"
    return f"no fire of the schedule at {moment} (its fires: {info.spec.text}, {info.spec.tz})"


def _local(spec: timing.Spec, when: float) -> str:
    return timing.local_time(spec, when).strftime("%Y-%m-%d %H:%M:%S %Z")


def _check_call(name: str, fn: Callable[..., Any], args: list[Any], kwargs: dict[str, Any]) -> None:
    try:
        inspect.signature(fn).bind(None, *args, **kwargs)
    except TypeError as exc:
        raise ConfigError(f"schedule {name!r}: bad arguments for its task: {exc}") from None
