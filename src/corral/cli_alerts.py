"""`corral alerts` (rules, open incidents, recent notifications and their delivery state),
`corral alerts test CHANNEL`, `corral alerts silence RULE --for 2h`, `corral alerts resolve ID`.
A face: it talks to the App (`app.alerts`)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Protocol

import click
from rich.console import Console
from rich.table import Table

from .app import App
from .errors import ConfigError
from .store.contract.alerts import NotificationRow


class _Settings(Protocol):
    def app(self, *, needs_code: str | None = None) -> App: ...


def _when(at: float | None) -> str:
    return "-" if at is None else datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S")


def delivery(row: NotificationRow) -> str:
    """A notification's delivery state in words: sent, pending, or failing with its error."""
    if row.state == "sent":
        return f"sent {_when(row.sent_at)}" + (f" after {row.tries} tries" if row.tries > 1 else "")
    if row.tries == 0:
        return f"pending (due {_when(row.due_at)})"
    return f"failing: {row.tries} tries, next {_when(row.due_at)}: {row.last_error}"


@click.group(invoke_without_command=True, short_help="Alert rules, incidents, notifications.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True,
              help="Recent notifications shown.")  # fmt: skip
@click.pass_context
def alerts(ctx: click.Context, as_json: bool, limit: int) -> None:
    """List the declared alert rules, the open incidents and the recent notifications with their
    delivery state (docs/alerts.md).

    \b
    Examples:
      corral --app tasks:app alerts
      corral --app tasks:app alerts test oncall-email
      corral --app tasks:app alerts silence nightly-late --for 2h
      corral alerts resolve 42
    """
    if ctx.invoked_subcommand is not None:
        return
    settings: _Settings = ctx.obj
    view = settings.app().alerts.view(limit)
    if as_json:
        click.echo(json.dumps({
            "rules": [{"name": r.name, "kind": r.kind, "channels": list(r.channels),
                       "group_by": list(r.group_by),
                       "silenced_until": view.silences.get(r.name)} for r in view.rules],
            "open": [{"id": i.id, "rule": i.rule, "subject": i.subject, "group": i.group_key,
                      "state": i.state, "summary": i.summary, "opened_at": i.opened_at}
                     for i in view.open],
            "notifications": [{"id": n.id, "incident_id": n.incident_id, "rule": n.rule,
                               "group": n.group_key, "channel": n.channel,
                               "transition": n.transition, "key": n.idempotency_key,
                               "state": n.state, "tries": n.tries, "due_at": n.due_at,
                               "last_error": n.last_error} for n in view.notifications],
        }, indent=2))  # fmt: skip
        return
    console = Console()
    rules = Table(title="rules")
    for column in ("rule", "kind", "channels", "group by", "silenced until"):
        rules.add_column(column)
    for r in view.rules:
        rules.add_row(r.name, r.kind, ", ".join(r.channels), ", ".join(r.group_by) or "(rule)",
                      _when(view.silences.get(r.name)))  # fmt: skip
    console.print(rules)
    incidents = Table(title="open incidents")
    for column in ("id", "rule", "group", "subject", "state", "since", "summary"):
        incidents.add_column(column, overflow="fold")
    for i in view.open:
        incidents.add_row(str(i.id), i.rule, i.group_key or "-", i.subject, i.state,
                          _when(i.opened_at), i.summary)  # fmt: skip
    console.print(incidents)
    sent = Table(title="recent notifications")
    for column in ("id", "incident", "rule", "channel", "transition", "delivery"):
        sent.add_column(column)
    for n in view.notifications:
        sent.add_row(str(n.id), str(n.incident_id), n.rule, n.channel, n.transition, delivery(n))
    console.print(sent)


@alerts.command("test")
@click.argument("channel")
@click.pass_obj
def test_channel(settings: _Settings, channel: str) -> None:
    """Send a test notice through CHANNEL now and say whether it was accepted."""
    app = settings.app(needs_code="corral alerts test")
    try:
        error = app.alerts.test(channel)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    if error is not None:
        raise click.ClickException(f"{channel}: not accepted: {error}")
    click.echo(f"{channel}: accepted")


@alerts.command()
@click.argument("rule")
@click.option("--for", "duration", default="2h", show_default=True,
              help="How long (30m, 2h, 1d; 0 ends the silence).")  # fmt: skip
@click.pass_obj
def silence(settings: _Settings, rule: str, duration: str) -> None:
    """Silence RULE's notices (its incidents are still tracked) until the time given."""
    app = settings.app(needs_code="corral alerts silence")
    try:
        until = app.alerts.silence(rule, duration)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(f"{rule}: silenced until {_when(until)} UTC")


@alerts.command()
@click.argument("incident", type=int)
@click.pass_obj
def resolve(settings: _Settings, incident: int) -> None:
    """Resolve an open INCIDENT by hand (if its condition still holds, a new one opens)."""
    try:
        done = settings.app().alerts.resolve(incident)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(f"incident {incident}: " + ("resolved" if done else "was not open"))
