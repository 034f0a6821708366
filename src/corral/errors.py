"""The errors corral raises. Each names what is wrong so a user can fix it without a debugger."""

from __future__ import annotations


class CorralError(Exception):
    """Base class of every error corral raises on purpose."""


class ConfigError(CorralError, ValueError):
    """A task type, option or argument is invalid (negative priority, unknown executor, ...)."""


class UnknownTaskError(CorralError, LookupError):
    """A task name is not registered with the app."""


class TaskNotFound(CorralError, LookupError):
    """No task has this id."""


class PayloadError(CorralError, TypeError):
    """A task's arguments or result can't be stored as JSON."""


class DatabaseError(CorralError):
    """The database URL is malformed, or the database can't be opened or used."""


class ConnectionLost(DatabaseError):
    """The connection to the database was lost, and corral's retries did not get through.
    `may_have_committed`: whether the write may have been committed all the same (its reply was
    lost). A submit is safe to repeat with the `submit_id` the message names."""

    def __init__(self, message: str, *, may_have_committed: bool) -> None:
        super().__init__(message)
        self.may_have_committed = may_have_committed


class LeadershipLost(DatabaseError):
    """The session that held the scheduler's leadership lock died, so the lock is free: the
    leader's statement was not run, and the scheduler must take the leadership again."""


class TransitionRefused(CorralError):
    """A state change was asked for a task not in a state that allows it (e.g. cancel a task that
    already ended)."""


class WaitTimeout(CorralError, TimeoutError):
    """`App.wait` gave up before the task reached a terminal state."""


class TaskCancelled(CorralError):
    """Raised inside a handler by `ctx.raise_if_cancelled()` once its task has been cancelled."""


class TaskTimeout(CorralError):
    """Raised inside a thread handler when it overruns its max_runtime."""
