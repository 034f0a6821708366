"""Submit ids: each submit call carries an id of its own, so that a retry of the call (by the
store after a lost reply, or by the caller with the same `submit_id`) can't store its tasks twice.

The store records, in the call's own transaction, the ids of the tasks it stored under the call's
id (a primary key: one row per call, so bulk submits stay fast), and a call under a recorded id
returns those tasks, whatever their state, instead of storing them again.
"""

from __future__ import annotations

import uuid
from typing import Any

from .errors import ConfigError, ConnectionLost

MAX_LENGTH = 200
"""The longest submit id a caller may give."""


def submit_id_for(given: Any, connection: Any, replies_may_be_lost: bool = True) -> str | None:
    """The id of one submit call: the caller's (checked), else a new one; none when the call
    joins the caller's own transaction (`connection=`), which corral never retries, nor when the
    store never loses a reply (SQLite: a store retry can't follow a commit, and a caller who
    gave no id can't submit again under one)."""
    if given is not None:
        if not isinstance(given, str) or not given or len(given) > MAX_LENGTH:
            raise ConfigError(
                f"submit_id must be a non-empty string of at most {MAX_LENGTH} characters, "
                f"got {given!r:.80}"
            )
        return given
    return None if connection is not None or not replies_may_be_lost else uuid.uuid4().hex


def repeatable(exc: ConnectionLost, submit_id: str | None) -> ConnectionLost:
    """The error to raise when the store gave up: if the submit may have committed, it says how
    to make sure it is stored once."""
    if not exc.may_have_committed or submit_id is None:
        return exc
    return ConnectionLost(
        f"{exc}. Submit it again with submit_id={submit_id!r}: it is stored once either way",
        may_have_committed=True,
    )
