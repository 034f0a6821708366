"""The `corral` command line: run workers and the scheduler, submit tasks, look at them, cancel and
retry them, migrate the database, and run the demo.

A face: it talks to the App and the store contract only. Every error corral raises on purpose is
printed as one `Error: ...` line (exit 1; 2 for a usage error), never as a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from . import __version__
from .app import App
from .codec import loads
from .errors import CorralError, TaskNotFound, TransitionRefused
from .lifecycle import State
from .model import (
    DEFAULT_POOL,
    AttemptRecord,
    Event,
    GroupStats,
    LogLine,
    TaskQuery,
    TaskRecord,
    WorkerRecord,
)
from .scheduler.service import Scheduler
from .store import open_store, resolve_url
from .worker.worker import Worker, WorkerConfig, run_worker

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
STATE_STYLES = {
    State.SUCCEEDED: "green",
    State.DEAD: "bold red",
    State.CANCELLED: "yellow",
    State.UPSTREAM_FAILED: "magenta",
    State.RUNNING: "cyan",
    State.RETRY_WAIT: "red",
}
GROUP_COLUMNS = ("waiting", "ready", "admitted", "running", "retry_wait", "succeeded", "dead",
                 "cancelled")  # fmt: skip


# -- loading the user's App --------------------------------------------------------------------


@dataclass
class Settings:
    """The top-level options, and the App they lead to (loaded on first use)."""

    database_url: str | None
    app_spec: str | None
    log_level: str
    _app: App | None = None

    def app(self, *, needs_code: str | None = None) -> App:
        """The user's App (`--app`), else a bare App on the database URL. `needs_code` names a
        command that can't run without task code: it then requires `--app`."""
        if self._app is None:
            if self.app_spec is None:
                if needs_code:
                    raise click.UsageError(
                        f"{needs_code} needs your task code: pass --app module:attribute "
                        "(or set CORRAL_APP), e.g. --app myproject.tasks:app"
                    )
                self._app = App(self.database_url)
            else:
                self._app = load_app(self.app_spec)
                if self.database_url:
                    self._app.close()
                    self._app.url = resolve_url(self.database_url)
        return self._app

    def url(self) -> str:
        return self.app().url if self.app_spec else resolve_url(self.database_url)


def load_app(spec: str) -> App:
    """Import `module:attribute` (from the current directory too, like uvicorn) as an App."""
    module_name, colon, attr = spec.partition(":")
    if not colon or not module_name.strip() or not attr.strip():
        raise click.UsageError(
            f"--app {spec!r} is not of the form module:attribute (e.g. myproject.tasks:app)"
        )
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise click.UsageError(
                f"--app {spec!r}: no module named {module_name!r} (looked in {cwd} and sys.path)"
            ) from None
        raise click.ClickException(f"--app {spec!r}: importing it failed: {_where(exc)}") from None
    except Exception as exc:
        raise click.ClickException(f"--app {spec!r}: importing it failed: {_where(exc)}") from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise click.UsageError(f"--app {spec!r}: module {module_name!r} has no {attr!r}")
        obj = getattr(obj, part)
    if not isinstance(obj, App):
        raise click.UsageError(
            f"--app {spec!r} is a {type(obj).__name__}, not a corral.App (app = corral.App())"
        )
    return obj


def _where(exc: BaseException) -> str:
    """`ExcType: message (file:line)`: enough to find the problem without a traceback."""
    text = f"{type(exc).__name__}: {exc}"
    frames = traceback.extract_tb(exc.__traceback__)
    if isinstance(exc, SyntaxError):
        return text
    return f"{text} ({frames[-1].filename}:{frames[-1].lineno})" if frames else text


# -- the group ---------------------------------------------------------------------------------


