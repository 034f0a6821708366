"""Upkeep: a leader service that keeps corral's tables vacuumed and their statistics fresh where
the database server doesn't (corral.upkeep says which tables, the store runs the statements).

A VACUUM of a big tasks table takes seconds, and the leader's round must not wait for it, so each
run starts the store's upkeep in a thread of its own and returns at once; a run while the last
one still works starts nothing. A run returns the tables the finished runs did since the last
one (the leader's work counter, `corral_scheduler_work_total{service="upkeep"}`). The first run
comes one interval after the leader started: its rounds come first.
"""

from __future__ import annotations

import logging
import threading

from ..store import Store

log = logging.getLogger("corral.scheduler")

DEFAULT_INTERVAL = 60.0


class Upkeep:
    name = "upkeep"

    def __init__(self, store: Store, *, interval: float = DEFAULT_INTERVAL) -> None:
        self.store = store
        self.interval = interval
        self._thread: threading.Thread | None = None
        self._started = False
        self._lock = threading.Lock()
        self._done = 0
        """Tables vacuumed or analyzed by finished runs, not yet reported by `run`."""

    def run(self, now: float) -> int:
        if not self._started:
            self._started = True  # the first run is the interval's start
            return 0
        with self._lock:
            done, self._done = self._done, 0
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._work, name="corral-upkeep", daemon=True)
            self._thread.start()
        return done

    def wait(self, timeout: float | None = None) -> None:
        """Wait for a run's thread to end (for tests: a scheduler never waits for it)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _work(self) -> None:
        try:
            work = self.store.table_upkeep()
        except Exception as exc:  # a failed upkeep is tried again at the next interval
            log.warning("table upkeep failed: %s", exc)
            return
        with self._lock:
            self._done += len(work)
