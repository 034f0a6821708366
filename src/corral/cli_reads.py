"""The `corral` commands that read: `status` (groups, pools, workers, latest tasks; one task;
one workflow) and `tasks` (a filtered list, a page at a time). A face over corral.readside: no
store reads of its own."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from typing import Protocol

import click
from rich.console import Console

from .app import App
from .lifecycle import State
from .read_model import TaskFilter, TaskPage
from .readside import MAX_PAGE, ReadSide
from .views import (
    groups_table,
    pools_table,
    task_json,
    task_tables,
    tasks_table,
    workers_table,
    workflow_table,
)


class HasApp(Protocol):
    """The CLI's settings, as these commands use them."""

    def app(self, *, needs_code: str | None = None) -> App: ...


def reads_of(settings: HasApp) -> ReadSide:
    return ReadSide(settings.app().store, settings.app().clock)


def moment(text: str | None, field: str) -> float | None:
    """A time option: UNIX seconds, or an ISO date and time (local time unless it says)."""
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is neither UNIX seconds nor an ISO date and time (2026-11-22T08:00)",
            param_hint=f"'--{field}'",
        ) from None


def _print_page(page: TaskPage, as_json: bool, now: float, out: Console) -> None:
    if as_json:
        click.echo(json.dumps({"tasks": [task_json(t) for t in page.tasks], "next": page.next},
                              indent=2))  # fmt: skip
        return
    out.print(tasks_table(page.tasks, now) if page.tasks else "[dim]No tasks match.[/]")
    if page.next:
        out.print(f"[dim]next page: --after {page.next}[/]")


state_option = click.option(
    "--state", "states", multiple=True, type=click.Choice([str(s) for s in State]),
    help="Only tasks in this state (repeatable).")  # fmt: skip
after_option = click.option(
    "--after", metavar="CURSOR", help="The page after this one (the cursor a page ended with)."
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")


@click.command(short_help="Show groups, pools, workers and latest tasks, or one task.")
@click.argument("task_id", type=int, required=False)
@click.option("--group", help="Only this group.")
@state_option
@click.option("--limit", type=click.IntRange(1, MAX_PAGE), default=20, show_default=True,
              help="Tasks (or, with TASK_ID, log lines) shown.")  # fmt: skip
@after_option
@json_option
@click.option("--workflow", "workflow_id", type=int, metavar="ID",
              help="One workflow: its state and its tasks counted by state.")  # fmt: skip
@click.pass_obj
def status(settings: HasApp, task_id: int | None, group: str | None, states: tuple[str, ...],
           limit: int, after: str | None, as_json: bool,
           workflow_id: int | None) -> None:  # fmt: skip
    """Show groups, pools, live workers and the latest tasks; or, with TASK_ID, one task with its
    attempts, clean-ups, events and latest log lines (--after: the older ones).

    \b
    Examples:
      corral status
      corral status --group pipeline-42 --state dead --limit 50
      corral status 42 --json
      corral status --workflow 7
    """
    reads, now, out = reads_of(settings), settings.app().clock.now(), Console()
    if workflow_id is not None:
        _workflow_status(settings.app(), workflow_id, as_json, out)
        return
    if task_id is not None:
        d = reads.task(task_id, logs=limit, logs_before=after)
        if as_json:
            click.echo(json.dumps({"task": task_json(d.task),
                                   "attempts": [asdict(a) for a in d.attempts],
                                   "events": [asdict(e) for e in d.events],
                                   "logs": [asdict(x) for x in d.logs],
                                   "older_logs": d.older_logs,
                                   "cleanups": [asdict(c) for c in d.cleanups]},
                                  indent=2))  # fmt: skip
        else:
            for table in task_tables(d.task, d.attempts, d.events, d.logs, d.cleanups):
                out.print(table if table.row_count else f"[dim]{table.title}: none[/]")
            if d.older_logs:
                out.print(
                    f"[dim]older log lines: corral status {task_id} --after {d.older_logs}[/]"
                )
        return
    figures = [g for g in reads.groups() if group is None or g.group == group]
    pools, workers = reads.pools(), reads.workers()
    page = reads.tasks(TaskFilter(tuple(State(s) for s in states), group=group), after=after,
                       limit=limit)  # fmt: skip
    if as_json:
        click.echo(json.dumps({"groups": [asdict(g) | {"active": g.active} for g in figures],
                               "pools": [asdict(p) | {"active": p.active} for p in pools],
                               "workers": [asdict(w) for w in workers],
                               "tasks": [task_json(t) for t in page.tasks],
                               "next": page.next}, indent=2))  # fmt: skip
        return
    out.print(groups_table(figures) if figures else "[dim]No unfinished tasks.[/]")
    if pools:
        out.print(pools_table(pools))
    out.print(workers_table(workers, now) if workers else "[dim]No live workers.[/]")
    if page.tasks:
        _print_page(page, False, now, out)


@click.command(short_help="List tasks: filtered, newest first, a page at a time.")
@state_option
@click.option("--type", "name", metavar="NAME", help="Only tasks of this task type.")
@click.option("--group", help="Only this group.")
@click.option("--workflow", "workflow_id", type=int, metavar="ID", help="Only this workflow.")
@click.option("--pool", help="Only this pool.")
@click.option("--schedule", metavar="NAME", help="Only the tasks of this schedule's fires.")
@click.option("--created-from", metavar="TIME", help="Created at or after (UNIX or ISO time).")
@click.option("--created-until", metavar="TIME", help="Created before.")
@click.option("--finished-from", metavar="TIME", help="Ended at or after.")
@click.option("--finished-until", metavar="TIME", help="Ended before.")
@click.option("--order", type=click.Choice(["created", "finished"]), default="created",
              show_default=True,
              help="Newest first by creation, or by end (ended tasks).")  # fmt: skip
@click.option("--limit", type=click.IntRange(1, MAX_PAGE), default=50, show_default=True)
@after_option
@json_option
@click.pass_obj
def tasks(settings: HasApp, states: tuple[str, ...], name: str | None, group: str | None,
          workflow_id: int | None, pool: str | None, schedule: str | None,
          created_from: str | None, created_until: str | None, finished_from: str | None,
          finished_until: str | None, order: str, limit: int, after: str | None,
          as_json: bool) -> None:  # fmt: skip
    """List the tasks that match the filters, newest first, LIMIT at a time: a page ends with
    the cursor of the next one (--after). Tasks added meanwhile never shift the pages.

    \b
    Examples:
      corral tasks --state dead --group pipeline-42
      corral tasks --type load_table --created-from 2026-11-22T00:00 --limit 100
      corral tasks --order finished --finished-from 2026-11-22 --after eyJ...
    """
    times = {k: moment(v, k.replace("_", "-")) for k, v in {
        "created_from": created_from, "created_until": created_until,
        "finished_from": finished_from, "finished_until": finished_until}.items()}  # fmt: skip
    f = TaskFilter(tuple(State(s) for s in states), name, group, workflow_id, pool,
                   times["created_from"], times["created_until"], times["finished_from"],
                   times["finished_until"], schedule=schedule)  # fmt: skip
    page = reads_of(settings).tasks(f, order=order, after=after, limit=limit)
    _print_page(page, as_json, settings.app().clock.now(), Console())


def _workflow_status(app: App, workflow_id: int, as_json: bool, out: Console) -> None:
    wf = app.workflow_status(workflow_id)
    if as_json:
        click.echo(json.dumps(asdict(wf) | {"state": wf.state, "total": wf.total}, indent=2))
        return
    out.print(workflow_table(wf))
