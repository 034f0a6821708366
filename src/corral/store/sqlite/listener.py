"""Where SQLite has no wake-ups (no AF_UNIX, see wake.py): a listener only sleeps, callers poll."""

from __future__ import annotations

import threading


class PollingListener:
    def __init__(self) -> None:
        self._closed = threading.Event()

    def wait(self, timeout: float) -> list[tuple[str, str]]:
        self._closed.wait(timeout)
        return []

    def close(self) -> None:
        self._closed.set()
