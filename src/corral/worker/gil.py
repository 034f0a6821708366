"""Noticing a handler that holds the GIL: a monitor thread that measures how long it was kept from
running, and names the thread handlers that were running meanwhile.

The monitor sleeps `interval` seconds at a time; waking needs the GIL, so when it wakes late by
`warn_after` seconds or more, something held the GIL (or the whole process was stopped) for that
long. Whom to name: each thread handler's thread CPU time is read at every wake
(`pthread_getcpuclockid`); a thread that used at least HOLDER_SHARE of the gap on a CPU while no
other Python thread could run was in C code holding the GIL, and is named alone (`attributed`).
A C call that sleeps or waits holding the GIL uses no CPU: then every thread handler that ran
through the gap is named, as one of which held it (`attributed` false). A handler that ended
after its hold, before the monitor got the GIL back, is still named (the executor keeps the
latest ended runs with their CPU times).

No moment goes unwatched: each wake reads the clock and samples the threads first, in a few
microseconds (another thread waiting for the GIL can take it from the monitor only after the
5 ms switch interval), and the next gap is measured from that reading. So a hold that begins
while the monitor is busy (its report to the worker writes to a socket, which releases the GIL,
and a handler waiting for the GIL takes it then) falls into the next gap, with the CPU times
sampled before it began.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .executors import ThreadTask, thread_tasks

HOLDER_SHARE = 0.1
"""A thread that computed this share of a gap held the GIL (the others can't run Python)."""


@dataclass(frozen=True)
class GilHold:
    seconds: float
    """How long the monitor was kept from running."""
    tasks: tuple[ThreadTask, ...]
    """The thread handlers named for it (may be empty: none was running)."""
    attributed: bool
    """True if the named handlers computed through the gap (so held the GIL); False if no thread
    handler used CPU meanwhile and all those running are named."""

    def describe(self, run: ThreadTask | None, warn_after: float) -> str:
        """The log line about `run` (None: about a hold while no thread handler ran)."""
        limit = f"(gil_warn_after {warn_after:g}s)"
        if run is None:
            return f"the interpreter was blocked for {self.seconds:.1f}s {limit}, no thread " + (
                "handler running: a GC pause, a stopped process, or an async handler's C call?"
            )
        if self.attributed:
            how = "held the GIL"
        else:
            ids = ", ".join(str(r.task_id) for r in self.tasks)
            how = f"ran while the GIL was held by one of tasks {ids} (a C call using no CPU)"
        return (
            f"task {run.task_id} ({run.task_name}) {how} for {self.seconds:.1f}s {limit}: no "
            "other Python code of the worker ran meanwhile (its leases are renewed by its "
            "heartbeat companion); executor='process' runs such code apart"
        )

    def detail(self, warn_after: float) -> dict[str, object]:
        """The `gil_held` event's detail."""
        return {
            "seconds": round(self.seconds, 3),
            "threshold": warn_after,
            "attributed": self.attributed,
            "tasks": [run.task_id for run in self.tasks],
        }


def _thread_cpu(ident: int) -> float | None:
    try:
        return time.clock_gettime(time.pthread_getcpuclockid(ident))
    except (OSError, AttributeError, OverflowError):  # the thread ended; or no such clock here
        return None


Running = dict[int, tuple[ThreadTask, float | None]]
"""Per handler thread (by ident): the run it holds and the thread's CPU time when sampled."""
Ended = list[tuple[int, ThreadTask, float, float]]
"""The latest ended runs: (thread ident, run, its thread's CPU time at its end, monotonic end)."""


def _sample() -> tuple[Running, Ended]:
    """The handler threads' runs with their CPU times now, and the latest ended runs."""
    running, ended = thread_tasks()
    return {ident: (run, _thread_cpu(ident)) for ident, run in running.items()}, ended


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

    def _run(self) -> None:
        last, (before, _) = time.monotonic(), _sample()
        while not self._stop.wait(self.interval):
            # The clock and the sample first, before anything that may let go of the GIL.
            now, (after, ended) = time.monotonic(), _sample()
            gap = now - last - self.interval
            if gap >= self.warn_after:
                hold = self._hold(gap, last, before, after, ended)
                with contextlib.suppress(Exception):  # a report must never end the monitor
                    self._on_hold(hold)
            last, before = now, after

    def _hold(
        self, gap: float, start: float, before: Running, after: Running, ended: Ended
    ) -> GilHold:
        """The runs that went on through the gap (from the wake at `start` to the one that sampled
        `after` and `ended`), narrowed to those whose thread computed. A run that started after
        `before` was sampled counts from its own start; one that ended since counts up to its
        end if that came after the monitor's sleep (`interval`) was over, so while it was kept
        from running: a run that ended sooner did not run through the stretch. The CPU times,
        not the order, tell who held it: of holds back to back, the first ended early in the
        stretch and is named all the same."""
        spans = {(ident, run): cpu for ident, (run, cpu) in after.items()}
        blocked = start + self.interval
        spans.update(((i, r), cpu) for i, r, cpu, at in ended if at >= blocked)
        holders, named = [], []
        for (ident, run), cpu_at_end in spans.items():
            sampled = before.get(ident)
            first = sampled[1] if sampled and sampled[0] == run else run.cpu_at_start
            named.append(run)
            used = None if first is None or cpu_at_end is None else cpu_at_end - first
            if used is not None and used >= HOLDER_SHARE * gap:
                holders.append(run)
        if holders:
            return GilHold(gap, tuple(holders), True)
        return GilHold(gap, tuple(named), False)
