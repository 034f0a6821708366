"""corral: a durable, fair, distributed task manager for Python.

The names below are imported on first use (PEP 562): a process that needs only a part of corral
(the heartbeat companion of every worker, `python -m corral.worker.heartbeat`) doesn't pay for
importing the app, the worker and the stores at start-up.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import aging
    from .app import App, Submission, TaskType
    from .backoff import Backoff
    from .consumers import Consumer, StateChange
    from .context import Context
    from .dag import CycleError
    from .errors import (
        ConfigError,
        ConnectionLost,
        CorralError,
        DatabaseError,
        PayloadError,
        TaskCancelled,
        TaskNotFound,
        TaskTimeout,
        TransitionRefused,
        UnknownTaskError,
        WaitTimeout,
    )
    from .failures import Failure
    from .lifecycle import State
    from .model import WorkflowStatus
    from .worker.middleware import Middleware, Run
    from .workflow import Step, Workflow

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    "App": "app",
    "Submission": "app",
    "TaskType": "app",
    "Backoff": "backoff",
    "Consumer": "consumers",
    "StateChange": "consumers",
    "Context": "context",
    "CycleError": "dag",
    "ConfigError": "errors",
    "ConnectionLost": "errors",
    "CorralError": "errors",
    "DatabaseError": "errors",
    "PayloadError": "errors",
    "TaskCancelled": "errors",
    "TaskNotFound": "errors",
    "TaskTimeout": "errors",
    "TransitionRefused": "errors",
    "UnknownTaskError": "errors",
    "WaitTimeout": "errors",
    "Failure": "failures",
    "State": "lifecycle",
    "WorkflowStatus": "model",
    "Middleware": "worker.middleware",
    "Run": "worker.middleware",
    "Step": "workflow",
    "Workflow": "workflow",
}
"""Each public name and the module (under corral) that defines it."""


def __getattr__(name: str) -> Any:
    if name == "aging":
        return importlib.import_module(".aging", __name__)
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # once: later lookups don't come back here
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "App",
    "Backoff",
    "ConfigError",
    "ConnectionLost",
    "Consumer",
    "Context",
    "CorralError",
    "CycleError",
    "DatabaseError",
    "Failure",
    "Middleware",
    "PayloadError",
    "Run",
    "State",
    "StateChange",
    "Step",
    "Submission",
    "TaskCancelled",
    "TaskNotFound",
    "TaskTimeout",
    "TaskType",
    "TransitionRefused",
    "UnknownTaskError",
    "WaitTimeout",
    "Workflow",
    "WorkflowStatus",
    "__version__",
    "aging",
]
