"""One clock per store: where every process takes "now" from.

Leases, expiries and due times are written by one process and compared by another, so they must
all come from one clock source. Each store offers the clock that is right for it
(`store.clock()`): SQLite, one host, its processes all read the host's clock (`SystemClock`);
PostgreSQL, many hosts, each process follows the database server's clock (`DatabaseClock`).
Components (App, Worker, Scheduler, callbacks) take that clock unless a test passes its own
(`ManualClock`). `time.monotonic()` for local timeouts and sleeps stays local: it measures
durations, never moments another process compares.

How `DatabaseClock` follows the server without a round trip per reading: it reads the server's
clock once (`sample`), noting the local elapsed-time clock before and after, and from then on
gives the server's time at the midpoint plus the local time elapsed since. The local clock is
CLOCK_BOOTTIME where there is one (it keeps counting through a suspend), else `time.monotonic()`:
never the host's wall clock, so a host whose time is wrong or stepped reads the right time. The
error of a reading is at most half the sample's round trip plus the drift of the local clock
since (parts per million); `refresh` (a sample per interval, taken by the store's own thread)
keeps the drift small and follows a step of the server's clock within one interval.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger("corral.clock")

SKEW_WARNING = 1.0
"""A process whose own clock is further than this (seconds) from the database's logs a warning
once: corral is unaffected, but the host's logs and the user's own code read the wrong time."""


class Clock(Protocol):
    def now(self) -> float:
        """The current time as a UNIX timestamp (seconds)."""
        ...


class SystemClock:
    """The host's clock: the one source for all the processes of a host (SQLite)."""

    def now(self) -> float:
        return time.time()


class ManualClock:
    """A clock that moves only when told: tests move time instead of sleeping."""

    def __init__(self, start: float) -> None:
        self._now = float(start)
        self._lock = threading.Lock()

    def now(self) -> float:
        return self._now

    def set(self, when: float) -> None:
        with self._lock:
            self._now = float(when)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds


def _elapsed_clock() -> Callable[[], float]:
    boottime = getattr(time, "CLOCK_BOOTTIME", None)
    if boottime is None:
        return time.monotonic
    try:
        time.clock_gettime(boottime)
    except OSError:
        return time.monotonic
    return functools.partial(time.clock_gettime, boottime)


@dataclass(frozen=True)
class Sample:
    """One reading of the database's clock: its time at the local `elapsed` instant."""

    database: float
    elapsed: float
    round_trip: float
    skew: float
    """The database's time minus this host's (positive: the host is behind)."""

    @property
    def error(self) -> float:
        """The most the sample can be off: half its round trip."""
        return self.round_trip / 2


class DatabaseClock:
    """The database server's clock, followed locally (see the module docstring). `read` returns
    the server's current time as a UNIX timestamp in one round trip."""

    def __init__(
        self, read: Callable[[], float], *, refresh: float | None = 10.0, samples: int = 3
    ) -> None:
        self._read = read
        self._elapsed = _elapsed_clock()
        best = min((self._measure() for _ in range(max(1, samples))), key=lambda s: s.round_trip)
        self._sample = best
        _check_skew(best)
        self._stop = threading.Event()
        if refresh is not None:
            threading.Thread(
                target=self._follow, args=(refresh,), name="corral-clock", daemon=True
            ).start()

    def _measure(self) -> Sample:
        before, wall_before = self._elapsed(), time.time()
        database = self._read()
        after, wall_after = self._elapsed(), time.time()
        midpoint = (before + after) / 2
        return Sample(database, midpoint, after - before, database - (wall_before + wall_after) / 2)

    @property
    def sample(self) -> Sample:
        return self._sample

    def now(self) -> float:
        sample = self._sample  # one reference: a refresh replaces it whole
        return sample.database + (self._elapsed() - sample.elapsed)

    def refresh(self) -> Sample:
        """Read the server's clock again (one round trip) and follow it from now on."""
        sample = self._measure()
        self._sample = sample
        _check_skew(sample)
        return sample

    def stop(self) -> None:
        """End the refreshes (the store closes)."""
        self._stop.set()

    def _follow(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.refresh()
            except Exception as exc:  # the database may come back: keep the last sample
                log.debug("could not read the database's clock: %s", exc)


_warned = threading.Event()


def skip_skew_warning() -> None:
    """Don't warn of this process's skew: for a helper process (a worker's heartbeat companion)
    on the host of a process that warns already."""
    _warned.set()


def _check_skew(sample: Sample) -> None:
    """Warn once per process when this host's clock is far from the database's."""
    if abs(sample.skew) <= SKEW_WARNING or _warned.is_set():
        return
    _warned.set()
    log.warning(
        "this host's clock is %+.3fs off the database's (%s by %.3fs, measured within "
        "%.3fs): corral takes its times from the database, but check the host's time sync "
        "(NTP)",
        -sample.skew, "ahead" if sample.skew < 0 else "behind", abs(sample.skew), sample.error,
    )  # fmt: skip
