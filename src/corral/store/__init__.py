"""Opening a store from a database URL."""

from __future__ import annotations

import importlib
import os
from urllib.parse import parse_qs, urlsplit

from ..errors import DatabaseError
from .contract import Store

DEFAULT_URL = "sqlite:///corral.db"


def resolve_url(url: str | None) -> str:
    """The URL to use: the one given, else CORRAL_DATABASE_URL, else ./corral.db."""
    return url or os.environ.get("CORRAL_DATABASE_URL") or DEFAULT_URL


def open_store(url: str | None = None, *, migrate: bool = True) -> Store:
    """Open the store behind `url`. `sqlite:///relative.db`, `sqlite:////abs/path.db` or a plain
    file path give the embedded SQLite store (migrated on open: zero set-up);
    `postgresql://user@host/db` gives the PostgreSQL store, whose schema is shared by many hosts
    and so is migrated on purpose (`corral migrate`): opening checks it is there.
    `migrate=False` skips both, for `corral migrate` itself."""
    url = resolve_url(url)
    if "://" not in url:
        url = f"sqlite:///{url}"
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        from .sqlite.store import SQLiteStore

        options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        unknown = set(options) - {"synchronous", "busy_timeout"}
        if unknown:
            raise DatabaseError(f"unknown SQLite URL option(s) {sorted(unknown)} in {url!r}")
        path = url.split("://", 1)[1].split("?", 1)[0]
        if not path.startswith("/"):
            raise DatabaseError(f"bad SQLite URL {url!r}: write sqlite:///relative/path.db")
        try:
            timeout = float(options.get("busy_timeout", 30))
        except ValueError:
            raise DatabaseError(f"busy_timeout must be a number of seconds in {url!r}") from None
        store: Store = SQLiteStore(
            path[1:], busy_timeout=timeout, synchronous=options.get("synchronous", "NORMAL")
        )
        if migrate:
            store.migrate()
        return store
    if scheme in ("postgresql", "postgres"):
        try:
            module = importlib.import_module("corral.store.postgres.store")
        except ImportError as exc:
            raise DatabaseError(
                f"PostgreSQL needs the postgres extra: pip install 'corral[postgres]' ({exc})"
            ) from None
        pg_store: Store = module.PostgresStore(url)
        if migrate:
            pg_store.check_schema()
        return pg_store
    raise DatabaseError(
        f"unknown database URL {url!r}: use sqlite:///path/to/file.db or "
        "postgresql://user@host:5432/dbname"
    )


__all__ = ["DEFAULT_URL", "Store", "open_store", "resolve_url"]
