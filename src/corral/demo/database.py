"""The demo's database: an SQLite file it recreates at each start, refusing to delete one that
holds anything but demo tasks."""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError, CorralError
from ..readside import ReadSide
from ..store import open_store

TASK_PREFIX = "demo."
"""Every demo task type's name starts with it."""


def _sqlite_path(url: str) -> Path:
    if "://" not in url:
        url = f"sqlite:///{url}"
    if not url.startswith("sqlite:///"):
        raise ConfigError(f"the demo runs on an SQLite file (sqlite:///path.db), not {url!r}")
    return Path(url[len("sqlite:///") :].split("?", 1)[0]).expanduser().resolve()


def _is_demo_database(path: Path) -> bool:
    """Empty, or holding only tasks of the demo's types (read through the read side)."""
    if path.stat().st_size == 0:
        return True
    try:
        store = open_store(f"sqlite:///{path}", migrate=False)
    except CorralError:
        return False
    try:
        return ReadSide(store, store.clock()).foreign_task(TASK_PREFIX) is None
    except CorralError:  # not an SQLite file, or no corral tasks in it
        return False
    finally:
        store.close()


def reset_database(url: str) -> str:
    """Delete the demo database (only one that holds nothing but demo tasks); its absolute URL."""
    path = _sqlite_path(url)
    if path.exists():
        if not path.is_file() or not _is_demo_database(path):
            raise ConfigError(
                f"refusing to delete {path}: it is not a corral demo database; "
                "give another --database-url"
            )
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{path}"
