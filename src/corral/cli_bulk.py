"""`corral bulk cancel|retry`: the bulk actions by filter from a terminal, through the same
service the REST API uses (corral.bulk): the count first, a confirmation (or --yes), then the
action in batches of 500 a transaction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from .bulk import Bulk, BulkRefused
from .cli_reads import HasApp, moment, reads_of, state_option
from .lifecycle import State
from .read_model import TaskFilter


@click.group(short_help="Cancel or retry every task a filter matches.")
def bulk() -> None:
    """Cancel or retry every task a filter matches: the count first, then (once confirmed)
    the action, in batches of 500 tasks a transaction. A task that moved in between is skipped.

    \b
    Examples:
      corral bulk retry --state dead --group pipeline-42
      corral bulk cancel --type load_table --created-until 2026-11-22 --yes
    """


def _filters(fn: Callable[..., Any]) -> Callable[..., Any]:
    options: list[Callable[[Callable[..., Any]], Callable[..., Any]]] = [
        state_option,
        click.option("--type", "name", metavar="NAME", help="Only tasks of this task type."),
        click.option("--group", help="Only this group."),
        click.option("--workflow", "workflow_id", type=int, metavar="ID", help="Only this one."),
        click.option("--pool", help="Only this pool."),
        click.option("--schedule", metavar="NAME", help="Only the tasks of its fires."),
        click.option("--created-from", metavar="TIME", help="Created at or after."),
        click.option("--created-until", metavar="TIME", help="Created before."),
        click.option("--allow-large", is_flag=True, help="Past 100,000 tasks."),
        click.option("--yes", is_flag=True, help="Don't ask: act at once."),
        click.pass_obj,
    ]  # fmt: skip
    for option in reversed(options):
        fn = option(fn)
    return fn


@bulk.command("cancel")
@_filters
def cancel(settings: HasApp, **options: Any) -> None:
    """Cancel the unfinished tasks the filter matches."""
    _run(settings, "cancel", **options)


@bulk.command("retry")
@_filters
def retry(settings: HasApp, **options: Any) -> None:
    """Retry the dead, cancelled and upstream-failed tasks the filter matches."""
    _run(settings, "retry", **options)


def _run(settings: HasApp, action: str, *, states: tuple[str, ...], name: str | None,
         group: str | None, workflow_id: int | None, pool: str | None, schedule: str | None,
         created_from: str | None, created_until: str | None, allow_large: bool,
         yes: bool) -> None:  # fmt: skip
    f = TaskFilter(tuple(State(s) for s in states), name, group, workflow_id, pool,
                   moment(created_from, "created-from"), moment(created_until, "created-until"),
                   schedule=schedule)  # fmt: skip
    service = Bulk(reads_of(settings))
    try:
        preview = service.preview(action, f, allow_large=allow_large)  # type: ignore[arg-type]
    except BulkRefused as exc:
        raise click.ClickException(str(exc)) from None
    done_word = "cancelled" if action == "cancel" else "retried"
    if not yes:
        click.confirm(f"{preview.count} task(s) will be {done_word}. Go on?", abort=True)
    done = service.execute(preview)
    asked = f", {done.requested} running asked to stop" if done.requested else ""
    click.echo(f"{done.changed} task(s) {done_word}{asked}; {done.skipped} skipped "
               f"(moved since the count)")  # fmt: skip
