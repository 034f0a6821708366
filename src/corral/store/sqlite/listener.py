"""Wake-ups on SQLite: none, so a listener only sleeps and its callers poll."""

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
