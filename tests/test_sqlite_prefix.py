"""SQLite's tables take the corral_ prefix (migration 0008), and a database made by the release
before keeps everything across the upgrade. tests/data/release-f144d8a.db was made by that
release (tests/data/make_release_db.py says how)."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import corral
from corral.lifecycle import State
from corral.model import TaskQuery
from corral.store import open_store
from corral.store.schema import checked_in, render
from corral.store.schema_dump import describe
from corral.testing import harness

RELEASE_DB = Path(__file__).parent / "data" / "release-f144d8a.db"
LEGACY_TABLES = {
    "attempts", "consumers", "events", "groups", "leaders", "logs", "rate_buckets",
    "rate_limits", "ready_groups", "ready_hints", "retention", "schema_migrations", "submits",
    "task_deps", "tasks", "upstream_ended", "workers", "workflow_links", "workflows",
}  # fmt: skip


def _objects(path: Path) -> list[tuple[str, str]]:
    assert path.exists(), f"{path} is missing (tests/data/make_release_db.py makes it)"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT type, name FROM sqlite_master WHERE sql IS NOT NULL").fetchall()


def _release_copy(tmp_path: Path) -> Path:
    path = tmp_path / "upgraded.db"
    shutil.copy(RELEASE_DB, path)
    return path


def test_the_release_database_is_unprefixed_and_at_version_7() -> None:
    """The fixture is what the release left: guards the upgrade test against a remade fixture."""
    names = {name for kind, name in _objects(RELEASE_DB) if kind == "table"}
    assert names >= LEGACY_TABLES and not any(n.startswith("corral_") for n in names)
    with sqlite3.connect(f"file:{RELEASE_DB}?mode=ro", uri=True) as conn:
        assert conn.execute("SELECT max(version) FROM schema_migrations").fetchone() == (7,)


def test_upgrading_a_release_database_renames_everything_and_keeps_every_row(
    tmp_path: Path,
) -> None:
    path = _release_copy(tmp_path)
    with sqlite3.connect(f"file:{RELEASE_DB}?mode=ro", uri=True) as conn:
        before = {t: conn.execute(f"SELECT * FROM {t}").fetchall() for t in LEGACY_TABLES}
        # The release's columns, in its order (later migrations may add columns after them).
        columns = {
            t: ", ".join(c[1] for c in conn.execute(f"PRAGMA table_info({t})"))
            for t in LEGACY_TABLES
        }
    store = open_store(f"sqlite:///{path}", migrate=True)
    store.close()
    objects = _objects(path)
    assert all(name.startswith("corral_") for _, name in objects), objects
    with sqlite3.connect(path) as conn:
        for table, rows in before.items():
            after = conn.execute(f"SELECT {columns[table]} FROM corral_{table}").fetchall()
            if table == "schema_migrations":
                assert after[:7] == rows and [v for v, _ in after] == list(range(1, len(after) + 1))
                assert len(after) > 7
            else:
                assert after == rows, table
    # Exactly the schema a fresh install has: same tables, columns, indexes and triggers.
    assert render(describe(f"sqlite:///{path}")) == checked_in("sqlite")


def test_an_upgraded_database_reads_and_runs_as_before(tmp_path: Path) -> None:
    path = _release_copy(tmp_path)
    app = corral.App()

    @app.task(name="load", max_retries=0)
    def load(ctx: corral.Context, table: str) -> str:
        return f"loaded {table}"

    with harness(app, url=f"sqlite:///{path}", start=1_780_000_000.0 + 60) as h:
        store = app.store
        states = {t.id: t.state for t in store.task_list(TaskQuery(limit=100))}
        assert states == {
            1: State.SUCCEEDED, 2: State.DEAD, 3: State.SUCCEEDED, 4: State.SUCCEEDED,
            5: State.WAITING, 6: State.WAITING,
        }  # fmt: skip
        dead = store.task_get(2)
        assert dead is not None and dead.error == "ValueError: no such table"
        assert [e.to_state for e in store.event_list(1) if e.to_state][-1] == State.SUCCEEDED
        assert [a.outcome for a in store.attempt_list(2)] == ["failed"]
        assert any("loading orders" in line.message for line in store.log_list(1))
        group = store.group_get("billing")
        assert group is not None and group.max_parallel == 3 and group.weight == 2
        assert set(store.rate_limit_list()) == {"warehouse"}
        retention = store.retention_get()
        assert retention.default == 14 * 86400 and retention.per_type == {"load": 30 * 86400}
        workflow = store.workflow_get(1)
        assert workflow is not None and workflow.name == "nightly"
        # The waiting task whose upstream succeeded is released, the delayed one when due (a
        # harness waits only for what was submitted under it, so they may not have run yet).
        on_their_way = (State.ADMITTED, State.RUNNING, State.SUCCEEDED)
        h.drain()
        assert store.task_states([6])[6] in on_their_way
        h.advance("1h")
        h.drain()
        assert store.task_states([5])[5] in on_their_way
        new = load.submit("fresh")
        assert new == 7  # ids go on from the release's
        h.drain()
        assert store.task_states([new]) == {new: State.SUCCEEDED}


def test_corral_lives_beside_a_users_own_tables(tmp_path: Path) -> None:
    """The user's tables in the same file are neither touched nor described as corral's."""
    path = tmp_path / "shared.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, total REAL)")
        conn.execute("INSERT INTO orders VALUES (1, 9.5)")
    store = open_store(f"sqlite:///{path}", migrate=True)
    store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT * FROM orders").fetchall() == [(1, 9.5)]
    assert "orders" not in render(describe(f"sqlite:///{path}"))
