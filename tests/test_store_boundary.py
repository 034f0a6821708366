"""No raw backend exception crosses the store boundary: a driver's error that a store call does
not handle itself comes out as corral's DatabaseError (naming the store and the call, never a
password), and the CLI prints it as one `Error:` line."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from corral.cli import cli
from corral.errors import CorralError, DatabaseError, TaskNotFound
from corral.store import open_store
from corral.store.boundary import errors_as_corral
from corral.store.contract import Lease, LeaseKind


@pytest.mark.parametrize(
    ("kind", "raw"),
    [
        (sqlite3.Error, sqlite3.OperationalError("database is locked")),
        (psycopg.Error, psycopg.errors.DataError("out of range")),
    ],
    ids=["sqlite", "postgres"],
)
def test_a_drivers_error_becomes_a_database_error(kind: type[Exception], raw: Exception) -> None:

    @errors_as_corral(kind, where=lambda store: f"db at {store.host}")
    class Store:
        host = "h1"

        def task_get(self, task_id: int) -> Any:
            raise raw

        def task_cancel(self, task_id: int) -> Any:
            raise TaskNotFound(f"no task with id {task_id}")

        def task_retry(self, task_id: int) -> Any:
            try:
                return self.task_get(task_id)  # a call inside a call gets the raw error
            except kind as exc:
                return f"handled {type(exc).__name__}"

        def _private(self) -> Any:
            raise raw

    store = Store()
    with pytest.raises(DatabaseError) as caught:
        store.task_get(1)
    assert str(caught.value) == f"db at h1: task_get: {type(raw).__name__}: {raw}"
    assert not isinstance(caught.value, kind) and caught.value.__cause__ is None
    with pytest.raises(TaskNotFound):  # corral's own errors pass as they are
        store.task_cancel(1)
    assert store.task_retry(1) == f"handled {type(raw).__name__}"
    with pytest.raises(kind):  # private helpers are inside the boundary
        store._private()


def _not_a_database(tmp_path: Path) -> str:
    path = tmp_path / "corral.db"
    store = open_store(f"sqlite:///{path}")
    store.close()
    path.write_bytes(b"this is not a database" * 512)
    for extra in ("-wal", "-shm"):
        (tmp_path / f"corral.db{extra}").unlink(missing_ok=True)
    return f"sqlite:///{path}"


def test_a_damaged_sqlite_file_raises_corral_errors_only(tmp_path: Path) -> None:
    url = _not_a_database(tmp_path)
    with pytest.raises(DatabaseError) as caught:
        store = open_store(url, migrate=False)
        try:
            store.lease_release(Lease(LeaseKind.WORKER, "w1", "w1", 0.0))  # a write
        finally:
            store.close()
    assert "corral.db" in str(caught.value)
    assert isinstance(caught.value, CorralError)


def test_the_cli_prints_a_database_error_as_one_line(tmp_path: Path) -> None:
    url = _not_a_database(tmp_path)
    result = CliRunner().invoke(cli, ["--database-url", url, "status"], prog_name="corral")
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: ") and "corral.db" in result.output
    assert "Traceback" not in result.output
