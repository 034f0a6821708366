"""The paused-groups store's methods (the contract: store/contract/pauses.py), once for both
backends: each runs its backend's named statement (`pause_queries.X`). A backend gives its write
transaction (durable on PostgreSQL) and what wakes its scheduler after a resume."""

from __future__ import annotations

from contextlib import AbstractContextManager
from types import ModuleType
from typing import Any

from .contract.pauses import PausedGroup


class NamedPauses:
    """The GroupPauses methods, mixed into each backend's store."""

    pause_queries: ModuleType

    def _read(self, query: str, params: Any = None) -> list[Any]:
        raise NotImplementedError

    def _pause_tx(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _resumed(self, tx: Any) -> None:
        """A group was resumed in `tx`: wake the scheduler (where the backend notifies)."""

    def group_pause(self, pause: PausedGroup) -> bool:
        values = {
            "name": pause.name,
            "paused_at": pause.paused_at,
            "paused_by": pause.paused_by,
            "reason": pause.reason,
        }
        with self._pause_tx() as tx:
            return tx.execute(self.pause_queries.PAUSE, values).fetchone() is not None

    def group_resume(self, name: str) -> bool:
        with self._pause_tx() as tx:
            resumed = tx.execute(self.pause_queries.RESUME, {"name": name}).fetchone() is not None
            if resumed:
                self._resumed(tx)
            return resumed

    def group_paused_list(self) -> list[PausedGroup]:
        return [
            PausedGroup(name, float(at), by, reason)
            for name, at, by, reason in self._read(self.pause_queries.PAUSED)
        ]
