"""Interrupts of handler threads, held back while the thread is inside corral's own code.

A thread handler is stopped by an asynchronous exception (CPython's `PyThreadState_SetAsyncExc`),
which lands at the thread's next bytecode, wherever that is. Landing inside corral's own call
(`ctx.save_checkpoint`, a store call made by `app.submit`, ...) would cut a database command in
half: psycopg's "another command is already in progress" and a pooled connection discarded as
BAD, or an SQLite transaction left open, holding the write lock of every process.

So the calls a handler thread can make into corral run `shielded()` (the stores' public methods
and the context's writes). While the thread is inside one, `Target.interrupt` only records the
exception as pending, and the outermost shield raises it, as an ordinary exception, the moment
the thread leaves corral's code. An interrupt set just before the thread entered a shield that
has not landed yet is taken back on entry and becomes pending too: the exception type injected is
a subclass (of the same name) whose creation, in the target thread as it lands, tells the target
it did, so an interrupt is never delivered twice.

An interrupt waits as long as the call it found the thread in: at most the store's own timeouts.
Outside a handler thread (the worker's loop and store threads, the scheduler, a process child)
a shield costs one thread-local read.
"""

from __future__ import annotations

import ctypes
import functools
import inspect
import threading
from collections.abc import Callable
from types import FunctionType, TracebackType
from typing import Any, TypeVar

C = TypeVar("C", bound=type)

_LOCK = threading.RLock()
"""Guards every Target's fields. Re-entrant: an interrupt that lands in `Target._enter`, which
holds it, takes it again as the exception is created."""
_current = threading.local()
"""`.target`: the Target bound to this thread, if a handler runs in it."""


def _set_async_exc(thread_id: int, exc_type: type[BaseException] | None) -> None:
    """Raise `exc_type` in thread `thread_id` at its next bytecode; None clears a pending one."""
    exc = None if exc_type is None else ctypes.py_object(exc_type)  # None is passed as NULL
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), exc)


def _this_target() -> Target | None:
    target: Target | None = getattr(_current, "target", None)
    return target


_LANDINGS: dict[type[BaseException], type[BaseException]] = {}


def _landing(exc_type: type[BaseException]) -> type[BaseException]:
    """`exc_type` as it is injected: created in the target thread as it lands, it disarms the
    target, so that entering a shield afterwards doesn't take it for one still on its way.
    (Called under _LOCK, which guards the cache.)"""
    landing = _LANDINGS.get(exc_type)
    if landing is not None:
        return landing

    def __init__(self: BaseException, *args: Any) -> None:
        target = _this_target()
        if target is not None:
            with _LOCK:
                target._armed = None
        exc_type.__init__(self, *args)

    namespace = {"__init__": __init__, "__module__": exc_type.__module__}
    namespace["__qualname__"] = exc_type.__qualname__
    landing = type(exc_type.__name__, (exc_type,), namespace)
    _LANDINGS[exc_type] = landing
    return landing


class Target:
    """One handler run's thread, as the executor sees it: made by the executor, bound by the
    handler's thread when the run starts there, closed when the run ends."""

    __slots__ = ("_armed", "_closed", "_depth", "_ident", "_pending")

    def __init__(self) -> None:
        self._ident: int | None = None
        self._depth = 0
        """How deep in corral's own calls the thread is (shields nest)."""
        self._armed: type[BaseException] | None = None
        """Injected and not landed yet."""
        self._pending: type[BaseException] | None = None
        """Held back, to be raised when the thread leaves corral's code (or starts the run)."""
        self._closed = False

    def interrupt(self, exc_type: type[BaseException]) -> bool:
        """From any thread: raise `exc_type` in the run's thread, at once if it is in the
        handler's own code, else as it leaves corral's (or before the handler starts, if the
        thread hasn't yet). False once the run has ended."""
        with _LOCK:
            if self._closed:
                return False
            if self._ident is None or self._depth > 0:
                self._pending = self._pending or exc_type
            elif self._armed is None:
                self._armed = exc_type
                _set_async_exc(self._ident, _landing(exc_type))
            return True

    def bind(self) -> None:
        """In the handler's thread as the run starts; raises an interrupt that came first."""
        with _LOCK:
            self._ident = threading.get_ident()
            _current.target = self
            pending, self._pending = self._pending, None
        if pending is not None:
            raise pending()

    def close(self) -> None:
        """In the handler's thread as the run ends: no interrupt reaches the thread after this
        returns (one on its way is taken back). An interrupt may land while it runs: call it
        again then."""
        with _LOCK:
            self._closed = True
            self._pending = None
            if self._armed is not None and self._ident is not None:
                _set_async_exc(self._ident, None)
                self._armed = None
            if _this_target() is self:
                _current.target = None

    def _enter(self) -> None:
        with _LOCK:
            self._depth += 1
            try:
                if self._depth == 1 and self._armed is not None and self._ident is not None:
                    _set_async_exc(self._ident, None)  # if it lands first: the except below
                    self._pending, self._armed = self._armed, None
            except BaseException:  # it landed here, before corral's call holds anything
                self._depth -= 1
                raise

    def _leave(self) -> None:
        with _LOCK:
            self._depth -= 1
            if self._depth > 0 or self._pending is None:
                return
            pending, self._pending = self._pending, None
        raise pending()


class _Shield:
    """A context manager: the code inside is corral's own, where interrupts wait."""

    __slots__ = ()

    def __enter__(self) -> None:
        target = _this_target()
        if target is not None:
            target._enter()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        target = _this_target()
        if target is not None:
            target._leave()


_SHIELD = _Shield()


def shielded() -> _Shield:
    """`with shielded():` around corral code that a handler thread runs and that must not be
    cut short (it holds a connection, or keeps two things in step)."""
    return _SHIELD


def _shield_function(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def shielded_call(*args: Any, **kwargs: Any) -> Any:
        with _SHIELD:
            return fn(*args, **kwargs)

    return shielded_call


def shield_calls(cls: C) -> C:
    """Class decorator: every public method of `cls` (inherited ones too) runs shielded. For the
    stores: so every store call a handler can make is covered, whatever path reaches it."""
    for name in dir(cls):
        if name.startswith("_"):
            continue
        attr = inspect.getattr_static(cls, name)
        if isinstance(attr, FunctionType):
            setattr(cls, name, _shield_function(attr))
    return cls
