"""`corral consumers`: the event consumers stored in the database (list), retiring one that no
longer runs, and running the app's own in a process of their own. A face: it talks to the App."""

from __future__ import annotations

import json
import signal
import threading
from typing import Any, Protocol

import click

from .app import App


class _Settings(Protocol):
    def app(self, *, needs_code: str | None = None) -> App: ...


@click.group(invoke_without_command=True, short_help="List, retire or run event consumers.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.pass_context
def consumers(ctx: click.Context, as_json: bool) -> None:
    """List the event consumers stored in the database: who holds each one's lease, and its
    cursor (the last event it read past). Each holds back the pruning of tasks whose events it
    has not read: `corral consumers retire NAME` deletes one that no longer runs.

    \b
    Examples:
      corral consumers
      corral consumers retire old-alerts
      corral --app tasks:app consumers run alerts
    """
    if ctx.invoked_subcommand is not None:
        return
    settings: _Settings = ctx.obj
    app = settings.app()
    now = app.clock.now()
    records = app.consumers.list()
    if as_json:
        rows = [{"name": r.name, "holder": r.holder if r.held(now) else None,
                 "lease_expires_at": r.lease_expires_at if r.held(now) else None,
                 "cursor": {"xid": r.cursor[0], "event_id": r.cursor[1]}}
                for r in records]  # fmt: skip
        click.echo(json.dumps(rows, indent=2))
        return
    for r in records:
        held = f"held by {r.holder} for {r.lease_expires_at - now:.0f}s" if r.held(now) else "idle"
        cursor = f"event {r.cursor[1]}" + (f" (transaction {r.cursor[0]})" if r.cursor[0] else "")
        click.echo(f"{r.name}: {held}; read past {cursor}")
    if not records:
        click.echo("No event consumers stored yet.")


@consumers.command("retire")
@click.argument("name")
@click.pass_obj
def consumers_retire(settings: _Settings, name: str) -> None:
    """Delete the stored consumer NAME and its cursor, so that it stops holding back the pruning
    of finished tasks. Refused while a process runs it. If it runs again later, it starts
    afresh (by default at the events from then on).

    \b
    Example:
      corral consumers retire old-alerts
    """
    settings.app().consumers.retire(name)
    click.echo(f"{name}: retired")


@consumers.command("run")
@click.argument("names", nargs=-1)
@click.pass_obj
def consumers_run(settings: _Settings, names: tuple[str, ...]) -> None:
    """Run the app's event consumers (or those NAMES) in this process until SIGTERM or Ctrl-C.
    Workers run them too; a name is read by one process at a time, whichever holds its lease.

    \b
    Example:
      corral --app tasks:app consumers run alerts metrics
    """
    app = settings.app(needs_code="corral consumers run")
    stop = threading.Event()

    def on_signal(*_: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        app.consumers.run(*names, stop=stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
