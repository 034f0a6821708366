"""The notifications part of the store contract: wake-ups on named channels."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

SCHEDULER_CHANNEL = "scheduler"
"""Notices that the scheduler has work: tasks submitted or retried, slots freed."""
WORKERS_CHANNEL = "workers"
"""Notices for workers: `admitted:<pool>` and `cancel:<task id>`."""


class Listener(Protocol):
    def wait(self, timeout: float) -> list[tuple[str, str]]:
        """Block up to `timeout` seconds; return the (channel, payload) notices that arrived,
        or nothing on timeout. A store without notifications just sleeps (callers poll)."""
        ...

    def close(self) -> None: ...


class Notifications(Protocol):
    notifies: bool
    """Whether `listen` delivers notices (PostgreSQL; SQLite where it has Unix sockets) or only
    sleeps (callers poll). Notices are hints: a caller keeps a slower poll as the fallback."""

    def listen(self, channels: Sequence[str]) -> Listener:
        """A listener on the named channels (SCHEDULER_CHANNEL, WORKERS_CHANNEL)."""
        ...
