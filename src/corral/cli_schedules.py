"""`corral schedules` (list, sync, preview, pause, resume, trigger, fires) and `corral backfill`.
A face: it talks to the App (`app.schedules`, `app.backfills`)."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, date, datetime
from typing import Any, Protocol

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from .app import App
from .schedules.declare import ScheduleInfo


class _Settings(Protocol):
    def app(self, *, needs_code: str | None = None) -> App: ...


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S %Z")


def _row_json(info: ScheduleInfo) -> dict[str, Any]:
    row = info.row
    return {
        "name": row.name,
        "spec": info.spec.text,
        "tz": info.spec.tz,
        "next_fire": None if info.next_fire is None else info.next_fire.isoformat(),
        "last_fire": None if info.last_fire is None else info.last_fire.isoformat(),
        "last_outcome": row.last_outcome,
        "paused": row.paused,
        "removed": row.removed_at is not None,
        "fired": row.fired,
        "missed": row.missed,
        "skipped": row.skipped,
        "target": row.target,
    }


@click.group(invoke_without_command=True, short_help="List, sync, preview, pause schedules.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.pass_context
def schedules(ctx: click.Context, as_json: bool) -> None:
    """List the stored schedules: spec, time zone, next fire, last fire and its outcome, paused,
    and how many fires were missed and skipped.

    \b
    Examples:
      corral schedules
      corral --app tasks:app schedules sync
      corral schedules preview nightly-orders --count 10
      corral schedules pause nightly-orders
      corral schedules trigger nightly-orders
    """
    if ctx.invoked_subcommand is not None:
        return
    settings: _Settings = ctx.obj
    infos = settings.app().schedules.list()
    if as_json:
        click.echo(json.dumps([_row_json(i) for i in infos], indent=2))
        return
    if not infos:
        click.echo(
            "No schedules stored yet (a scheduler with --app syncs them, or "
            "`corral --app tasks:app schedules sync`)."
        )
        return
    table = Table(
        "name", "spec", "tz", "next fire", "last fire", "outcome", "paused", "missed", "skipped"
    )
    for info in infos:
        row = info.row
        state = "removed" if row.removed_at is not None else ("yes" if row.paused else "no")
        table.add_row(
            row.name,
            info.spec.text,
            info.spec.tz,
            _when(info.next_fire),
            _when(info.last_fire),
            row.last_outcome or "-",
            state,
            str(row.missed),
            str(row.skipped),
        )
    _console().print(table)


@schedules.command("sync")
@click.pass_obj
def schedules_sync(settings: _Settings) -> None:
    """Write the schedules your code declares into the database now; those stored but no longer
    declared stop firing (their history stays)."""
    app = settings.app(needs_code="corral schedules sync")
    report = app.schedules.sync()
    click.echo(
        f"added: {', '.join(report.added) or '-'}; changed: "
        f"{', '.join(report.changed) or '-'}; removed: {', '.join(report.removed) or '-'}"
    )


@schedules.command("preview")
@click.argument("name")
@click.option("--count", type=click.IntRange(1, 1000), default=5, show_default=True)
@click.pass_obj
def schedules_preview(settings: _Settings, name: str, count: int) -> None:
    """The next fire times of schedule NAME, in its own time zone and in UTC."""
    for moment in settings.app().schedules.preview(name, count):
        click.echo(f"{_when(moment)}    {_when(moment.astimezone(UTC))}")


@schedules.command("pause")
@click.argument("name")
@click.pass_obj
def schedules_pause(settings: _Settings, name: str) -> None:
    """Pause NAME: its fires are recorded missed ("paused") until it is resumed."""
    settings.app().schedules.pause(name)
    click.echo(f"paused {name}")


@schedules.command("resume")
@click.argument("name")
@click.pass_obj
def schedules_resume(settings: _Settings, name: str) -> None:
    """Resume NAME from its next fire."""
    settings.app().schedules.resume(name)
    click.echo(f"resumed {name}")


@schedules.command("trigger")
@click.argument("name")
@click.pass_obj
def schedules_trigger(settings: _Settings, name: str) -> None:
    """Fire NAME once now (the leading scheduler makes the fire; its overlap rule applies)."""
    settings.app().schedules.trigger(name)
    click.echo(f"triggered {name}")


@schedules.command("fires")
@click.argument("name")
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, show_default=True)
@click.pass_obj
def schedules_fires(settings: _Settings, name: str, limit: int) -> None:
    """The latest fires of NAME: logical time, kind, outcome and why, tasks."""
    app = settings.app()
    spec = app.schedules.get(name).spec
    table = Table("logical time", "kind", "outcome", "why", "tasks")
    for fire in app.schedules.fires(name, limit):
        local = datetime.fromtimestamp(fire.logical_time, UTC).astimezone(_zone(spec.tz))
        tasks = ", ".join(str(i) for i in fire.task_ids[:5]) + (
            "..." if len(fire.task_ids) > 5 else ""
        )
        table.add_row(_when(local), fire.kind, fire.outcome, fire.reason or "-", tasks or "-")
    _console().print(table)


def _console() -> Console:
    """The terminal's width, or a wide one when the output is not a terminal (a pipe, a file):
    the table's rows then stay one line each."""
    return Console() if sys.stdout.isatty() else Console(width=200)


