"""Schema discipline: a fresh migrate gives exactly the checked-in schema.sql of its backend, and
both backends expose the same tables and columns (corral.store.schema)."""

from __future__ import annotations

import contextlib
import difflib
import sqlite3
from dataclasses import replace
from typing import Any

from conftest import Databases

import corral
from corral.store.schema import REGENERATE, Schema, checked_in, parity, render
from corral.store.schema_dump import describe

KNOWN_DIFFERENCES: dict[tuple[str, str | None], str] = {
    # The leader's lease row: PostgreSQL holds leadership with a session advisory lock instead.
    ("leaders", None): "SQLite only: PostgreSQL leads by advisory lock",
    # PostgreSQL event ids don't commit in id order, so consumers read by (xid, id); SQLite has
    # one writer at a time, its ids commit in order and its cursor_xid stays 0.
    ("events", "xid"): "PostgreSQL only: the writing transaction, for commit-order reads",
    # Lists: a native array on PostgreSQL, a JSON array in TEXT on SQLite.
    ("workers", "pools"): "text[] on PostgreSQL, a JSON array in TEXT on SQLite",
    ("submits", "task_ids"): "bigint[] on PostgreSQL, a JSON array in TEXT on SQLite",
}
"""Every real difference between the backends' tables and columns, with its reason. A new one
fails `test_both_backends_expose_the_same_tables_and_columns` until it is listed here."""


def _mismatch(backend: str, fresh: str) -> str:
    diff = difflib.unified_diff(
        checked_in(backend).splitlines(),
        fresh.splitlines(),
        f"src/corral/store/{backend}/schema.sql (checked in)",
        "a fresh migrate",
        lineterm="",
    )
    return (
        f"a fresh migrate no longer gives the checked-in {backend} schema.sql: if the change is "
        f"meant, regenerate it with `{REGENERATE}` and commit it\n" + "\n".join(diff)
    )


def test_a_fresh_migrate_gives_the_checked_in_schema(databases: Databases) -> None:
    fresh = render(describe(databases.new_url()))
    assert fresh == checked_in(databases.backend), _mismatch(databases.backend, fresh)


def test_a_schema_change_without_regenerating_is_caught(databases: Databases) -> None:
    """The comparison sees a column and an index that no migration declared."""
    url = databases.new_url()
    tasks = "corral_tasks"
    statements = [
        f"ALTER TABLE {tasks} ADD COLUMN note TEXT",
        f"CREATE INDEX {tasks}_by_note ON {tasks} (note)",
    ]
    _execute(databases.backend, url, statements)
    fresh = render(describe(url))
    assert fresh != checked_in(databases.backend)
    message = _mismatch(databases.backend, fresh)
    assert "+    note" in message and f"{tasks}_by_note" in message
    assert REGENERATE in message


def test_both_backends_expose_the_same_tables_and_columns(tmp_path: Any) -> None:
    sqlite_dbs, postgres_dbs = Databases("sqlite", tmp_path), Databases("postgres", tmp_path)
    try:
        lite = describe(sqlite_dbs.new_url())
        pg = describe(postgres_dbs.new_url())
    finally:
        postgres_dbs.cleanup()
    assert lite.version == pg.version
    problems = parity(lite, pg, KNOWN_DIFFERENCES)
    assert not problems, "the backends' schemas differ:\n" + "\n".join(problems)


def test_parity_reports_a_missing_column_a_type_and_a_stale_allowance(tmp_path: Any) -> None:
    """The comparison itself: each kind of difference is reported, allowed ones are not."""
    url = Databases("sqlite", tmp_path).new_url()
    lite = describe(url)
    pg = _as_postgres(lite)
    assert parity(lite, pg, {}) == []
    pg = replace(pg, tables=tuple(t for t in pg.tables if t.name != "corral_leaders"))
    pg = _drop_column(pg, "corral_tasks", "rank")
    pg = _retype(pg, "corral_groups", "weight", "text")
    problems = parity(lite, pg, {("leaders", None): "allowed", ("nowhere", "x"): "stale"})
    assert problems == [
        "column groups.weight: real NOT NULL on sqlite, text NOT NULL on postgres",
        "column tasks.rank: only on sqlite",
        "allowed difference ('nowhere', 'x') (stale) no longer exists: remove it from the list",
    ]


# -- helpers -------------------------------------------------------------------------------------


def _execute(backend: str, url: str, statements: list[str]) -> None:
    if backend == "sqlite":
        conn = sqlite3.connect(url.split("sqlite:///", 1)[1], isolation_level=None)
        for statement in statements:
            conn.execute(statement)
        conn.close()
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as pg:
        for statement in statements:
            pg.execute(statement.encode())


