"""The store boundary: no raw backend exception leaves a store.

`errors_as_corral(sqlite3.Error, where=...)` on a store class wraps each public method (inherited
ones too): an exception of the backend's driver that escapes the method's own handling becomes a
`DatabaseError` naming the store, the call and the driver's message; corral's own errors pass
through as they are. Only the outermost store call of a thread translates: a public method
that calls another and handles the driver's error itself (a unique violation, a deadlock) still
gets it raw. Callers (the app, the worker, the CLI) catch `CorralError` subclasses only.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable
from types import FunctionType
from typing import Any, TypeVar

from ..errors import CorralError, DatabaseError

C = TypeVar("C", bound=type)


def errors_as_corral(*raw: type[BaseException], where: Callable[[Any], str]) -> Callable[[C], C]:
    """Class decorator: the driver's exceptions `raw` raised by a public method become
    DatabaseError. `where(store)`: how the message names the store (never with a password)."""

    depth = threading.local()

    def wrap(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            outer = not getattr(depth, "inside", False)
            depth.inside = True
            try:
                return fn(self, *args, **kwargs)
            except CorralError:
                raise
            except raw as exc:
                if not outer:
                    raise
                message = f"{where(self)}: {name}: {type(exc).__name__}: {exc}"
                raise DatabaseError(message) from None
            finally:
                if outer:
                    depth.inside = False

        return call

    def decorate(cls: C) -> C:
        for name in dir(cls):
            if name.startswith("_"):
                continue
            attr = inspect.getattr_static(cls, name)
            if isinstance(attr, FunctionType):
                setattr(cls, name, wrap(name, attr))
        return cls

    return decorate
