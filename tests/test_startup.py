"""Start-up to first task (issue 15, item 5): the command line imports a command's module only when
it runs, a worker process imports only what a worker needs, and the heartbeat companion can be
started ahead of its worker (`prestart`: on PostgreSQL it opens its store then too), which then
takes it and still waits for its first renewal before claiming."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from click.testing import CliRunner
from conftest import Databases

from corral.cli import LAZY_COMMANDS, cli
from corral.model import WorkerInfo
from corral.store import open_store
from corral.worker import heartbeat
from corral.worker.heartbeat import Companion, CompanionConfig, prestart

SRC = str(Path(__file__).resolve().parents[1] / "src")


def test_help_lists_every_command_lazy_ones_too() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0, result.output
    listed = {line.split()[0] for line in result.output.split("Commands:")[1].splitlines() if line}
    assert set(LAZY_COMMANDS) <= listed
    assert {"worker", "run", "scheduler", "submit", "why", "demo"} <= listed
    for name in LAZY_COMMANDS:
        assert cli.get_command(None, name).name == name  # type: ignore[arg-type, union-attr]


def test_the_worker_command_does_not_import_the_other_faces() -> None:
    code = (
        "import sys; from corral.cli import cli; cli.get_command(None, 'worker'); "
        "import corral.worker.worker; print(' '.join(sorted(sys.modules)))"
    )
    env = dict(os.environ, PYTHONPATH=SRC)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    for module in ("corral.cli_web", "corral.cli_schedules", "corral.cli_alerts", "corral.views",
                   "corral.web", "corral.alerts.channels", "corral.alerts.evaluator",
                   "corral.scheduler.service", "fastapi", "jinja2", "rich", "prometheus_client",
                   "smtplib", "httpx"):  # fmt: skip
        assert module not in out, module


WORKER_PATH = """
import sys
import corral, corral.cli, corral.worker.heartbeat, corral.worker.worker, corral.store.sqlite.store
app = corral.App(sys.argv[1])
@app.task(name="noop")
def noop(ctx, n):
    return n
app.store.worker_list(0.0)
print(" ".join(sorted(sys.modules)))
print(type(app.schedules).__name__, type(app.backfills).__name__, type(app.alerts).__name__)
"""


def test_a_worker_process_imports_only_what_a_worker_needs(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=SRC)
    url = f"sqlite:///{tmp_path}/imports.db"
    out = subprocess.run(
        [sys.executable, "-c", WORKER_PATH, url], env=env, capture_output=True, text=True,
        check=True,
    ).stdout.splitlines()  # fmt: skip
    modules = out[0].split()
    for module in ("opentelemetry.trace", "multiprocessing", "corral.schedules.declare",
                   "corral.schedules.spec", "corral.alerts.declare", "corral.alerts.rules",
                   "importlib.resources", "psycopg"):  # fmt: skip
        assert module not in modules, module
    assert out[1] == "Schedules Backfills Alerts"  # imported on first use


REGISTERED_AT: dict[str, float] = {}
"""When `_store_and_worker` registered its worker, by URL."""


def _store_and_worker(tmp_path: Path, url: str | None = None) -> tuple[str, str]:
    url = url or f"sqlite:///{tmp_path}/startup.db"
    store = open_store(url)
    worker_id = "host:1:startup"
    now = REGISTERED_AT[url] = store.clock().now()
    info = WorkerInfo(worker_id, "host", os.getpid(), ("default",), 1)
    store.worker_register(info, now + 15, now)
    store.close()
    return url, worker_id


def _config(url: str, worker_id: str) -> CompanionConfig:
    return CompanionConfig(url, worker_id, os.getpid(), lease=15.0, heartbeat=0.2, hung_after=30.0)


def test_a_prestarted_companion_is_taken_and_renews(databases: Databases, tmp_path: Path) -> None:
    url, worker_id = _store_and_worker(tmp_path, databases.new_url())
    prestart(url)
    assert heartbeat._spare is not None
    spare = heartbeat._spare[0]
    time.sleep(0.2)  # the worker imports meanwhile; the spare waits for its config

    async def main() -> tuple[int, float]:
        companion = Companion(_config(url, worker_id), asyncio.get_running_loop(), lambda _: None)
        asked = time.monotonic()
        await asyncio.wait_for(companion.ready.wait(), 30)  # the first renewal, as before
        waited = time.monotonic() - asked
        await companion.stop()
        return companion.pid, waited

    pid, _waited = asyncio.run(main())
    assert pid == spare.pid
    assert heartbeat._spare is None
    assert spare.wait(5) == 0
    assert _heartbeat_at(url, worker_id) > REGISTERED_AT[url]  # renewed there (PostgreSQL: through
    # the store the spare opened before its config came)


def test_a_spare_whose_worker_names_another_database_renews_there(
    databases: Databases, tmp_path: Path
) -> None:
    url, worker_id = _store_and_worker(tmp_path, databases.new_url())
    other = databases.new_url()
    prestart(other)  # the hint (CORRAL_DATABASE_URL, say) is not where the worker's app is
    assert heartbeat._spare is not None
    spare = heartbeat._spare[0]

    async def main() -> int:
        companion = Companion(_config(url, worker_id), asyncio.get_running_loop(), lambda _: None)
        await asyncio.wait_for(companion.ready.wait(), 30)  # renewed in the config's database
        await companion.stop()
        return companion.pid

    assert asyncio.run(main()) == spare.pid
    assert spare.wait(5) == 0
    assert _heartbeat_at(url, worker_id) > REGISTERED_AT[url]


def _heartbeat_at(url: str, worker_id: str) -> float:
    store = open_store(url)
    try:
        return next(w.heartbeat_at for w in store.worker_list(0.0) if w.id == worker_id)
    finally:
        store.close()


def test_a_spare_from_another_thread_is_not_taken(tmp_path: Path) -> None:
    url, worker_id = _store_and_worker(tmp_path)
    thread = threading.Thread(target=prestart, args=(url,))
    thread.start()
    thread.join()
    assert heartbeat._spare is not None
    spare = heartbeat._spare[0]

    async def main() -> int:
        companion = Companion(_config(url, worker_id), asyncio.get_running_loop(), lambda _: None)
        await asyncio.wait_for(companion.ready.wait(), 30)
        await companion.stop()
        return companion.pid

    assert asyncio.run(main()) != spare.pid  # PR_SET_PDEATHSIG follows the forking thread
    assert spare.wait(10) == 0  # told to end (EOF before any config)
    assert heartbeat._spare is None