def why_fire(app: App, name: str, when: str | None) -> str:
    """`corral why SCHEDULE [WHEN]`: WHEN is UNIX seconds or ISO, in the schedule's zone unless
    it says."""
    moment: float | None = None
    if when is not None:
        try:
            moment = float(when)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(when)
            except ValueError:
                raise click.BadParameter(f"{when!r} is neither UNIX seconds nor an ISO date and "
                                         "time", param_hint="WHEN") from None  # fmt: skip
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=_zone(app.schedules.get(name).spec.tz))
            moment = parsed.timestamp()
    return f"{name}: {app.schedules.why(name, moment)}"


def _zone(name: str) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


# -- backfills -------------------------------------------------------------------------------


def _bound(text: str, field: str) -> date | datetime:
    """A day (2026-11-28: the whole day, in the schedule's zone) or a moment."""
    try:
        return date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not an ISO date or date and time (2026-11-28, 2026-11-28T02:00)",
            param_hint=f"'--{field}'",
        ) from None


@click.command("backfill", short_help="Backfill a schedule over a range of logical times.")
@click.argument("schedule")
@click.option(
    "--from",
    "start",
    metavar="DATE",
    required=True,
    help="First day or moment (ISO; the schedule's zone unless it says).",
)
@click.option("--to", "end", metavar="DATE", required=True, help="Last day (inclusive) or moment.")
@click.option("--max-parallel", type=click.IntRange(min=1), default=None)
@click.option("--weight", type=float, default=1.0, show_default=True)
@click.option(
    "--reprocess", type=click.Choice(["none", "failed", "all"]), default="none", show_default=True
)
@click.option(
    "--order", type=click.Choice(["forward", "backwards"]), default="forward", show_default=True
)
@click.option(
    "--dry-run", is_flag=True, help="List the logical times it would make; write nothing."
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=10_000,
    show_default=True,
    help="Refuse a range of more fires than this...",
)
@click.option("--allow-large", is_flag=True, help="...unless this is given.")
@click.option("--detach", is_flag=True, help="Start it and return, without following it.")
@click.pass_obj
def backfill(
    settings: _Settings,
    schedule: str,
    start: str,
    end: str,
    max_parallel: int | None,
    weight: float,
    reprocess: str,
    order: str,
    dry_run: bool,
    limit: int,
    allow_large: bool,
    detach: bool,
) -> None:
    """Run SCHEDULE for every logical time in a range, keyed like its live fires: nothing runs
    twice (--reprocess decides whether a fire that already ran runs again). The backfill's tasks
    form their own group, with its weight and cap: it fills idle capacity and never takes more
    than its share from live groups. Follows it with a progress bar until it ends.

    \b
    Examples:
      corral --app tasks:app backfill nightly-orders --from 2026-11-28 --to 2026-11-30
      corral --app tasks:app backfill nightly-orders --from 2026-11-01 --to 2026-11-30 --dry-run
      corral backfills status 3
      corral backfills cancel 3
    """
    app = settings.app(needs_code="corral backfill")
    made = app.backfill(
        schedule,
        start=_bound(start, "from"),
        end=_bound(end, "to"),
        max_parallel=max_parallel,
        weight=weight,
        reprocess=reprocess,
        order=order,
        dry_run=dry_run,
        limit=limit,
        allow_large=allow_large,
    )
    if made.dry_run:
        for moment in made.logical_times:
            click.echo(f"{_when(moment)}    {_when(moment.astimezone(UTC))}")
        click.echo(f"{len(made.logical_times)} fires would be made (dry run: nothing written)")
        return
    click.echo(f"backfill {made.id} of {schedule}: {made.total} fires, group {made.group}")
    if not detach:
        click.echo("following it (Ctrl-C detaches; a scheduler with --app makes its fires)")
        _follow(app, made.id)


