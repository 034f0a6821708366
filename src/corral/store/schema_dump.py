"""Regenerate (or check) each backend's schema.sql from a freshly migrated database.

    python -m corral.store.schema_dump            # rewrite both files
    python -m corral.store.schema_dump --check    # exit 1 if either is out of date

SQLite migrates a file in a temporary folder; PostgreSQL a database created for the purpose on
the server of `--postgres` (default: CORRAL_TEST_POSTGRES_URL, else the local server the tests
use), dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import uuid
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from . import open_store
from .schema import BACKENDS, REGENERATE, Backend, Schema, checked_in, render

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


def describe(url: str) -> Schema:
    """The schema of the database behind `url`, read from its catalog. Here, not in
    corral.store.schema: the catalogs build on that module's records."""
    if url.startswith("sqlite:///"):
        from .sqlite.catalog import describe as describe_sqlite

        return describe_sqlite(url.split("sqlite:///", 1)[1].split("?", 1)[0])
    from .postgres.catalog import describe as describe_postgres

    return describe_postgres(url)


def fresh_schema(backend: Backend, server: str = DEFAULT_SERVER) -> str:
    """The canonical schema text of a database of `backend` that a fresh migrate created."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite:///{folder}/fresh.db"
            _migrate(url)
            return render(describe(url))
    import psycopg
    from psycopg import sql

    base = server.rsplit("/", 1)[0]
    name = f"corral_schema_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        url = f"{base}/{name}"
        _migrate(url)
        return render(describe(url))
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def _migrate(url: str) -> None:
    """Every migration from the first, as `corral migrate` runs them (a fresh SQLite file is
    otherwise installed from schema.sql itself: regenerating it from itself would miss a new
    migration)."""
    store = open_store(url, migrate=False)
    try:
        if url.startswith("sqlite"):
            from .sqlite.store import SQLiteStore

            assert isinstance(store, SQLiteStore)
            store.migrate(replay=True)
        else:
            store.migrate()
    finally:
        store.close()


def schema_file(backend: Backend) -> Path:
    """Where the backend's schema.sql lives in the source tree (an editable install)."""
    return Path(str(resources.files(f"corral.store.{backend}").joinpath("schema.sql")))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=REGENERATE, description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check; exit 1 if stale")
    parser.add_argument("--backend", choices=BACKENDS, action="append", help="default: both")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("CORRAL_TEST_POSTGRES_URL", DEFAULT_SERVER),
        help="a PostgreSQL server URL (with a database to connect to for CREATE DATABASE)",
    )
    args = parser.parse_args(argv)
    stale = []
    for backend in args.backend or BACKENDS:
        text = fresh_schema(backend, args.postgres)
        path = schema_file(backend)
        if args.check:
            if not path.exists() or checked_in(backend) != text:
                stale.append(backend)
                print(f"{path}: out of date; run `{REGENERATE}`", file=sys.stderr)
        elif not path.exists() or path.read_text() != text:
            path.write_text(text)
            print(f"wrote {path}")
        else:
            print(f"{path}: up to date")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
