"""The `corral` command line: run workers and the scheduler, submit tasks, look at them, cancel and
retry them, migrate the database, and run the demo.

A face: it talks to the App and the store contract only. Every error corral raises on purpose is
printed as one `Error: ...` line (exit 1; 2 for a usage error), never as a traceback.
"""

from __future__ import annotations

import contextlib
import getpass
import importlib
import json
import os
import signal
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import click

from . import __version__
from .cli_metrics import exporting, metrics_options, worker_middleware
from .errors import CorralError, TaskNotFound, TransitionRefused
from .logformat import FORMATS
from .logformat import setup as setup_logging
from .processes import stop_processes, worker_command
from .worker.defaults import HEARTBEAT, LEASE

if TYPE_CHECKING:  # the rest is imported by the commands that use it (start-up: issue 15)
    from .app import App
    from .worker.worker import WorkerConfig

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
SUBMIT_OPTIONS = {"group", "priority", "aging", "dedup_key", "delay", "run_at", "depends_on",
                  "exclusive", "on_upstream_failure"}  # fmt: skip


# -- loading the user's App ---------------------------------------------------------------------


@dataclass
class Settings:
    """The top-level options, and the App they lead to (loaded on first use)."""

    database_url: str | None
    app_spec: str | None
    log_level: str
    log_format: str = "text"
    _app: App | None = None

    def app(self, *, needs_code: str | None = None) -> App:
        """The `--app` App (its URL overridden by --database-url), else a bare App. `needs_code`
        names a command that can't run without task code: it then requires `--app`."""
        from .app import App

        if self._app is None and self.app_spec is None:
            if needs_code:
                raise click.UsageError(f"{needs_code} needs your task code: pass --app "
                                       "module:attribute (or set CORRAL_APP)")  # fmt: skip
            self._app = App(self.database_url)
        elif self._app is None and self.app_spec is not None:
            self._app = load_app(self.app_spec)
            if self.database_url:
                from .store import resolve_url

                self._app.close()
                self._app.url = resolve_url(self.database_url)
        assert self._app is not None
        return self._app


def load_app(spec: str) -> App:
    """Import `module:attribute` (from the current directory too, like uvicorn) as an App."""
    module_name, colon, attr = spec.partition(":")
    if not colon or not module_name.strip() or not attr.strip():
        raise click.UsageError(f"--app {spec!r} is not of the form module:attribute "
                               "(e.g. myproject.tasks:app)")  # fmt: skip
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        missing = getattr(exc, "name", None)
        if isinstance(exc, ModuleNotFoundError) and missing and (
                module_name + ".").startswith(missing + "."):  # fmt: skip
            raise click.UsageError(f"--app {spec!r}: no module named {missing!r} "
                                   f"(looked in {cwd} and sys.path)") from None  # fmt: skip
        raise click.ClickException(f"--app {spec!r}: importing it failed: {_where(exc)}") from None
    from .app import App

    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise click.UsageError(f"--app {spec!r}: module {module_name!r} has no {attr!r}")
        obj = getattr(obj, part)
    if not isinstance(obj, App):
        raise click.UsageError(
            f"--app {spec!r} is not a corral.App (it is a {type(obj).__name__!r})"
        )
    return obj


def _where(exc: BaseException) -> str:
    """`ExcType: message (file:line)`: enough to find the problem without a traceback."""
    text = f"{type(exc).__name__}: {exc}"
    frames = traceback.extract_tb(exc.__traceback__)
    if isinstance(exc, SyntaxError) or not frames:
        return text
    return f"{text} ({frames[-1].filename}:{frames[-1].lineno})"


# -- the group ----------------------------------------------------------------------------------


LAZY_COMMANDS = {
    "alerts": "cli_alerts:alerts",
    "backfill": "cli_schedules:backfill",
    "backfills": "cli_schedules:backfills",
    "bulk": "cli_bulk:bulk",
    "consumers": "cli_consumers:consumers",
    "schedules": "cli_schedules:schedules",
    "status": "cli_reads:status",
    "tasks": "cli_reads:tasks",
    "tokens": "cli_web:tokens",
    "web": "cli_web:web",
}
"""Commands whose module (under corral) is imported only when they run or `--help` lists them:
`corral worker` doesn't import the web, the schedules' or the alerts' command line."""