def _follow(app: App, backfill_id: int) -> None:
    """A Rich progress bar over the backfill's fires until it ends (Ctrl-C detaches)."""
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeRemainingColumn(),
    )
    try:
        with Progress(*columns, transient=False) as progress:
            status = app.backfills.status(backfill_id)
            bar = progress.add_task(f"backfill {backfill_id}", total=status.total, detail="")
            while True:
                status = app.backfills.status(backfill_id)
                detail = (
                    f"running {status.running} · waiting {status.waiting} · failed "
                    f"{status.failed} · {status.state}"
                )
                progress.update(bar, completed=status.done + status.failed, detail=detail)
                if status.ended:
                    break
                time.sleep(0.5)
    except KeyboardInterrupt:
        click.echo(
            f"detached: backfill {backfill_id} goes on (corral backfill status {backfill_id})"
        )
        return
    click.echo(
        f"backfill {backfill_id} {status.state}: {status.done} done, {status.failed} "
        f"failed, {status.skipped} already done"
    )


@click.group("backfills", short_help="Backfills: list, status, pause, resume, cancel.")
def backfills() -> None:
    """The stored backfills: list them, follow one, pause, resume or cancel it as a whole.

    \b
    Examples:
      corral backfills list
      corral backfills status 3
      corral backfills pause 3 ; corral backfills resume 3
      corral backfills cancel 3
    """


@backfills.command("status")
@click.argument("backfill_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def backfill_status(settings: _Settings, backfill_id: int, as_json: bool) -> None:
    """Fires done, running, failed and waiting, and the estimated time left."""
    status = settings.app().backfills.status(backfill_id)
    if as_json:
        click.echo(json.dumps(status.to_json(), indent=2))
        return
    eta = "-" if status.eta is None else f"{status.eta:.0f}s"
    click.echo(
        f"backfill {status.id} of {status.schedule} ({status.state}): {status.total} fires;"
        f" {status.done} done, {status.running} running, {status.failed} failed, "
        f"{status.waiting} waiting, {status.skipped} already done; ETA {eta}"
    )


@backfills.command("list")
@click.pass_obj
def backfill_list(settings: _Settings) -> None:
    """Every backfill, newest first."""
    for row in settings.app().backfills.list():
        click.echo(
            f"{row.id}: {row.schedule_name} {row.state}, {row.made}/{row.total} made, "
            f"group {row.group}"
        )


def _act(name: str, help_text: str) -> None:
    @backfills.command(name, help=help_text)
    @click.argument("backfill_id", type=int)
    @click.pass_obj
    def command(settings: _Settings, backfill_id: int) -> None:
        getattr(settings.app().backfills, name)(backfill_id)
        click.echo(f"backfill {backfill_id}: {name}{'d' if name.endswith('e') else 'ed'}")

    del command


_act("pause", "Stop making the backfill's fires (those made run on).")
_act("resume", "Make the backfill's fires again.")
_act("cancel", "Stop the backfill and cancel its unfinished tasks.")
