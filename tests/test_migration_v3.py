"""Upgrading to schema 3 on both backends: tasks waiting on dependencies when the upgrade runs get
their dependency counts from the rows, and the resolver carries on with them."""

from __future__ import annotations

import time
from typing import Any

from conftest import Databases

from corral.lifecycle import State
from corral.model import AttemptReport
from corral.store import open_store
from corral.store.contract import CompleteParams, DueParams

COLUMNS = (
    "id, name, pool, group_name, state, priority, level, aging, args, kwargs, max_retries, "
    "backoff, on_timeout, created_at, enqueued_at, run_at, attempt"
)
# id -> state; and the edges (task, depends_on)
TASKS = {1: "succeeded", 2: "dead", 3: "running", 4: "waiting", 5: "waiting", 6: "waiting"}
EDGES = [(4, 1), (5, 1), (5, 2), (6, 3)]


def test_upgrade_counts_the_dependencies_of_waiting_tasks(databases: Databases) -> None:
    url = databases.new_url(migrate=False)
    now = time.time()
    rows = [
        (i, "job", "default", "default", state, 0, 0, '{"kind":"none"}', "[]", "{}", 0,
         '{"base":1}', "retry", now, now, now, 1 if state == "running" else 0)
        for i, state in TASKS.items()
    ]  # fmt: skip
    if databases.backend == "sqlite":
        _sqlite_at_v2(url, rows)
    else:
        _postgres_at_v2(url, rows)

    store = open_store(url, migrate=False)
    try:
        assert store.migrate()[0] == 3  # then any later ones
        assert store.task_fail_upstream(DueParams(now + 1, 100)) == 1  # 5 waits on a dead task
        assert store.task_release_due(DueParams(now + 1, 100)) == 1  # 4: its dependency succeeded
        assert store.task_states([4, 5, 6]) == {
            4: State.READY,
            5: State.UPSTREAM_FAILED,
            6: State.WAITING,
        }
        report = AttemptReport(3, 1, "succeeded", State.SUCCEEDED)
        assert store.task_complete_many(CompleteParams([report], now + 2)) == [3]
        assert (
            store.task_release_due(DueParams(now + 3, 100)) == 1
        )  # 3 was marked as having dependents
        assert store.task_states([6]) == {6: State.READY}
    finally:
        store.close()


def _sqlite_at_v2(url: str, rows: list[tuple[Any, ...]]) -> None:
    import sqlite3

    from corral.store.sqlite import queries as q
    from corral.store.sqlite.migrate import migrations
    from corral.store.sqlite.store import _split_sql

    conn = sqlite3.connect(url.split("sqlite:///", 1)[1], isolation_level=None)
    conn.execute(q.CREATE_MIGRATIONS)
    for version, script in migrations()[:2]:
        for statement in _split_sql(script):
            conn.execute(statement)
        conn.execute(q.RECORD_MIGRATION, (version, time.time()))
    marks = ", ".join("?" * len(rows[0]))
    conn.executemany(f"INSERT INTO tasks ({COLUMNS}) VALUES ({marks})", rows)
    conn.executemany("INSERT INTO task_deps (task_id, depends_on) VALUES (?, ?)", EDGES)
    conn.close()


def _postgres_at_v2(url: str, rows: list[tuple[Any, ...]]) -> None:
    import psycopg

    from corral.store.postgres import queries as q
    from corral.store.postgres.store import migrations

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(q.CREATE_MIGRATIONS)
        for version, script in migrations()[:2]:
            conn.execute(script.encode())
            conn.execute(q.RECORD_MIGRATION, (version, time.time()))
        marks = ", ".join(["%s"] * len(rows[0]))
        with conn.cursor() as cur:
            cur.executemany(f"INSERT INTO corral_tasks ({COLUMNS}) VALUES ({marks})", rows)
            cur.executemany(
                "INSERT INTO corral_task_deps (task_id, depends_on) VALUES (%s, %s)", EDGES
            )
