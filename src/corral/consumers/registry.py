"""`app.consumers`: the app's event consumers, registered by name, and their stored rows.

Register one with `app.consumers.add(name, handler, kinds=...)` or `@app.consumers(name, ...)`.
The processes that hold the app's code run them: every `corral worker` and `corral run` (one
process reads a name at a time), or your own process with `app.consumers.run()` or
`corral consumers run`. `list()` shows the stored rows, `retire(name)` deletes one so that a
consumer that no longer runs stops holding back retention."""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

from ..backoff import Backoff
from ..errors import ConfigError, TransitionRefused
from ..model import ConsumerRecord
from .service import RETRY_BACKOFF, Consumer, ConsumerService, Start

if TYPE_CHECKING:
    from ..app import App

F = TypeVar("F", bound=Callable[..., Any])
RESERVED = frozenset({"callbacks"})
"""Names corral's own consumers use (state-change callbacks: `app.on`)."""


class Consumers:
    """The app's event consumers (see corral.consumers.service for what one guarantees)."""

    def __init__(self, app: App) -> None:
        self._app = app
        self._registered: dict[str, Consumer] = {}

    def add(
        self,
        name: str,
        handler: Callable[..., Any],
        *,
        kinds: Iterable[str] | None = None,
        batch: int = 100,
        per_event: bool = False,
        start: Start = "now",
        max_attempts: int | None = None,
        backoff: Backoff = RETRY_BACKOFF,
        lease: float = 15.0,
        poll: float = 0.2,
        wake: bool = True,
    ) -> Consumer:
        """Register consumer `name`: `handler(changes)` gets each batch of events of `kinds`
        (None: all) after the consumer's cursor, in commit order, at least once; with
        `per_event=True`, `handler(change)` one at a time. A new name starts at `start`: "now"
        (the events from its first run on) or "beginning" (every event still stored). A failing
        handler is retried after `backoff`, for ever unless `max_attempts` (then the event is
        skipped and a `consumer_skipped` event recorded on its task)."""
        if name in RESERVED:
            raise ConfigError(f"consumer name {name!r} is corral's own (state-change callbacks: "
                              "use app.on)")  # fmt: skip
        if name in self._registered:
            raise ConfigError(f"a consumer named {name!r} is registered already")
        consumer = Consumer(
            name, handler, kinds=None if kinds is None else frozenset(_strings(kinds)),
            batch=batch, per_event=per_event, start=start, max_attempts=max_attempts,
            backoff=backoff, lease=lease, poll=poll, wake=wake,
        )  # fmt: skip
        self._registered[name] = consumer
        return consumer

    def __call__(self, name: str, **options: Any) -> Callable[[F], F]:
        """`@app.consumers("alerts", kinds=["dead"])` over a handler: `add` it."""

        def register(fn: F) -> F:
            self.add(name, fn, **options)
            return fn

        return register

    def registered(self) -> tuple[Consumer, ...]:
        """The consumers registered in this process's app, by name."""
        return tuple(self._registered[n] for n in sorted(self._registered))

    def get(self, name: str) -> Consumer:
        try:
            return self._registered[name]
        except KeyError:
            raise ConfigError(f"no consumer named {name!r} is registered (registered: "
                              f"{sorted(self._registered)})") from None  # fmt: skip

    def services(
        self, holder: str | None = None, names: Sequence[str] = (), *, start: Start | None = None
    ) -> list[ConsumerService]:
        """A service per registered consumer (or those `names`), as `holder` (default: this
        host and process); `start` overrides where new names start (the testing harness)."""
        holder = holder or default_holder()
        chosen = [self.get(n) for n in names] if names else list(self.registered())
        if start is not None:
            chosen = [replace(c, start=start) for c in chosen]
        return [ConsumerService(self._app.store, self._app.clock, c, holder) for c in chosen]

    def run(self, *names: str, stop: threading.Event | None = None) -> None:
        """Run the registered consumers (or those `names`) in this process, a thread each, until
        `stop` is set (or KeyboardInterrupt): a process of your own that only consumes."""
        services = self.services(names=names)
        if not services:
            raise ConfigError("no consumers are registered: app.consumers.add(name, handler)")
        stop = stop or threading.Event()
        threads = [s.start(stop) for s in services]
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            stop.set()
        for thread in threads:
            thread.join(30)

    # -- the stored rows ------------------------------------------------------------------------
    def retire(self, name: str) -> None:
        """Delete consumer `name`'s stored row and cursor: it no longer holds back retention,
        and if it runs again it starts afresh (at its `start`). Refused while a process holds
        its lease (stop that process first)."""
        store = self._app.store
        now = self._app.clock.now()
        if store.consumer_retire(name, now):
            return
        found = next((r for r in store.consumer_list() if r.name == name), None)
        if found is None:
            raise ConfigError(f"no event consumer named {name!r} is stored")
        raise TransitionRefused(
            f"consumer {name!r} runs: {found.holder} holds its lease for another "
            f"{found.lease_expires_at - now:.0f}s; stop it first"
        )

    def list(self) -> Sequence[ConsumerRecord]:
        """Every stored consumer row (registered here or not): its lease holder and cursor."""
        return self._app.store.consumer_list()


def default_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _strings(kinds: Iterable[str]) -> Iterable[str]:
    return [kinds] if isinstance(kinds, str) else kinds
