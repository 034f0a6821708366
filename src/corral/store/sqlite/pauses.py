"""SQLite's hook of the paused-groups store (written once in store/pauses.py): an immediate
write, and a resume wakes the scheduler once it has committed."""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from typing import Any

from ..contract import SCHEDULER_CHANNEL
from ..pauses import NamedPauses
from . import pause_queries


class SQLitePauses(NamedPauses):
    """Mixed into SQLiteStore."""

    pause_queries = pause_queries

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def _notice(self, channel: str, payload: str = "") -> None:
        raise NotImplementedError

    def _pause_tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._write()

    def _resumed(self, tx: Any) -> None:
        self._notice(SCHEDULER_CHANNEL)
