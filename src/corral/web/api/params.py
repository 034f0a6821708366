"""The query and path parameters the API's routes share, with the bounds the core checks
written into the schema too (so a client, and the fuzzer, learns them from the schema): names
non-empty and without NUL, times within corral's UNIX range, ids positive, pages bounded."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from ...limits import ID_MAX, MAX_NAME, MAX_TIME

NO_NUL = r"^[^\x00]+$"

Name = Annotated[str | None, Query(min_length=1, max_length=MAX_NAME, pattern=NO_NUL)]
"""An optional name filter (a group, a pool, a task type, a schedule)."""
Time = Annotated[float | None, Query(ge=0, le=MAX_TIME, description="UNIX seconds.")]
Cursor = Annotated[
    str | None,
    Query(min_length=1, max_length=1000, description="The `next` cursor of the page before."),
]
Limit = Annotated[int, Query(ge=1, le=1000, description="At most this many rows.")]
OptionalId = Annotated[int | None, Query(ge=1, le=ID_MAX)]
TaskId = Annotated[int, Path(ge=1, le=ID_MAX, description="The task's id.")]
PathName = Annotated[str, Path(min_length=1, max_length=MAX_NAME, pattern=NO_NUL)]
