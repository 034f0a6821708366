"""Noticing a handler that holds the GIL: a monitor thread that measures how long it was kept from
running, and names the thread handlers that were running meanwhile.

The monitor sleeps `interval` seconds at a time; waking needs the GIL, so when it wakes late by
`warn_after` seconds or more, something held the GIL (or the whole process was stopped) for that
long. Whom to name: each thread handler's thread CPU time is read at every wake
(`pthread_getcpuclockid`); a thread that used at least HOLDER_SHARE of the gap on a CPU while no
other Python thread could run was in C code holding the GIL, and is named alone (`attributed`).
A C call that sleeps or waits holding the GIL uses no CPU: then every thread handler that ran
through the gap is named, as one of which held it (`attributed` false).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .executors import thread_tasks

HOLDER_SHARE = 0.1
"""A thread that computed this share of a gap held the GIL (the others can't run Python)."""


@dataclass(frozen=True)
class GilHold:
    seconds: float
    """How long the monitor was kept from running."""
    task_ids: tuple[int, ...]
    """The thread handlers' tasks named for it (may be empty: none was running)."""
    attributed: bool
    """True if the named tasks computed through the gap (so held the GIL); False if no thread
    handler used CPU meanwhile and all those running are named."""


def _thread_cpu(ident: int) -> float | None:
    try:
        return time.clock_gettime(time.pthread_getcpuclockid(ident))
    except (OSError, AttributeError, OverflowError):  # the thread ended; or no such clock here
        return None


class GilMonitor:
    """Thread `corral-gil-monitor`: calls `on_hold(GilHold)` (from its own thread) after each
    stretch of `warn_after` seconds or more in which it could not run."""

    def __init__(
        self, warn_after: float, on_hold: Callable[[GilHold], None], interval: float = 0.1
    ) -> None:
        self.warn_after = warn_after
        self.interval = interval
        self._on_hold = on_hold
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="corral-gil-monitor", daemon=True)

    def start(self) -> GilMonitor:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _sample(self) -> dict[int, tuple[int, float | None]]:
        """Per handler thread: the task it runs and its CPU time so far."""
        return {ident: (task, _thread_cpu(ident)) for ident, (task, _) in thread_tasks().items()}

    def _run(self) -> None:
        before = self._sample()
        last = time.monotonic()
        while not self._stop.wait(self.interval):
            now = time.monotonic()
            gap = now - last - self.interval
            if gap >= self.warn_after:
                hold = self._hold(gap, before)
                with contextlib.suppress(Exception):  # a report must never end the monitor
                    self._on_hold(hold)
            before = self._sample()
            last = time.monotonic()

    def _hold(self, gap: float, before: dict[int, tuple[int, float | None]]) -> GilHold:
        """The tasks running through the gap, narrowed to those whose thread computed. A task
        that started just before the gap (after the last sample) counts from its own start."""
        baselines = dict(before)
        for ident, (task_id, started_cpu) in thread_tasks().items():
            if baselines.get(ident, (None,))[0] != task_id:
                baselines[ident] = (task_id, started_cpu)
        holders = set()
        for ident, (task_id, cpu) in baselines.items():
            cpu_now = _thread_cpu(ident)  # a pooled thread outlives its task
            if cpu is not None and cpu_now is not None and cpu_now - cpu >= HOLDER_SHARE * gap:
                holders.add(task_id)
        if holders:
            return GilHold(gap, tuple(sorted(holders)), True)
        return GilHold(gap, tuple(sorted({task_id for task_id, _ in baselines.values()})), False)
