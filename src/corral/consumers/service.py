"""The event consumer: a named reader of the event feed, at least once, in commit order.

A `Consumer` says what to read (its `name`, the event `kinds`, a `batch` size) and what to do
with it (`handler`). A `ConsumerService` runs one in a process: it takes the consumer's lease (a
row per name in the store, shared by every process that runs the same name, so one reads at a
time), reads the events after the row's cursor in commit order (SQLite: id; PostgreSQL: the
writing transaction, then id: see `Store.event_fetch_unseen`), hands them to the handler and
moves the cursor only once the handler has returned, a compare-and-set on the lease. A process
that dies in between leaves the cursor where it was; another takes the lease once it expires and
delivers the same events again: at least once, each with its event id to recognise a repeat.
Events of other kinds are read past and count as delivered.

A new name starts at the head of the feed (`start="now"`: the events committed from then on) or
at the origin (`start="beginning"`: every event still stored). Its row stays until it is retired
(`app.consumers.retire`), and holds back retention: no task is pruned before every consumer has
read past its events.

A handler that raises is retried, the same events again, after a backoff (`Consumer.backoff`,
counted per batch or event), and the cursor does not move past them: an error never skips an
event silently. By default a poison event blocks its consumer (each failure logged) until the
handler copes; with `max_attempts`, a batch that failed that often is retried one event at a
time, and an event that failed that often is skipped with a `consumer_skipped` event recorded on
its task (and logged). Per event (`per_event=True`) the cursor moves past each event handled, so
an error redelivers from the failing one.

Wake-ups: the lease holder listens for the store's notices (submits, completions, admissions,
cancels: PostgreSQL's NOTIFY, SQLite's datagrams) and reads at once; it polls every `poll` seconds
regardless, and where the store has no wake-ups.
Cost: one read of at most `batch` events per round, one write to move the cursor, one to renew
the lease every lease/3; a standby process tries the lease every `poll`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import random
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .. import limits
from ..backoff import Backoff
from ..clock import Clock
from ..codec import dumps, loads
from ..errors import ConfigError
from ..failures import Failure, last_frame
from ..model import FeedEvent
from ..store.contract import (
    SCHEDULER_CHANNEL,
    WORKERS_CHANNEL,
    EventParams,
    Lease,
    LeaseKind,
    Listener,
    Store,
)
from .events import EVENT_KINDS, SKIPPED_KIND, StateChange

log = logging.getLogger("corral.consumers")

Start = Literal["now", "beginning"]
STARTS: tuple[Start, ...] = ("now", "beginning")
RETRY_BACKOFF = Backoff(base=1.0, factor=2.0, cap=60.0, jitter=0.5)
"""Between tries of a failing handler: about 1 s, 2 s, 4 s ... up to a minute."""
WAKE_CHANNELS = (SCHEDULER_CHANNEL, WORKERS_CHANNEL)
"""The notices that come with new events (submits, completions, admissions, cancels)."""
MAX_BATCH = 10_000
STOP_CHECK = 0.5
"""Seconds between looks at the stop flag while a lease holder waits for a notice."""
ERROR_PAUSE = 1.0
"""Seconds to wait after a store call failed (the store may come back) before trying again."""


@dataclass(frozen=True)
class Consumer:
    """An event consumer: what it reads and what it calls. See the module docstring.

    `handler` takes a list of `StateChange`s (or one, with `per_event=True`); it may be a
    coroutine function. `kinds`: the event kinds it wants (None or "*": all). `max_attempts`:
    None to retry a failing handler for ever, else the tries before an event is skipped (and
    recorded). `lease`: seconds another process waits before taking over from a dead one (a
    batch should be handled well within it). `poll`: seconds between reads when there was
    nothing new. `wake`: read at once on the store's notices."""

    name: str
    handler: Callable[..., Any]
    kinds: frozenset[str] | None = None
    batch: int = 100
    per_event: bool = False
    start: Start = "now"
    max_attempts: int | None = None
    backoff: Backoff = RETRY_BACKOFF
    lease: float = 15.0
    poll: float = 0.2
    wake: bool = True

    def __post_init__(self) -> None:
        name = limits.text("consumer name", self.name)
        if name == "*":
            raise ConfigError("consumer name '*' is reserved (the feed's origin)")
        if not callable(self.handler):
            raise ConfigError(f"consumer {name!r}: handler is not callable: {self.handler!r:.80}")
        object.__setattr__(self, "kinds", _kinds(name, self.kinds))
        limits.whole(f"consumer {name!r} batch", self.batch, 1, MAX_BATCH)
        if self.start not in STARTS:
            raise ConfigError(f"consumer {name!r}: start must be one of {STARTS}, "
                              f"got {self.start!r}")  # fmt: skip
        if self.max_attempts is not None:
            limits.whole(f"consumer {name!r} max_attempts", self.max_attempts, 1)
        if not isinstance(self.backoff, Backoff):
            raise ConfigError(f"consumer {name!r}: backoff must be a corral.Backoff, "
                              f"got {self.backoff!r:.80}")  # fmt: skip
        limits.number(f"consumer {name!r} lease", self.lease, 0, limits.MAX_SECONDS, above=True)
        limits.number(f"consumer {name!r} poll", self.poll, 0, limits.MAX_SECONDS, above=True)

    def wants(self, kind: str) -> bool:
        return self.kinds is None or kind in self.kinds


