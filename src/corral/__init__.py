"""corral: a durable, fair, distributed task manager for Python."""

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
