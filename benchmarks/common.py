"""Helpers shared by the benchmarks: fresh databases on either backend and bulk loads."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from corral.model import NewTask
from corral.store import open_store

PG_ADMIN_URL = os.environ.get(
    "CORRAL_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@contextmanager
def fresh_database(backend: str) -> Iterator[str]:
    """A URL of an empty, migrated corral database of `backend`, removed afterwards."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite:///{folder}/bench.db"
            open_store(url).close()
            yield url
        return
    import psycopg

    name = f"corral_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        store = open_store(url, migrate=False)
        store.migrate()
        store.close()
        yield url
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def backlog(count: int, groups: int = 50, levels: int = 3) -> list[NewTask]:
    """`count` no-op tasks spread round robin over `groups` groups and `levels` priorities, as
    the store takes them (no App needed)."""
    return [
        NewTask(
            name="noop",
            pool="default",
            group=f"g{i % groups}",
            priority=i % levels,
            level=i % levels,
            aging='{"kind":"none"}',
            args=f"[{i}]",
            kwargs="{}",
            max_retries=0,
            backoff='{"base":1,"cap":300,"factor":2,"jitter":0.5}',
            max_runtime=None,
            on_timeout="retry",
        )
        for i in range(count)
    ]