def _kinds(name: str, kinds: Iterable[str] | None) -> frozenset[str] | None:
    if kinds is None:
        return None
    if isinstance(kinds, str):
        kinds = [kinds]
    chosen = frozenset(kinds)
    if not chosen:
        raise ConfigError(f"consumer {name!r}: kinds is empty (None reads every kind)")
    unknown = sorted(str(k) for k in chosen - EVENT_KINDS - {"*"})
    if unknown:
        raise ConfigError(f"consumer {name!r}: unknown event kind(s) {unknown}; "
                          f"known: {sorted(EVENT_KINDS)}")  # fmt: skip
    return None if "*" in chosen else chosen


class ConsumerService:
    """Runs one `Consumer` in this process as `holder`: `run(stop)` loops until `stop` is set
    (in a thread of its own: `start(stop)`); `run_once(now)` is one round, for tests and for
    callers with a loop of their own."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        consumer: Consumer,
        holder: str,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.consumer = consumer
        self.holder = holder
        self.holds_lease = False
        self.delivered = 0
        """Events handed to the handler (a redelivered one counts again)."""
        self.skipped = 0
        self.failures = 0
        """Failures in a row of the batch or event being retried (0: none)."""
        self._renewed = -math.inf
        self._retry_at = -math.inf
        self._failing: tuple[int, bool] | None = None
        """What is being retried: (first event id, whether it is one event or a batch)."""
        self._error: BaseException | None = None
        self._narrow_until: tuple[int, int] | None = None
        """After a batch exhausted its tries: deliver one by one up to this position."""
        self._rng = rng

    @property
    def name(self) -> str:
        return self.consumer.name

    def start(self, stop: threading.Event) -> threading.Thread:
        thread = threading.Thread(
            target=self.run, args=(stop,), name=f"corral-consumer-{self.name}", daemon=True
        )
        thread.start()
        return thread

    def run(self, stop: threading.Event) -> None:
        listener: Listener | None = None
        try:
            while not stop.is_set():
                try:
                    moved = self.run_once(self.clock.now())
                except Exception as exc:  # the store may come back; never kill the process
                    log.warning("consumer %s: failed, will retry: %s", self.name, exc)
                    self.holds_lease = False
                    stop.wait(ERROR_PAUSE)
                    continue
                if moved:
                    continue
                if self.holds_lease and self.consumer.wake and self.store.notifies:
                    listener = listener or self.store.listen(WAKE_CHANNELS)
                    self._idle(stop, listener)
                else:
                    stop.wait(self._pause())
        finally:
            if listener is not None:
                listener.close()
            if self.holds_lease:
                try:
                    self.store.lease_release(Lease(LeaseKind.CONSUMER, self.name, self.holder, 0.0))
                except Exception as exc:
                    log.debug("consumer %s: could not release its lease: %s", self.name, exc)

    def _idle(self, stop: threading.Event, listener: Listener) -> None:
        """Wait for a notice, the next poll or `stop`, whichever comes first."""
        deadline = time.monotonic() + self._pause()
        while not stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            if listener.wait(min(left, STOP_CHECK)):
                stop.wait(0.01)  # let a burst of notices gather
                return

    def _pause(self) -> float:
        """Until the next round: `poll`, or less when a retry falls due sooner."""
        until_retry = self._retry_at - self.clock.now()
        return min(self.consumer.poll, until_retry) if until_retry > 0 else self.consumer.poll

    def run_once(self, now: float) -> int:
        """One round: if this process holds the lease (taking or renewing it) and no retry is
        due later, read a batch, hand it over and move the cursor. How many events the cursor
        went past (0: none new, a retry pending, a failure, or not the holder)."""
        if not self._hold_lease(now) or now < self._retry_at:
            return 0
        feed = self.store.event_fetch_unseen(self.name, self.consumer.batch)
        if not feed:
            return 0
        if self.consumer.per_event or self._narrow_until is not None:
            passed = self._one_by_one(feed)
        else:
            passed = self._whole(feed)
        if passed == 0:
            return 0
        last = feed[passed - 1]
        position = (last.xid, last.event.id)
        if not self.store.consumer_advance(self.name, self.holder, position, self.clock.now()):
            # The lease ran out while the handler ran: another process may deliver these again
            # (at least once still holds).
            log.warning("consumer %s: lease lost while delivering; another process takes over",
                        self.name)  # fmt: skip
            self.holds_lease = False
            return 0
        if self._narrow_until is not None and position >= self._narrow_until:
            self._narrow_until = None
        return passed

    # -- the lease ----------------------------------------------------------------------------
    def _hold_lease(self, now: float) -> bool:
        lease = self.consumer.lease
        if self.holds_lease and now - self._renewed < lease / 3:
            return True
        if not self.holds_lease:
            self.store.consumer_create(self.name, at_head=self.consumer.start == "now")
        was = self.holds_lease
        held = Lease(LeaseKind.CONSUMER, self.name, self.holder, now + lease)
        self.holds_lease = self.store.lease_acquire(held, now)
        self._renewed = now
        if self.holds_lease and not was:
            log.info("consumer %s: %s reads the event feed", self.name, self.holder)
        elif was and not self.holds_lease:
            log.warning("consumer %s: %s lost its lease", self.name, self.holder)
        return self.holds_lease

    # -- handing events over --------------------------------------------------------------------
    def _whole(self, feed: Sequence[FeedEvent]) -> int:
        """The batch in one call: all of it passed, or none."""
        wanted = [StateChange.of(f) for f in feed if self.consumer.wants(f.event.kind)]
        error = self._call(wanted) if wanted else None
        if error is None:
            self._succeeded()
            return len(feed)
        if self._failed(feed[0].event.id, single=False, error=error):
            # Tried often enough as a batch: find the poison event, one event at a time.
            last = feed[-1]
            self._narrow_until = (last.xid, last.event.id)
            self._failing, self.failures, self._retry_at = None, 0, -math.inf
            log.error("consumer %s: a batch failed %d times; retrying it one event at a time",
                      self.name, self.consumer.max_attempts)  # fmt: skip
        return 0

    def _one_by_one(self, feed: Sequence[FeedEvent]) -> int:
        """Each wanted event in a call of its own; how many of `feed` passed before a failure."""
        for i, item in enumerate(feed):
            if not self.consumer.wants(item.event.kind):
                continue
            if i and not self._hold_lease(self.clock.now()):  # renewed between events
                return i
            if self._exhausted(item.event.id):
                self._skip(item)
                continue
            change = StateChange.of(item)
            error = self._call(change if self.consumer.per_event else [change])
            if error is None:
                self._succeeded()
            elif self._failed(item.event.id, single=True, error=error):
                self._skip(item)
            else:
                return i
        return len(feed)

    def _call(self, value: StateChange | list[StateChange]) -> BaseException | None:
        try:
            result = self.consumer.handler(value)
            if inspect.isawaitable(result):
                asyncio.run(_awaited(result))
        except Exception as exc:
            return exc
        self.delivered += 1 if isinstance(value, StateChange) else len(value)
        return None

    # -- failures -------------------------------------------------------------------------------
    def _succeeded(self) -> None:
        self._failing, self.failures, self._error = None, 0, None

    def _failed(self, first: int, *, single: bool, error: BaseException) -> bool:
        """Count a failure of the batch or event that starts at event `first`; schedule its
        retry. Whether it has failed `max_attempts` times."""
        same = self._failing == (first, single)
        self.failures = self.failures + 1 if same else 1
        self._failing, self._error = (first, single), error
        what = f"event {first}" if single else f"the batch from event {first}"
        log.error("consumer %s: handler failed on %s (failure %d): %s", self.name, what,
                  self.failures, _describe(error), exc_info=error)  # fmt: skip
        exhausted = self.consumer.max_attempts is not None and (
            self.failures >= self.consumer.max_attempts
        )
        if not exhausted:
            delay = self.consumer.backoff.delay(self.failures, self._rng)
            self._retry_at = self.clock.now() + delay
        return exhausted

    def _exhausted(self, event_id: int) -> bool:
        limit = self.consumer.max_attempts
        return limit is not None and self._failing == (event_id, True) and self.failures >= limit

    def _skip(self, item: FeedEvent) -> None:
        """Give up on one event: record a `consumer_skipped` event on its task (raises if the
        store can't, and the event is tried again), log it, move on."""
        error = self._error
        failure = _failure(error) if error is not None else None
        detail = {"consumer": self.name, "event": item.event.id, "kind": item.event.kind,
                  "attempts": self.failures,
                  "error": failure.to_json() if failure else None}  # fmt: skip
        own = item.event.kind == SKIPPED_KIND and _consumer_of(item) == self.name
        if not own:  # never a skip of a skip record: a handler failing on all would loop
            self.store.task_record_event(
                EventParams(
                    item.event.task_id, item.event.attempt, SKIPPED_KIND, dumps(detail),
                    self.clock.now(),
                )
            )  # fmt: skip
        log.error("consumer %s: skipped event %d (%s of task %d) after %d failures: %s",
                  self.name, item.event.id, item.event.kind, item.event.task_id, self.failures,
                  _describe(error))  # fmt: skip
        self.skipped += 1
        self._succeeded()
        self._retry_at = -math.inf


def _failure(error: BaseException) -> Failure:
    text = "".join(traceback.format_exception(error))
    message = str(error)[:2000]
    return Failure(type(error).__name__, message, last_frame(text) or "consumer handler")


def _describe(error: BaseException | None) -> str:
    return "unknown error" if error is None else f"{type(error).__name__}: {error}"


def _consumer_of(item: FeedEvent) -> Any:
    detail = loads(item.event.detail) if item.event.detail else None
    return detail.get("consumer") if isinstance(detail, dict) else None


async def _awaited(awaitable: Any) -> Any:
    return await awaitable