_PG_TYPES = {"INTEGER": "bigint", "REAL": "double precision", "TEXT": "text"}


def _as_postgres(lite: Schema) -> Schema:
    """The SQLite schema retyped as PostgreSQL would have it (the names are the same)."""
    tables = tuple(
        replace(
            t,
            columns=tuple(replace(c, type=_PG_TYPES[c.type]) for c in t.columns),
        )
        for t in lite.tables
    )
    return replace(lite, backend="postgres", tables=tables)


def _drop_column(schema: Schema, table: str, column: str) -> Schema:
    t = schema.table(table)
    changed = replace(t, columns=tuple(c for c in t.columns if c.name != column))
    return replace(schema, tables=tuple(changed if x is t else x for x in schema.tables))


def _retype(schema: Schema, table: str, column: str, type_: str) -> Schema:
    t = schema.table(table)
    cols = tuple(replace(c, type=type_) if c.name == column else c for c in t.columns)
    changed = replace(t, columns=cols)
    return replace(schema, tables=tuple(changed if x is t else x for x in schema.tables))


def test_replaying_every_sqlite_migration_gives_the_checked_in_schema() -> None:
    """A fresh SQLite file is installed from schema.sql; the migrations replayed from the first
    (as a database of an older release gets them) must end at the same schema."""
    from corral.store.schema_dump import fresh_schema

    replayed = fresh_schema("sqlite")
    assert replayed == checked_in("sqlite"), _mismatch("sqlite", replayed)


def test_both_ways_of_installing_sqlite_seed_the_same_rows(tmp_path: Any) -> None:
    """A migration may seed rows (the event consumers' origin); the install from schema.sql must
    seed them too: every table holds the same rows either way. (An AUTOINCREMENT, which the
    catalog doesn't describe, shows here too, as a `sqlite_sequence` table on one side only:
    corral's ids are never reused because their tables' newest rows are never deleted.)"""
    from corral.store import open_store
    from corral.store.sqlite.store import SQLiteStore

    rows = []
    for name, replay in (("installed", False), ("replayed", True)):
        store = open_store(f"sqlite:///{tmp_path}/{name}.db", migrate=False)
        assert isinstance(store, SQLiteStore)
        store.migrate(replay=replay)
        store.close()
        with contextlib.closing(sqlite3.connect(tmp_path / f"{name}.db")) as conn:
            tables = [
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            ]
            rows.append(
                {
                    t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall())
                    for t in tables
                    if t != "corral_schema_migrations"  # the times it was applied differ
                }
            )
    assert rows[0] == rows[1]
    assert rows[0]["corral_consumers"]  # the origin row is there, so the check has teeth


def test_a_fresh_install_leaves_a_users_own_tables_alone(tmp_path: Any) -> None:
    """corral in a user's own SQLite file that has tables named as corral's were before 0008
    (`tasks`, `groups`, `events`, `workers`, `schema_migrations`): corral creates only its
    `corral_` tables, and the user's rows stay as they were."""
    path = tmp_path / "theirs.db"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        for table in ("tasks", "groups", "events", "workers", "schema_migrations"):
            conn.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, what TEXT)")
            conn.execute(f"INSERT INTO {table} (what) VALUES ('mine')")
        conn.commit()
    app = corral.App(f"sqlite:///{path}")

    @app.task()
    def ping(ctx: corral.Context) -> None: ...

    task_id = ping.submit()
    assert app.store.task_get(task_id) is not None
    app.close()
    with contextlib.closing(sqlite3.connect(path)) as conn:
        for table in ("tasks", "groups", "events", "workers", "schema_migrations"):
            assert conn.execute(f"SELECT id, what FROM {table}").fetchall() == [(1, "mine")]
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert names - {"tasks", "groups", "events", "workers", "schema_migrations"} == {
        n for n in names if n.startswith("corral_")
    }


def test_sqlite_indexes_of_attempts_and_events_list_no_constants_with_in() -> None:
    """Every claim inserts an attempt and an event a task, and every completion updates the
    attempt, one execution of a statement a row. SQLite turns a constant IN list of more than two
    values into a lookup table built at each execution that evaluates it, and a write evaluates
    the predicate of every partial index it may change: so these tables' partial indexes word
    their predicates with equalities joined by OR (migration 0023), which cost nothing to set up."""
    schema = checked_in("sqlite")
    indexes = [
        line
        for line in schema.splitlines()
        if line.startswith("CREATE") and " INDEX " in line
        and (" ON corral_attempts " in line or " ON corral_events " in line)
    ]  # fmt: skip
    assert any("corral_attempts_failed" in line for line in indexes)
    assert not [line for line in indexes if " IN (" in line.upper()]