class CorralGroup(click.Group):
    """Turns the errors corral raises on purpose into one `Error:` line and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CorralError as exc:
            raise click.ClickException(str(exc)) from None
        except sqlite3.Error as exc:
            raise click.ClickException(f"database error: {exc}") from None


@click.group(cls=CorralGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--database-url",
    envvar="CORRAL_DATABASE_URL",
    show_envvar=True,
    metavar="URL",
    help="sqlite:///path.db, a plain file path, or postgresql://user@host/db. "
    "Overrides the App's own URL. [default: ./corral.db]",
)
@click.option(
    "--app",
    "app_spec",
    envvar="CORRAL_APP",
    show_envvar=True,
    metavar="MODULE:ATTR",
    help="Your corral.App, e.g. myproject.tasks:app (imported from the current directory too).",
)
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    default="INFO",
    show_default=True,
    envvar="CORRAL_LOG_LEVEL",
    help="Logging of the long-running commands (worker, scheduler, run).",
)
@click.version_option(__version__, prog_name="corral")
@click.pass_context
def cli(ctx: click.Context, database_url: str | None, app_spec: str | None, log_level: str) -> None:
    """corral: a durable, fair task manager.

    \b
    First steps:
      corral demo                                   # see it work, nothing to set up
      corral --app tasks:app run                    # scheduler + worker in one process
      corral --app tasks:app submit load_table '"orders"' --group pipeline-42
      corral status                                 # groups, workers, latest tasks
    """
    settings = Settings(database_url, app_spec, log_level.upper())
    ctx.obj = settings
    ctx.call_on_close(lambda: settings._app.close() if settings._app else None)


def main() -> None:
    """The `corral` console script."""
    cli(prog_name="corral")


def _setup_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s"
    )


def _default_pools(app: App) -> tuple[str, ...]:
    return tuple(sorted({t.pool for t in app.tasks.values()})) or (DEFAULT_POOL,)


pool_option = click.option(
    "--pool",
    "pools",
    multiple=True,
    metavar="NAME",
    help="A pool to serve (repeatable). [default: every pool the app's task types use]",
)
concurrency_option = click.option(
    "--concurrency", type=click.IntRange(min=1), default=8, show_default=True,
    help="Tasks run at once by each worker process.",
)  # fmt: skip
grace_option = click.option(
    "--grace", type=click.FloatRange(min=0), default=10.0, show_default=True,
    help="On stop: seconds running tasks may take to finish before they are released.",
)  # fmt: skip


# -- running: worker, scheduler, run ------------------------------------------------------------


@cli.command()
@pool_option
@concurrency_option
@grace_option
@click.pass_obj
def worker(settings: Settings, pools: tuple[str, ...], concurrency: int, grace: float) -> None:
    """Run a worker: claim tasks of its pools, run them, report. Stops on SIGTERM/SIGINT, letting
    running tasks finish within --grace.

    \b
    Examples:
      corral --app tasks:app worker
      corral --app tasks:app worker --pool ingest --pool default --concurrency 16
    """
    app = settings.app(needs_code="a worker")
    _setup_logging(settings)
    app.store  # noqa: B018 - open now, so a bad URL fails before anything starts
    config = WorkerConfig(pools=pools or _default_pools(app), concurrency=concurrency, grace=grace)
    run_worker(app, config)


@cli.command()
@click.pass_obj
def scheduler(settings: Settings) -> None:
    """Run a scheduler until SIGTERM/SIGINT. Any number may run: one leads, the others stand by
    and take over within seconds.

    \b
    Example:
      corral --database-url sqlite:///corral.db scheduler
    """
    _setup_logging(settings)
    service = Scheduler(settings.app().store)
    with _on_stop_signals(service.stop):
        service.run()


@cli.command()
@pool_option
@concurrency_option
@grace_option
@click.option(
    "--processes", type=click.IntRange(min=1), default=1, show_default=True,
    help="Worker processes in all: this one plus N-1 `corral worker` children.",
)  # fmt: skip
@click.pass_obj
def run(
    settings: Settings, pools: tuple[str, ...], concurrency: int, grace: float, processes: int
) -> None:
    """Run a scheduler and a worker in one process (plus extra worker processes with
    --processes). Stops everything on SIGTERM/SIGINT.

    \b
    Examples:
      corral --app tasks:app run
      corral --app tasks:app run --processes 4 --concurrency 16
    """
    app = settings.app(needs_code="corral run")
    _setup_logging(settings)
    service = Scheduler(app.store)
    config = WorkerConfig(pools=pools or _default_pools(app), concurrency=concurrency, grace=grace)
    stop = threading.Event()
    children: list[subprocess.Popen[bytes]] = []
    thread = threading.Thread(target=service.run, name="corral-scheduler", daemon=True)
    with _on_stop_signals(stop.set):
        try:
            child_args = ["--concurrency", str(concurrency), "--grace", str(grace)]
            for pool in pools:
                child_args += ["--pool", pool]
            command = worker_command(app.url, settings.app_spec or "", settings.log_level)
            children = [subprocess.Popen(command + child_args) for _ in range(processes - 1)]
            thread.start()
            asyncio.run(_serve(app, config, stop))
        finally:
            _install_stop_handlers(lambda *_: None)  # asyncio.run reset them: stay up to clean up
            service.stop()
            stop_processes(children, timeout=grace + 5)
            if thread.is_alive():
                thread.join(timeout=10)


async def _serve(app: App, config: WorkerConfig, stop: threading.Event) -> None:
    """A worker on this loop that drains on SIGTERM/SIGINT (or if `stop` was set before)."""
    runner = Worker(app, config)
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, runner.request_stop)
    if stop.is_set():
        runner.request_stop()
    await runner.run()


def worker_command(database_url: str, app_spec: str, log_level: str = "WARNING") -> list[str]:
    """The command line of a `corral worker` child process (add worker options after it)."""
    return [sys.executable, "-m", "corral", "--database-url", database_url, "--app", app_spec,
            "--log-level", log_level, "worker"]  # fmt: skip


def stop_processes(processes: Sequence[subprocess.Popen[Any]], timeout: float) -> None:
    """SIGTERM each child (a worker then drains), wait up to `timeout`, then kill the rest."""
    for proc in processes:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in processes:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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
@click.pass_obj
def submit(
    settings: Settings,
    task_name: str,
    args: tuple[str, ...],
    kwargs_json: str | None,
    group: str,
    priority: int | None,
    dedup_key: str | None,
    delay: str | None,
    depends_on: tuple[int, ...],
) -> None:
    """Submit TASK_NAME with ARGS and print its id. Each ARG is parsed as JSON, else taken as a
    plain string (put `--` before negative numbers).

    \b
    Examples:
      corral --app tasks:app submit load_table orders --group pipeline-42 --priority 5
      corral --app tasks:app submit add 1 2 --kwargs '{"scale": 10}' --delay 30s
      corral --app tasks:app submit refresh --depends-on 41 --depends-on 42
    """
    app = settings.app(needs_code="submit")
    kwargs: Any = {}
    if kwargs_json is not None:
        kwargs = _json_or_text(kwargs_json)
        if not isinstance(kwargs, dict):
            raise click.BadParameter("must be a JSON object", param_hint="'--kwargs'")
    options: dict[str, Any] = {"group": group, "dedup_key": dedup_key, "depends_on": depends_on}
    if priority is not None:
        options["priority"] = priority
    if delay is not None:
        options["delay"] = delay
    task_type = app.task_type(task_name)
    clash = sorted(set(kwargs) & {"group", "priority", "aging", "dedup_key", "delay", "run_at",
                                  "depends_on"})  # fmt: skip
    if clash:
        raise click.BadParameter(f"{clash} are submit options, not task arguments", "'--kwargs'")
    click.echo(task_type.submit(*[_json_or_text(a) for a in args], **options, **kwargs))


# -- status -------------------------------------------------------------------------------------


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 60:
        return f"{value:.2f}s" if value < 10 else f"{value:.0f}s"
    if value < 3600:
        return f"{value / 60:.0f}m"
    return f"{value / 3600:.1f}h"


def _clock(at: float | None) -> str:
    return "-" if at is None else datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _state(state: str) -> str:
    style = STATE_STYLES.get(State(state)) if state in State.__members__.values() else None
    return f"[{style}]{state}[/]" if style else state


def groups_table(stats: Sequence[GroupStats]) -> Table:
    table = Table(title="Groups", title_justify="left")
    table.add_column("group")
    for column in GROUP_COLUMNS:
        table.add_column(column.replace("_", " "), justify="right")
    if any(s.counts.get(State.UPSTREAM_FAILED, 0) for s in stats):
        table.add_column("upstream failed", justify="right")
    for name in ("cap", "mean wait", "max wait"):
        table.add_column(name, justify="right")
    extra = len(table.columns) - len(GROUP_COLUMNS) - 4
    for s in stats:
        counts = [str(s.counts.get(c, 0)) for c in GROUP_COLUMNS]
        counts += [str(s.counts.get(State.UPSTREAM_FAILED, 0))] * extra
        cap = "-" if s.max_parallel is None else str(s.max_parallel)
        table.add_row(s.group, *counts, cap, _seconds(s.mean_wait), _seconds(s.max_wait))
    return table


def workers_table(workers: Sequence[WorkerRecord], now: float) -> Table:
    table = Table(title="Live workers", title_justify="left")
    for name in ("worker", "pools", "running", "up", "last heartbeat"):
        table.add_column(name, justify="right" if name in ("running", "up") else "left")
    for w in workers:
        running = f"{w.running}/{w.concurrency}"
        beat = f"{_seconds(now - w.heartbeat_at)} ago"
        table.add_row(w.id, ",".join(w.pools), running, _seconds(now - w.started_at), beat)
    return table


def tasks_table(tasks: Sequence[TaskRecord], now: float, title: str = "Latest tasks") -> Table:
    table = Table(title=title, title_justify="left")
    for name in ("id", "name", "group", "state", "attempt", "level", "age", "error"):
        table.add_column(name, justify="right" if name in ("id", "attempt", "level") else "left")
    for t in tasks:
        error = (t.error or "")[:60]
        table.add_row(str(t.id), t.name, t.group, _state(t.state), str(t.attempt), str(t.level),
                      _seconds(now - t.created_at), error)  # fmt: skip
    return table


def task_tables(
    record: TaskRecord,
    attempts: Sequence[AttemptRecord],
    events: Sequence[Event],
    logs: Sequence[LogLine],
) -> list[Table]:
    fields = Table(title=f"Task {record.id}", title_justify="left", show_header=False)
    fields.add_column(style="bold")
    fields.add_column()
    for key, value in _task_json(record).items():
        shown = value if isinstance(value, str) else json.dumps(value)
        if key.endswith("_at") and isinstance(value, float):
            shown = _clock(value)
        fields.add_row(key, _state(shown) if key == "state" else shown)
    tries = Table(title="Attempts", title_justify="left")
    for name in ("attempt", "worker", "started", "finished", "outcome", "error"):
        tries.add_column(name)
    for a in attempts:
        tries.add_row(str(a.attempt), a.worker_id or "-", _clock(a.started_at),
                      _clock(a.finished_at), a.outcome or "-", a.error or "")  # fmt: skip
    history = Table(title="Events", title_justify="left")
    for name in ("at", "event", "from", "to", "attempt", "detail"):
        history.add_column(name)
    for e in events:
        history.add_row(_clock(e.at), e.kind, e.from_state or "", e.to_state or "",
                        str(e.attempt), e.detail or "")  # fmt: skip
    lines = Table(title="Logs", title_justify="left")
    for name in ("at", "attempt", "level", "message"):
        lines.add_column(name)
    for line in logs:
        level = logging.getLevelName(line.level)
        lines.add_row(_clock(line.at), str(line.attempt), level, line.message)
    return [fields, tries, history, lines]


def _task_json(record: TaskRecord) -> dict[str, Any]:
    data = asdict(record)
    for key in ("args", "kwargs", "checkpoint", "shared", "result"):
        data[key] = loads(data[key])
    data["state"] = str(record.state)
    data["depends_on"] = list(record.depends_on)
    data["wait_seconds"] = record.wait_seconds
    return data


@cli.command()
@click.argument("task_id", type=int, required=False)
@click.option("--group", help="Only this group.")
@click.option(
    "--state", "states", multiple=True, type=click.Choice([str(s) for s in State]),
    help="Only tasks in this state (repeatable).",
)  # fmt: skip
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.pass_obj
def status(
    settings: Settings,
    task_id: int | None,
    group: str | None,
    states: tuple[str, ...],
    limit: int,
    as_json: bool,
) -> None:
    """Show groups, live workers and the latest tasks; or, with TASK_ID, one task with its
    attempts, events and logs.

    \b
    Examples:
      corral status
      corral status --group pipeline-42 --state dead --limit 50
      corral status 42 --json
    """
    store = settings.app().store
    now = time.time()
    out = Console()
    if task_id is not None:
        record = store.task_get(task_id)
        if record is None:
            raise TaskNotFound(f"no task with id {task_id}")
        attempts, events = store.attempt_list(task_id), store.event_list(task_id)
        logs = store.log_list(task_id)
        if as_json:
            click.echo(json.dumps({
                "task": _task_json(record),
                "attempts": [asdict(a) for a in attempts],
                "events": [asdict(e) for e in events],
                "logs": [asdict(line) for line in logs],
            }, indent=2))  # fmt: skip
            return
        for table in task_tables(record, attempts, events, logs):
            out.print(table)
        return
    stats = [s for s in store.group_stats() if group is None or s.group == group]
    workers = store.worker_list(now)
    query = TaskQuery(states=tuple(State(s) for s in states), group=group, limit=limit)
    tasks = store.task_list(query)
    if as_json:
        click.echo(json.dumps({
            "groups": [asdict(s) | {"total": s.total} for s in stats],
            "workers": [asdict(w) for w in workers],
            "tasks": [_task_json(t) for t in tasks],
        }, indent=2))  # fmt: skip
        return
    out.print(groups_table(stats) if stats else "[dim]No tasks yet.[/]")
    out.print(workers_table(workers, now) if workers else "[dim]No live workers.[/]")
    if tasks:
        out.print(tasks_table(tasks, now))


# -- cancel, retry, migrate ---------------------------------------------------------------------


@cli.command()
@click.argument("task_ids", type=int, nargs=-1, required=True)
@click.pass_obj
def cancel(settings: Settings, task_ids: tuple[int, ...]) -> None:
    """Cancel tasks. One not started ends at once; a running one is interrupted by its worker,
    which then runs the task type's on_cancel.

    \b
    Example:
      corral cancel 42 43
    """
    app = settings.app()
    failed = False
    for task_id in task_ids:
        try:
            after = app.cancel(task_id)
        except (TaskNotFound, TransitionRefused) as exc:
            click.echo(f"Error: {exc}", err=True)
            failed = True
            continue
        if after is None:
            where = app.get(task_id).worker_id or "a worker"
            click.echo(f"task {task_id}: cancel requested (running on worker {where})")
        else:
            click.echo(f"task {task_id}: cancelled")
    if failed:
        sys.exit(1)


@cli.command()
@click.argument("task_ids", type=int, nargs=-1, required=True)
@click.pass_obj
def retry(settings: Settings, task_ids: tuple[int, ...]) -> None:
    """Run dead, cancelled or upstream_failed tasks again, with a fresh retry budget.

    \b
    Example:
      corral retry 42
    """
    app = settings.app()
    failed = False
    for task_id in task_ids:
        try:
            before = app.get(task_id).state
            app.retry(task_id)
        except (TaskNotFound, TransitionRefused) as exc:
            click.echo(f"Error: {exc}", err=True)
            failed = True
            continue
        click.echo(f"task {task_id}: retried (was {before}), ready to run again")
    if failed:
        sys.exit(1)


@cli.command()
@click.pass_obj
def migrate(settings: Settings) -> None:
    """Apply the database migrations not yet applied (the SQLite store also does it on open).

    \b
    Example:
      corral --database-url postgresql://corral@db/corral migrate
    """
    url = settings.url()
    store = open_store(url, migrate=False)
    try:
        applied = store.migrate()
    finally:
        store.close()
    if applied:
        click.echo(f"{url}: applied migration(s) {', '.join(map(str, applied))}")
    else:
        click.echo(f"{url}: up to date, nothing to apply")


# -- demo ---------------------------------------------------------------------------------------


@cli.command()
@click.option(
    "--database-url", "demo_url", default="sqlite:///corral-demo.db", show_default=True,
    help="A demo database (SQLite), deleted and recreated at start.",
)  # fmt: skip
@click.option(
    "--scale", type=click.FloatRange(min=0.05, max=10), default=1.0, show_default=True,
    help="Multiplies the number of tasks (about 670 at 1).",
)  # fmt: skip
@click.option(
    "--workers", type=click.IntRange(min=1, max=32), default=2, show_default=True,
    help="Worker processes.",
)  # fmt: skip
@click.option(
    "--concurrency", type=click.IntRange(min=1), default=8, show_default=True,
    help="Tasks run at once by each worker process.",
)  # fmt: skip
@click.option(
    "--time-scale", type=click.FloatRange(min=0.1, max=20), default=1.0, show_default=True,
    help="Multiplies every run time (the demo runs minutes-long work in milliseconds).",
)  # fmt: skip
def demo(demo_url: str, scale: float, workers: int, concurrency: int, time_scale: float) -> None:
    """Watch corral run a compressed day of data pipelines: a 300-task pipeline, medium and
    small ones with caps, retries, a task that dies, a resumable sliced load and a cancelled
    query. Nothing to set up; takes about 20 seconds.

    \b
    Examples:
      corral demo
      corral demo --scale 0.2 --workers 1
    """
    from .demo import render_summary, run_demo

    out = Console()
    summary = run_demo(demo_url, scale=scale, workers=workers, concurrency=concurrency,
                       time_scale=time_scale, console=out)  # fmt: skip
    out.print(render_summary(summary))
    if not summary.ok:
        raise click.ClickException("the demo did not end as expected: " + "; ".join(
            summary.problems))  # fmt: skip


__all__ = ["cli", "load_app", "main", "stop_processes", "worker_command"]


if __name__ == "__main__":  # pragma: no cover
    main()
