"""What a failure event carries: the error's type, its message and where it came from.

The event of an attempt's end (running -> retry_wait, dead, ready after a lost worker or a time
slice, cancelled) stores in its `detail` the outcome and, when the attempt ended with an error,
`{"type", "message", "where"}`: so a state-change callback on `dead` or `retry_wait` knows what
went wrong without reading the attempt. `where` is the last frame of the handler's traceback
(`file:line in function`) when there is one, else the part of corral that ended the attempt (the
reaper for a lost worker, the worker for a time limit, a cancel, a stall or a row it could not
decode). Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .codec import dumps

MAX_MESSAGE = 2000
"""Characters of the error message kept in the event (the attempt row keeps all of it)."""

_TYPED = re.compile(r"^([A-Za-z_][\w.]*): (.*)$", re.DOTALL)
_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<fn>.+)$')
ORIGINS: dict[str, tuple[str, str]] = {
    "lost": ("WorkerLost", "reaper: the worker's lease expired"),
    "timed_out": ("TaskTimeout", "worker: the task's time limit"),
    "sliced": ("TaskTimeout", "worker: the end of a time slice"),
    "cancelled": ("TaskCancelled", "worker: a cancel request"),
    "stalled": ("Stalled", "worker: the stall check of time slices"),
    "failed": ("Error", "worker"),
}
"""By outcome: the error type when the text names none, and where it came from without a
traceback."""


@dataclass(frozen=True)
class Failure:
    """An attempt's error as a state-change event carries it."""

    type: str
    """The exception's class name (`ValueError`), or corral's name for the cause (`WorkerLost`)."""
    message: str
    where: str
    """`file:line in function` of the traceback's last frame, or the part of corral that ended
    the attempt (`reaper: the worker's lease expired`)."""

    def to_json(self) -> dict[str, str]:
        return {"type": self.type, "message": self.message, "where": self.where}

    @classmethod
    def from_json(cls, data: Any) -> Failure | None:
        if not isinstance(data, dict):
            return None
        return cls(str(data.get("type")), str(data.get("message")), str(data.get("where")))


def describe(outcome: str, error: str | None, traceback: str | None) -> Failure | None:
    """The failure of an attempt that ended with `outcome`, from its error text ("Type: message",
    as the worker writes it) and traceback; None without an error."""
    if error is None:
        return None
    default_type, origin = ORIGINS.get(outcome, ORIGINS["failed"])
    typed = _TYPED.match(error)
    kind, message = (typed[1], typed[2]) if typed else (default_type, error)
    if len(message) > MAX_MESSAGE:
        message = message[:MAX_MESSAGE] + f"... ({len(message) - MAX_MESSAGE} more characters)"
    return Failure(kind, message, last_frame(traceback) or origin)


def last_frame(traceback: str | None) -> str | None:
    """`file:line in function` of the innermost frame of a formatted traceback."""
    if not traceback:
        return None
    found = None
    for line in traceback.splitlines():
        frame = _FRAME.match(line)
        if frame is not None:
            found = f"{frame['file']}:{frame['line']} in {frame['fn'].strip()}"
    return found


def end_detail(outcome: str, error: str | None, traceback: str | None) -> str:
    """The JSON `detail` of the event of an attempt's end."""
    failure = describe(outcome, error, traceback)
    if failure is None:
        plain = _PLAIN_DETAILS.get(outcome)
        if plain is None:
            plain = _PLAIN_DETAILS[outcome] = dumps({"outcome": outcome})
        return plain
    return dumps({"outcome": outcome, "error": failure.to_json()})


_PLAIN_DETAILS: dict[str, str] = {}
"""The detail of an end without an error, by outcome (nearly every completion's), encoded once."""