class CorralGroup(click.Group):
    """Turns the errors corral raises on purpose into one `Error:` line and exit code 1; the
    commands of LAZY_COMMANDS are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        spec = LAZY_COMMANDS.get(cmd_name)
        if spec is not None and cmd_name not in self.commands:
            module, attr = spec.split(":")
            command = getattr(importlib.import_module(f".{module}", __package__), attr)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CorralError as exc:  # DatabaseError too: no driver's exception leaves a store
            raise click.ClickException(str(exc)) from None


@click.group(cls=CorralGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--database-url", envvar="CORRAL_DATABASE_URL", show_envvar=True, metavar="URL",
    help="sqlite:///path.db, a plain file path, or postgresql://user@host/db. "
    "Overrides the App's own URL. [default: ./corral.db]",
)  # fmt: skip
@click.option(
    "--app", "app_spec", envvar="CORRAL_APP", show_envvar=True, metavar="MODULE:ATTR",
    help="Your corral.App, e.g. myproject.tasks:app (imported from the current directory too).",
)  # fmt: skip
@click.option(
    "--log-level", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    default="INFO", show_default=True, envvar="CORRAL_LOG_LEVEL",
    help="Logging of the long-running commands (worker, scheduler, run).",
)  # fmt: skip
@click.option(
    "--log-format", type=click.Choice(FORMATS), default="text", show_default=True,
    envvar="CORRAL_LOG_FORMAT", help="json: one object a line, with each attempt's fields.",
)  # fmt: skip
@click.version_option(__version__, prog_name="corral")
@click.pass_context
def cli(ctx: click.Context, database_url: str | None, app_spec: str | None, log_level: str,
        log_format: str) -> None:  # fmt: skip
    """corral: a durable, fair task manager.

    \b
    First steps:
      corral demo                        # see it work, nothing to set up
      corral --app tasks:app run         # a scheduler and a worker in one process
      corral --app tasks:app submit load_table orders --group pipeline-42
      corral status                      # groups, workers, latest tasks
    """
    settings = Settings(database_url, app_spec, log_level.upper(), log_format)
    ctx.obj = settings
    ctx.call_on_close(lambda: settings._app.close() if settings._app else None)


def main() -> None:
    """The `corral` console script."""
    cli(prog_name="corral")


def _setup_logging(settings: Settings) -> None:
    setup_logging(settings.log_level, settings.log_format)


def _worker_config(
    app: App,
    pools: tuple[str, ...],
    concurrency: int,
    grace: float,
    lease: float | None = None,
    heartbeat: float | None = None,
) -> WorkerConfig:
    """By default a worker serves every pool the app's task types use. A heartbeat must come
    well within the lease: by default a third of it (at most the WorkerConfig default)."""
    from .model import DEFAULT_POOL
    from .worker.worker import WorkerConfig

    pools = pools or app.registry.pools() or (DEFAULT_POOL,)
    config = WorkerConfig(pools=pools, concurrency=concurrency, grace=grace)
    if lease is not None:
        config.lease = lease
    if heartbeat is not None:
        config.heartbeat = heartbeat
    elif lease is not None:
        config.heartbeat = min(config.heartbeat, lease / 3)
    if config.heartbeat >= config.lease:
        raise click.BadParameter(
            f"the heartbeat ({config.heartbeat:g}s) must be shorter than the lease "
            f"({config.lease:g}s)",
            param_hint="'--heartbeat'",
        )
    return config


pool_option = click.option(
    "--pool", "pools", multiple=True, metavar="NAME",
    help="A pool to serve (repeatable). [default: every pool the app's task types use]",
)  # fmt: skip
concurrency_option = click.option(
    "--concurrency", type=click.IntRange(min=1), default=8, show_default=True,
    help="Tasks run at once by each worker process.",
)  # fmt: skip
grace_option = click.option(
    "--grace", type=click.FloatRange(min=0), default=10.0, show_default=True,
    help="On stop: seconds running tasks may take to finish before they are released.",
)  # fmt: skip
lease_option = click.option(
    "--lease", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
    help="A task whose worker is silent this long is given to another worker. "
    f"[default: {LEASE:g}]",
)  # fmt: skip
heartbeat_option = click.option(
    "--heartbeat", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
    help="Seconds between heartbeats (they extend the leases and pick up cancel requests); "
    f"shorter than --lease. [default: {HEARTBEAT:g}, at most a third of --lease]",
)  # fmt: skip


# -- running: worker, scheduler, run ------------------------------------------------------------


@cli.command()
@pool_option
@concurrency_option
@grace_option
@lease_option
@heartbeat_option
@metrics_options(worker=True)
@click.pass_obj
def worker(settings: Settings, pools: tuple[str, ...], concurrency: int, grace: float,
           lease: float | None, heartbeat: float | None, metrics_bind: str | None,
           metrics_cluster: bool, metrics_groups: str) -> None:  # fmt: skip
    """Run a worker: claim tasks of its pools, run them, report. Stops on SIGTERM/SIGINT, letting
    running tasks finish within --grace.

    \b
    Examples:
      corral --app tasks:app worker
      corral --app tasks:app worker --pool ingest --pool default --concurrency 16
      corral --app tasks:app worker --lease 30 --heartbeat 5
      corral --app tasks:app worker --metrics-bind 0.0.0.0:9464
    """
    from .worker.heartbeat import prestart

    # The heartbeat companion starts now, in parallel with importing the app and setting up:
    # the worker waits for its first renewal before its first claim (docs/guarantees.md).
    prestart(settings.database_url)
    app = settings.app(needs_code="a worker")
    config = _worker_config(app, pools, concurrency, grace, lease, heartbeat)
    _setup_logging(settings)
    app.store  # noqa: B018 - open it now, so that a bad URL fails before anything starts
    with exporting(app, metrics_bind, metrics_groups, cluster=metrics_cluster, worker=True) as ex:
        config.middleware = (*config.middleware, *worker_middleware(ex, settings.log_format))
        from .worker.worker import run_worker

        run_worker(app, config)


fast_lane_option = click.option(
    "--fast-lane/--no-fast-lane", default=True, show_default=True,
    help="Admit a single submit in its own write when its pool has free slots and nothing "
    "waits (see docs/architecture.md); --no-fast-lane: every admission waits for a round.",
)  # fmt: skip


@cli.command()
@metrics_options(worker=False)
@fast_lane_option
@click.pass_obj
def scheduler(
    settings: Settings, metrics_bind: str | None, metrics_groups: str, fast_lane: bool
) -> None:
    """Run a scheduler until SIGTERM/SIGINT. Any number may run: one leads, the others stand by
    and take over within seconds.

    \b
    Example:
      corral --database-url sqlite:///corral.db scheduler
    """
    from .scheduler.service import Scheduler, SchedulerConfig

    _setup_logging(settings)
    app = settings.app()
    service = Scheduler(
        app.store,
        SchedulerConfig(fast_lane=fast_lane),
        clock=app.clock,
        services=[*app.schedules.services(), *app.alerts.services()],
    )
    exports = exporting(app, metrics_bind, metrics_groups, cluster=True, worker=False)
    with exports as exporter, _on_stop_signals(service.stop):
        if exporter is not None:
            exporter.add_scheduler(service)
        service.run()


@cli.command(short_help="Run a scheduler and worker(s) in one process.")
@pool_option
@concurrency_option
@grace_option
@lease_option
@heartbeat_option
@click.option(
    "--processes", type=click.IntRange(min=1), default=1, show_default=True,
    help="Worker processes in all: this one plus N-1 `corral worker` children.",
)  # fmt: skip
@metrics_options(worker=False)
@fast_lane_option
@click.pass_obj
def run(settings: Settings, pools: tuple[str, ...], concurrency: int, grace: float,
        lease: float | None, heartbeat: float | None, processes: int,
        metrics_bind: str | None, metrics_groups: str, fast_lane: bool) -> None:  # fmt: skip
    """Run a scheduler and a worker in one process (plus worker processes with --processes).
    Stops them all on SIGTERM/SIGINT.

    \b
    Examples:
      corral --app tasks:app run
      corral --app tasks:app run --processes 4 --concurrency 16
    """
    from .worker.heartbeat import prestart

    prestart(settings.database_url)  # as `corral worker` does
    app = settings.app(needs_code="corral run")
    config = _worker_config(app, pools, concurrency, grace, lease, heartbeat)
    _setup_logging(settings)
    from .scheduler.service import Scheduler, SchedulerConfig

    service = Scheduler(
        app.store,
        SchedulerConfig(fast_lane=fast_lane),
        clock=app.clock,
        services=[*app.schedules.services(), *app.alerts.services()],
    )
    stop = threading.Event()
    children: list[subprocess.Popen[bytes]] = []
    thread = threading.Thread(target=service.run, name="corral-scheduler", daemon=True)
    exports = exporting(app, metrics_bind, metrics_groups, cluster=True, worker=True)
    with exports as exporter, _on_stop_signals(stop.set):
        config.middleware = (*config.middleware, *worker_middleware(exporter, settings.log_format))
        if exporter is not None:
            exporter.add_scheduler(service)
        try:
            command = worker_command(
                app.url, settings.app_spec or "", settings.log_level, settings.log_format
            )
            command += ["--concurrency", str(concurrency), "--grace", str(grace)]
            command += ["--lease", str(config.lease), "--heartbeat", str(config.heartbeat)]
            command += [arg for pool in pools for arg in ("--pool", pool)]
            children = [subprocess.Popen(command) for _ in range(processes - 1)]
            thread.start()
            import asyncio

            asyncio.run(_serve(app, config, stop))
        finally:
            _install_stop_handlers(lambda *_: None)  # asyncio.run reset them: stay up to clean up
            service.stop()
            stop_processes(children, timeout=grace + 5)
            if thread.is_alive():
                thread.join(timeout=10)


async def _serve(app: App, config: WorkerConfig, stop: threading.Event) -> None:
    """A worker on this loop that drains on SIGTERM/SIGINT (or at once if `stop` was set)."""
    import asyncio

    from .worker.worker import Worker

    runner = Worker.of(app, config)
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, runner.request_stop)
    if stop.is_set():
        runner.request_stop()
    await runner.run()


def _install_stop_handlers(handler: Callable[..., None]) -> dict[int, Any]:
    return {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}


@contextlib.contextmanager
def _on_stop_signals(stop: Callable[[], None]) -> Iterator[None]:
    previous = _install_stop_handlers(lambda *_: stop())
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# -- submit -------------------------------------------------------------------------------------


def _json_or_text(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


@cli.command()
@click.argument("task_name")
@click.argument("args", nargs=-1)
@click.option("--kwargs", "kwargs_json", metavar="JSON", help='Keyword arguments: {"k": 1}.')
@click.option("--group", default="default", show_default=True, help="The task's group.")
@click.option("--priority", type=click.IntRange(min=0), help="Base priority (>= 0).")
@click.option("--dedup-key", help="At most one unfinished task per key.")
@click.option("--delay", metavar="DURATION", help="Start no sooner than this: 30, 30s, 5m, 1h.")
@click.option("--depends-on", type=int, multiple=True, metavar="ID", help="Repeatable.")
@click.option("--exclusive", is_flag=True, help="Run alone in its group.")
@click.option(
    "--on-upstream-failure",
    type=click.Choice(["fail", "run"]),
    help="If a dependency ends dead or cancelled: fail too, or run anyway.",
)
@click.pass_obj
def submit(settings: Settings, task_name: str, args: tuple[str, ...], kwargs_json: str | None,
           group: str, priority: int | None, dedup_key: str | None, delay: str | None,
           depends_on: tuple[int, ...], exclusive: bool,
           on_upstream_failure: str | None) -> None:  # fmt: skip
    """Submit TASK_NAME with ARGS and print its id. Each ARG is parsed as JSON, else taken as a
    plain string (put `--` before negative numbers).

    \b
    Examples:
      corral --app tasks:app submit load_table orders --group pipeline-42 --priority 5
      corral --app tasks:app submit add 1 2 --kwargs '{"scale": 10}' --delay 30s
      corral --app tasks:app submit refresh --depends-on 41 --depends-on 42
    """
    task_type = settings.app(needs_code="submit").task_type(task_name)
    kwargs = {} if kwargs_json is None else _json_or_text(kwargs_json)
    if not isinstance(kwargs, dict):
        raise click.BadParameter("must be a JSON object", param_hint="'--kwargs'")
    if SUBMIT_OPTIONS & set(kwargs):
        raise click.BadParameter(f"{sorted(SUBMIT_OPTIONS & set(kwargs))} are submit options, "
                                 "not task arguments", param_hint="'--kwargs'")  # fmt: skip
    options: dict[str, Any] = {"group": group, "dedup_key": dedup_key, "depends_on": depends_on,
                               "exclusive": exclusive,
                               "on_upstream_failure": on_upstream_failure}  # fmt: skip
    options |= {"priority": priority} if priority is not None else {}
    options |= {"delay": delay} if delay is not None else {}
    click.echo(task_type.submit(*[_json_or_text(a) for a in args], **options, **kwargs))


# -- status -------------------------------------------------------------------------------------


@cli.group(invoke_without_command=True, short_help="Show or configure groups.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.pass_context
def groups(ctx: click.Context, as_json: bool) -> None:
    """Show each group with unfinished tasks or settings: its tasks by state (ready, running,
    ...), its cap, weight and rate limit, its share of the slots held now and its fair share,
    and the mean, p95 and max queue wait of the tasks it started in the last 15 minutes.
    `corral groups configure` changes a group's settings.

    \b
    Examples:
      corral groups
      corral groups --json
      corral groups configure pipeline-42 --max-parallel 5 --rate-limit 100/minute
    """
    if ctx.invoked_subcommand is not None:
        return
    from rich.console import Console

    from .cli_reads import reads_of
    from .views import groups_table

    settings: Settings = ctx.obj
    figures = reads_of(settings).groups()
    paused = {p.name: p for p in settings.app().groups.paused()}
    if as_json:
        click.echo(json.dumps([asdict(g) | {"active": g.active, "paused": g.group in paused}
                               for g in figures], indent=2))  # fmt: skip
        return
    out = Console()
    out.print(groups_table(figures) if figures else "[dim]No unfinished tasks.[/]")
    for p in paused.values():
        out.print(
            f"[yellow]paused[/] {p.name} by {p.paused_by}" + (f": {p.reason}" if p.reason else "")
        )


@groups.command("pause")
@click.argument("name")
@click.option("--reason", help="Why, for whoever looks next (shown by `corral groups`).")
@click.pass_obj
def groups_pause(settings: Settings, name: str, reason: str | None) -> None:
    """Admit none of a group's tasks until `corral groups resume NAME`: its ready tasks stay
    ready, what runs (or was admitted) finishes, and its alert rules are muted.

    \b
    Examples:
      corral groups pause crm-sync --reason "vendor API down until 14:00"
    """
    try:
        by = f"cli:{getpass.getuser()}"
    except (OSError, KeyError):  # no login name (a container's uid without a passwd entry)
        by = f"cli:uid {os.getuid()}"
    if settings.app().groups.pause(name, by=by, reason=reason):
        click.echo(f"{name}: paused")
    else:
        click.echo(f"{name}: already paused")


@groups.command("resume")
@click.argument("name")
@click.pass_obj
def groups_resume(settings: Settings, name: str) -> None:
    """Admit a paused group's tasks again, from the scheduler's next round."""
    resumed = settings.app().groups.resume(name)
    click.echo(f"{name}: resumed" if resumed else f"{name}: was not paused")


@groups.command("configure")
@click.argument("name", required=False)
@click.option("--defaults", is_flag=True, help="Set the defaults of groups never configured.")
@click.option("--max-parallel", type=int, help="At most this many admitted or running at once.")
@click.option("--weight", type=float, default=1.0, show_default=True,
              help="Its share of contended slots, against other groups' weights.")  # fmt: skip
@click.option("--rate-limit", metavar="RATE", help="At most RATE admissions: 100/minute, 5/s.")
@click.option("--burst", type=float, help="Tokens the rate limit's bucket holds (default 1).")
@click.pass_obj
def groups_configure(settings: Settings, name: str | None, defaults: bool,
                     max_parallel: int | None, weight: float, rate_limit: str | None,
                     burst: float | None) -> None:  # fmt: skip
    """Set a group's settings (all of them: an option left out takes its default), or with
    --defaults those of every group never configured. They take effect at the scheduler's
    next round.

    \b
    Examples:
      corral groups configure pipeline-42 --max-parallel 5 --weight 2
      corral groups configure crm-sync --rate-limit 100/minute --burst 10
      corral groups configure --defaults --max-parallel 3
    """
    if defaults == (name is not None):
        raise click.UsageError("give a group NAME, or --defaults (not both)")
    app = settings.app()
    if name is None:
        app.groups.set_defaults(max_parallel=max_parallel, weight=weight, rate_limit=rate_limit,
                                burst=burst)  # fmt: skip
    else:
        app.groups.configure(name, max_parallel=max_parallel, weight=weight,
                             rate_limit=rate_limit, burst=burst)  # fmt: skip
    click.echo(f"{name or 'defaults'}: {app.groups.get(name) if name else app.groups.defaults()}")


@cli.group("rate-limits", invoke_without_command=True, short_help="Show or set named rate limits.")
@click.pass_context
def rate_limits(ctx: click.Context) -> None:
    """Show the named rate limits that task types draw on (`@app.task(rate_key="crm")`), or
    set and remove them. Groups' own limits: `corral groups configure NAME --rate-limit`.

    \b
    Examples:
      corral rate-limits
      corral rate-limits configure crm 100/minute --burst 10
      corral rate-limits remove crm
    """
    if ctx.invoked_subcommand is not None:
        return
    settings: Settings = ctx.obj
    limits = settings.app().rate_limits.list()
    for key, rate in sorted(limits.items()):
        click.echo(f"{key}: {rate.spec} (burst {rate.burst:g})")
    if not limits:
        click.echo("No named rate limits.")


@rate_limits.command("configure")
@click.argument("key")
@click.argument("rate")
@click.option("--burst", type=float, help="Tokens the bucket holds (default 1).")
@click.pass_obj
def rate_limits_configure(settings: Settings, key: str, rate: str, burst: float | None) -> None:
    """Create or replace the named rate limit KEY: at most RATE admissions (100/minute, 5/s)
    of the tasks that draw on it, across all workers and hosts.

    \b
    Example:
      corral rate-limits configure crm 100/minute --burst 10
    """
    settings.app().rate_limits.configure(key, rate, burst=burst)
    click.echo(f"{key}: {rate}")


@rate_limits.command("remove")
@click.argument("key")
@click.pass_obj
def rate_limits_remove(settings: Settings, key: str) -> None:
    """Remove the named rate limit KEY: its tasks are no longer limited by it.

    \b
    Example:
      corral rate-limits remove crm
    """
    settings.app().rate_limits.remove(key)
    click.echo(f"{key}: removed")


@cli.command(short_help="Say what holds a task back.")
@click.argument("target")
@click.argument("when", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.pass_obj
def why(settings: Settings, target: str, when: str | None, as_json: bool) -> None:
    """Say what holds task TARGET back: its dependencies or delay, its group's cap, a rate limit,
    an exclusive task of its group, no live worker for its pool, or the tasks of a higher level
    ahead of it. The same rules as the scheduler's, read from the store. With a schedule's name,
    say why its fire at WHEN (ISO, the schedule's zone unless it says; default: the latest
    skipped or missed fire) was skipped or missed, or ran.

    \b
    Examples:
      corral why 42
      corral why nightly-orders 2026-11-28T02:00
    """
    from rich.console import Console

    from .cli_schedules import why_fire
    from .scheduler.why import why as explain_task
    from .views import state_markup

    if not target.isdigit():
        click.echo(why_fire(settings.app(), target, when))
        return
    task_id = int(target)
    record, reasons = explain_task(settings.app().store, task_id, settings.app().clock.now())
    if as_json:
        payload = {"task": task_id, "state": str(record.state),
                   "reasons": [asdict(r) for r in reasons]}  # fmt: skip
        click.echo(json.dumps(payload, indent=2))
        return
    out = Console()
    out.print(f"Task {task_id} ({record.name}, group {record.group}, pool {record.pool}) is "
              f"{state_markup(record.state)}, level {record.level}:")  # fmt: skip
    for reason in reasons:
        out.print(f"  - {reason.text}", markup=False, highlight=False)


# -- cancel, retry, migrate ---------------------------------------------------------------------


@cli.command()
@click.argument("task_ids", type=int, nargs=-1)
@click.option("--workflow", "workflows", type=int, multiple=True, metavar="ID",
              help="Cancel every unfinished task of this workflow (repeatable).")  # fmt: skip
@click.pass_obj
def cancel(settings: Settings, task_ids: tuple[int, ...], workflows: tuple[int, ...]) -> None:
    """Cancel tasks, or whole workflows. One not started ends at once; a running one is
    interrupted by its worker, which then runs the task type's on_cancel. Exit code 1 if one
    can't be cancelled.

    \b
    Examples:
      corral cancel 42 43
      corral cancel --workflow 7
    """
    if not task_ids and not workflows:
        raise click.UsageError("give task ids, or --workflow ID")
    app = settings.app()
    if workflows:
        _cancel_workflows(app, workflows)

    def one(task_id: int) -> str:
        if app.cancel(task_id) is not None:
            return "cancelled"
        return f"cancel requested (running on worker {app.get(task_id).worker_id or '?'})"

    _for_each(task_ids, one)


@cli.command(short_help="Run ended tasks again, with a fresh retry budget.")
@click.argument("task_ids", type=int, nargs=-1, required=True)
@click.pass_obj
def retry(settings: Settings, task_ids: tuple[int, ...]) -> None:
    """Run dead, cancelled or upstream_failed tasks again, with a fresh retry budget. Exit code 1
    if one can't be retried.

    \b
    Example:
      corral retry 42
    """
    app = settings.app()

    def one(task_id: int) -> str:
        before = app.get(task_id).state
        app.retry(task_id)
        return f"retried (was {before}), ready to run again"

    _for_each(task_ids, one)


def _cancel_workflows(app: App, workflow_ids: Sequence[int]) -> None:
    """Cancel each workflow in one transaction; exit code 1 if one does not exist."""
    failed = False
    for workflow_id in workflow_ids:
        try:
            stopped, asked = app.cancel_workflow(workflow_id)
        except TaskNotFound as exc:
            click.echo(f"Error: {exc}", err=True)
            failed = True
            continue
        if stopped or asked:
            click.echo(f"workflow {workflow_id}: {stopped} task(s) cancelled, "
                       f"{asked} running task(s) asked to stop")  # fmt: skip
        else:
            click.echo(f"workflow {workflow_id}: nothing to cancel, every task already ended")
    if failed:
        sys.exit(1)


def _for_each(task_ids: Sequence[int], action: Callable[[int], str]) -> None:
    """Apply `action` to each task, print what it says; exit code 1 if one was refused."""
    failed = False
    for task_id in task_ids:
        try:
            click.echo(f"task {task_id}: {action(task_id)}")
        except (TaskNotFound, TransitionRefused) as exc:
            click.echo(f"Error: {exc}", err=True)
            failed = True
    if failed:
        sys.exit(1)


@cli.command(short_help="Apply the database migrations not yet applied.")
@click.pass_obj
def migrate(settings: Settings) -> None:
    """Apply the database migrations not yet applied (the SQLite store also does it on open).

    \b
    Example:
      corral --database-url postgresql://corral@db/corral migrate
    """
    from .store import open_store

    url = settings.app().url
    store = open_store(url, migrate=False)
    try:
        applied = store.migrate()
    finally:
        store.close()
    done = f"applied migration(s) {', '.join(map(str, applied))}" if applied else "up to date"
    click.echo(f"{url}: {done}")


# -- demo ---------------------------------------------------------------------------------------


@cli.command(short_help="Watch corral run a compressed day of pipelines (start here).")
@click.option("--database-url", "demo_url", default="sqlite:///corral-demo.db", show_default=True,
              help="A SQLite file, recreated at start (if it holds only demo tasks).")  # fmt: skip
@click.option("--scale", type=click.FloatRange(min=0.05, max=10), default=1.0, show_default=True,
              help="Multiplies the number of tasks (about 620 at 1).")  # fmt: skip
@click.option("--workers", type=click.IntRange(min=1, max=32), default=2, show_default=True,
              help="Worker processes.")  # fmt: skip
@concurrency_option
@click.option("--time-scale", type=click.FloatRange(min=0.1, max=20), default=1.0,
              show_default=True, help="Multiplies every run time and arrival time.")  # fmt: skip
def demo(demo_url: str, scale: float, workers: int, concurrency: int, time_scale: float) -> None:
    """Watch corral run a compressed day of data pipelines: a 300-task pipeline, medium and
    small ones with caps, retries, a task that dies, a resumable sliced load and a cancelled
    query. Nothing to set up; takes about 20 seconds. Exit code 0 if all ended as expected.

    \b
    Examples:
      corral demo
      corral demo --scale 0.2 --workers 1
    """
    from rich.console import Console

    from .demo import render_summary, run_demo

    out = Console()
    summary = run_demo(demo_url, scale, workers, concurrency=concurrency, time_scale=time_scale,
                       console=out)  # fmt: skip
    out.print(render_summary(summary))
    if not summary.ok:
        raise click.ClickException("the demo did not end as expected")


__all__ = ["cli", "load_app", "main", "stop_processes", "worker_command"]
