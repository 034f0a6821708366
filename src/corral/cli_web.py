"""`corral web` (the REST API and the dashboard, extra corral[web]) and `corral tokens` (make,
list and revoke the API tokens it accepts). A face: tokens through corral.web.auth."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Protocol

import click
from rich.console import Console
from rich.table import Table

from .app import App
from .errors import ConfigError
from .metrics.server import parse_bind
from .store.contract.access import TokenRow
from .web.auth import ROLES, Tokens, status

DEFAULT_BIND = "127.0.0.1:8686"


class _Settings(Protocol):
    def app(self, *, needs_code: str | None = None) -> App: ...


def _when(at: float | None) -> str:
    return "-" if at is None else datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _row_json(row: TokenRow, now: float) -> dict[str, Any]:
    return {
        "prefix": row.prefix,
        "name": row.name,
        "role": row.role,
        "scope": list(row.scope),
        "status": status(row, now),
        "created_at": row.created_at,
        "expires_at": row.expires_at,
        "revoked_at": row.revoked_at,
        "last_used_at": row.last_used_at,
    }


@click.group(invoke_without_command=True, short_help="Make, list and revoke API tokens.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.pass_context
def tokens(ctx: click.Context, as_json: bool) -> None:
    """The API tokens `corral web` accepts (no secret is shown: only prefixes).

    \b
    Examples:
      corral tokens create --role viewer
      corral tokens create --role operator --groups 'client-7/*' --expires 30d
      corral tokens revoke crl_ab12cd34
    """
    if ctx.invoked_subcommand is not None:
        return
    app = ctx.obj.app()
    now = app.clock.now()
    rows = Tokens(app.store, app.clock).list()
    if as_json:
        click.echo(json.dumps([_row_json(r, now) for r in rows], indent=2))
        return
    table = Table("prefix", "name", "role", "groups", "status", "expires", "last used")
    for r in rows:
        table.add_row(r.prefix, r.name, r.role, ", ".join(r.scope) or "all", status(r, now),
                      _when(r.expires_at), _when(r.last_used_at))  # fmt: skip
    Console(highlight=False).print(table)


@tokens.command("create")
@click.option("--role", type=click.Choice(ROLES), required=True,
              help="viewer reads; operator also acts; admin also configures.")  # fmt: skip
@click.option("--groups", "groups", multiple=True, metavar="PATTERN",
              help="Only these groups: a name or a prefix ending in '*'. Repeatable; "
              "comma-separated lists work too.")  # fmt: skip
@click.option("--expires", metavar="DURATION", help="It stops working after this: 30d, 12h.")
@click.option("--name", help="What the token is for (shown in lists and the audit log).")
@click.pass_obj
def tokens_create(settings: _Settings, role: str, groups: tuple[str, ...], expires: str | None,
                  name: str | None) -> None:  # fmt: skip
    """Make a token and print it, once: it can't be shown again (only its hash is stored)."""
    app = settings.app()
    scope = tuple(g.strip() for text in groups for g in text.split(",") if g.strip())
    try:
        made = Tokens(app.store, app.clock).create(role, name=name, scope=scope, expires=expires)
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from None
    click.echo(made.secret)
    where = ", ".join(made.row.scope) or "every group"
    until = f", until {_when(made.row.expires_at)} UTC" if made.row.expires_at else ""
    click.echo(f"{made.row.prefix}: {made.row.role} of {where}{until}. Keep the token above: "
               "it is not shown again.", err=True)  # fmt: skip


@tokens.command("revoke")
@click.argument("prefix")
@click.pass_obj
def tokens_revoke(settings: _Settings, prefix: str) -> None:
    """Revoke the token of PREFIX (as `corral tokens` lists it): it stops working at once, and
    the dashboard sessions it signed in end."""
    app = settings.app()
    try:
        row = Tokens(app.store, app.clock).revoke(prefix)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="PREFIX") from None
    click.echo(f"revoked {row.prefix} ({row.name})")


@click.command("web", short_help="Serve the REST API and the dashboard.")
@click.option("--bind", default=DEFAULT_BIND, show_default=True, metavar="HOST:PORT",
              help="Where to listen. Only the loopback unless you say otherwise.")  # fmt: skip
@click.option(
    "--public-origin", metavar="URL",
    help="The origin browsers use, behind a proxy: https://corral.example.com.",
)  # fmt: skip
@click.option("--allow-origin", "allowed", multiple=True, metavar="URL",
              help="Another origin that may make unsafe requests. Repeatable.")  # fmt: skip
@click.option(
    "--proxy-headers", "forwarded", metavar="IPS",
    help="Trust X-Forwarded-Proto/For from these proxy addresses (comma-separated).",
)  # fmt: skip
@click.option("--secure-cookies/--no-secure-cookies", default=None,
              help="Mark cookies Secure (default: when the public origin is https).")  # fmt: skip
@click.option("--bulk-max", type=click.IntRange(1), default=100_000, show_default=True,
              help="The most tasks a bulk cancel or retry takes without allow_large.")  # fmt: skip
@click.pass_obj
def web(settings: _Settings, bind: str, public_origin: str | None, allowed: tuple[str, ...],
        forwarded: str | None, secure_cookies: bool | None, bulk_max: int) -> None:  # fmt: skip
    """Serve the REST API (/api/v1) and the dashboard (/) from one process. Run as many as you
    like, on any host, beside the schedulers and workers; each needs only the database.

    \b
    Examples:
      corral web                                   # http://127.0.0.1:8686
      corral --app tasks:app web --bind 127.0.0.1:9000
      corral web --bind 0.0.0.0:8686 --public-origin https://corral.example.com \\
          --proxy-headers 10.0.0.5
    """
    try:
        import uvicorn

        from .web import WebSettings, create_app
    except ImportError as exc:
        raise click.ClickException(
            f"corral web needs the web extra: pip install 'corral[web]' ({exc.name} is missing)"
        ) from None
    try:
        host, port = parse_bind(bind, "--bind")
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="--bind") from None
    for origin in (public_origin, *allowed):
        if origin is not None and not origin.startswith(("http://", "https://")):
            raise click.BadParameter(f"{origin!r} is not an origin such as https://host",
                                     param_hint="--public-origin/--allow-origin")  # fmt: skip
    app = settings.app()
    options = WebSettings(public_origin=public_origin.rstrip("/") if public_origin else None,
                          allowed_origins=allowed, secure_cookies=secure_cookies,
                          bulk_max=bulk_max)  # fmt: skip
    site = create_app(app, options)
    click.echo(f"corral web on http://{host}:{port} (sign in with a token: corral tokens create)",
               err=True)  # fmt: skip
    uvicorn.run(site, host=host, port=port, log_level="warning", access_log=False,
                proxy_headers=forwarded is not None,
                forwarded_allow_ips=forwarded or None)  # fmt: skip
