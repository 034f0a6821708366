"""Submitting inside the caller's own transaction: the task exists only if the caller commits."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

import corral
from corral.model import TaskQuery


def make_app(url: str) -> tuple[corral.App, corral.TaskType[Any, Any]]:
    app = corral.App(url)

    @app.task
    def load(ctx: corral.Context, table: str) -> str:
        return table

    return app, load


@contextmanager
def own_transaction(url: str) -> Iterator[Any]:
    """A connection of the caller's on the same database, with a user table, in a transaction."""
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.split("sqlite:///", 1)[1], isolation_level=None)
        conn.execute("CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY)")
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        finally:
            conn.close()
        return
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY)")
        conn.commit()
        yield conn


def count(conn_url: str) -> int:
    if conn_url.startswith("sqlite"):
        with sqlite3.connect(conn_url.split("sqlite:///", 1)[1]) as conn:
            return int(conn.execute("SELECT count(*) FROM orders").fetchone()[0])
    import psycopg

    with psycopg.connect(conn_url) as conn:
        row = conn.execute("SELECT count(*) FROM orders").fetchone()
        assert row is not None
        return int(row[0])


def test_committed_transaction_keeps_the_task_and_the_rows(app_url: str) -> None:
    app, load = make_app(app_url)
    with own_transaction(app_url) as conn:
        conn.execute("INSERT INTO orders (id) VALUES (1)")
        task_id = load.submit("orders", connection=conn)
        conn.commit()
    assert app.get(task_id).state == corral.State.READY
    assert count(app_url) == 1
    app.close()


def test_rolled_back_transaction_leaves_no_task(app_url: str) -> None:
    app, load = make_app(app_url)
    with own_transaction(app_url) as conn:
        conn.execute("INSERT INTO orders (id) VALUES (2)")
        load.submit("orders", connection=conn)
        conn.rollback()
    assert app.store.task_list(TaskQuery()) == []
    assert count(app_url) == 0
    app.close()


def test_sqlite_connection_without_a_transaction_is_refused(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path}/t.db"
    app, load = make_app(url)
    conn = sqlite3.connect(f"{tmp_path}/t.db", isolation_level=None)
    with pytest.raises(corral.ConfigError, match="transaction"):
        load.submit("orders", connection=conn)
    conn.close()
    assert app.store.task_list(TaskQuery()) == []
    app.close()


@pytest.mark.parametrize("commit", [True, False])
def test_a_workflow_joins_the_callers_transaction(app_url: str, commit: bool) -> None:
    app, load = make_app(app_url)
    with own_transaction(app_url) as conn:
        conn.execute("INSERT INTO orders (id) VALUES (3)")
        wf = app.workflow("in-my-transaction")
        first = wf.add(load, "a")
        wf.add(load, "b", after=[first])
        workflow_id = wf.submit(connection=conn)
        conn.commit() if commit else conn.rollback()
    if commit:
        assert app.workflow_status(workflow_id).counts == {"ready": 1, "waiting": 1}
    else:
        assert app.store.workflow_get(workflow_id) is None
        assert app.store.task_list(TaskQuery()) == []
    assert count(app_url) == (1 if commit else 0)
    app.close()
