"""corral: a durable, fair, distributed task manager for Python."""

from . import aging
from .app import App, Submission, TaskType
from .backoff import Backoff
from .context import Context
from .errors import (
    ConfigError,
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
from .lifecycle import State

__version__ = "0.1.0"

__all__ = [
    "App",
    "Backoff",
    "ConfigError",
    "Context",
    "CorralError",
    "DatabaseError",
    "PayloadError",
    "State",
    "Submission",
    "TaskCancelled",
    "TaskNotFound",
    "TaskTimeout",
    "TaskType",
    "TransitionRefused",
    "UnknownTaskError",
    "WaitTimeout",
    "__version__",
    "aging",
]
