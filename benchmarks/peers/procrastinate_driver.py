"""Procrastinate 3.10 on this machine's PostgreSQL (a fresh database for each phase).

Workers: `--processes` `procrastinate worker --concurrency <--concurrency>` processes (async
tasks, LISTEN/NOTIFY on, the default). One-at-a-time submit: `defer(n=i)` through the app opened
synchronously. Bulk submit: `batch_defer` (one INSERT of many rows), 5,000 jobs a call. Done: jobs
no longer `todo` or `doing` in `procrastinate_jobs`. The stamping task writes `time.time()` into
a Redis hash at its start (the same as the Redis peers'). Run by `benchmarks/peers.py` with the
peers' venv; prints one JSON line.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path

import procrastinate
import psycopg
import redis

HERE = Path(__file__).resolve().parent
PG_ADMIN_URL = os.environ.get(
    "CORRAL_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("PEERS_REDIS_URL", "redis://127.0.0.1:6379/15")
STAMPS = "peers:stamps"

app = procrastinate.App(
    connector=procrastinate.PsycopgConnector(conninfo=os.environ.get("PEERS_PG_URL", ""))
)
stamps = redis.Redis.from_url(REDIS_URL)


@app.task(name="noop")
async def noop(n: int) -> int:
    return n


@app.task(name="stamp")
async def stamp(n: int) -> None:
    stamps.hset(STAMPS, str(n), repr(time.time()))


def make(args):
    from harness import Library

    state: dict = {"db": None, "swap": None, "url": ""}

    def drop() -> None:
        if state["swap"] is not None:
            app.close()
            state["swap"].__exit__(None, None, None)
            state["swap"] = None
        if state["db"] is not None:
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{state["db"]}" WITH (FORCE)')

    def reset() -> None:
        drop()
        stamps.flushdb()
        name = f"peers_procrastinate_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        state["db"], state["url"] = name, PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
        state["swap"] = app.replace_connector(procrastinate.PsycopgConnector(conninfo=state["url"]))
        state["swap"].__enter__()
        app.open()
        app.schema_manager.apply_schema()

    def submit_one(n: int) -> None:
        noop.defer(n=n)

    def submit_bulk(count: int) -> None:
        deferrer = noop.configure()
        for first in range(0, count, 5000):
            deferrer.batch_defer(*({"n": i} for i in range(first, min(first + 5000, count))))

    def done() -> int:
        with psycopg.connect(state["url"]) as conn:
            row = conn.execute(
                "SELECT count(*) FROM procrastinate_jobs WHERE status NOT IN ('todo', 'doing')"
            ).fetchone()
        return row[0]

    def submit_stamp(n: int) -> int:
        stamp.defer(n=n)
        return n

    def read_stamp(n: object) -> float | None:
        value = stamps.hget(STAMPS, str(n))
        return None if value is None else float(value)

    command = [
        str(Path(sys.executable).parent / "procrastinate"),
        "--app=procrastinate_driver.app",
        "worker",
        "--concurrency",
        str(args.concurrency),
    ]
    return Library(
        reset=reset,
        submit_one=submit_one,
        submit_bulk=submit_bulk,
        done=done,
        submit_stamp=submit_stamp,
        stamp=read_stamp,
        workers=lambda: [command for _ in range(args.processes)],
        env=lambda: dict(os.environ, PYTHONPATH=str(HERE), PEERS_PG_URL=state["url"]),
        close=drop,
    )


if __name__ == "__main__":
    import procrastinate_driver  # the tasks registered under the module name the workers import
    from harness import main

    main(procrastinate_driver.make, __doc__)
