"""The live feed: one server-sent-events stream per open page, read from corral's event log.

The page connects with the event head it was rendered at (`?after=`; a reconnect sends the
browser's Last-Event-ID instead), and every `poll` seconds the stream reads the events after its
cursor (ReadSide.events_after: one short read in a worker thread, so no transaction stays open
between polls). For the events a principal may see (a scoped token: its groups' tasks only, one
read of their groups), it sends a `task` event (htmx refreshes the lists and figures listening
for `sse:task`) and one `task-<id>` event per task (a task's page listens for its own), each
carrying the cursor as its SSE id. It ends when the client goes away, and after `MAX_AGE`
seconds in any case (the browser reconnects from its last id), so no stream lives forever. A
client that does not ask for `text/event-stream` (EventSource always does) gets one read's
messages and the end of the response: a script can poll it.

A PostgreSQL transaction that commits its event after a later one was read is not shown by
this cursor (ids are assigned at insert): the cost is one refresh missed until the next
event, never a wrong figure, since every refresh re-reads the page."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from ...model import Event, TaskQuery
from ..auth import Principal
from ..deps import State, Viewer
from ..state import WebState

router = APIRouter(include_in_schema=False)

BATCH = 500
"""Events read a poll at most (a backlog is read in batches without waiting)."""
PER_TASK = 100
"""`task-<id>` events sent a batch at most (the rest still trigger `task`)."""
KEEPALIVE = 15.0
MAX_AGE = 300.0


def visible(state: WebState, principal: Principal, events: Sequence[Event]) -> list[int]:
    """The distinct task ids of `events` the principal may see, in order of first event."""
    ids = list(dict.fromkeys(e.task_id for e in events))
    if not principal.scope or not ids:
        return ids
    rows = state.store.task_list(TaskQuery(ids=tuple(ids), limit=len(ids)))
    seen = {t.id for t in rows if principal.sees(t.group)}
    return [i for i in ids if i in seen]


def message(event: str | None, data: str, last_id: int | None = None) -> str:
    """One SSE message (a comment when `event` and `data` are empty)."""
    lines = []
    if last_id is not None:
        lines.append(f"id: {last_id}")
    if event:
        lines.append(f"event: {event}")
    if data:
        lines.append(f"data: {data}")
    return "\n".join(lines or [":"]) + "\n\n"


async def feed(
    request: Request,
    state: WebState,
    principal: Principal,
    cursor: int,
    poll: float,
    polls: int | None = None,
) -> AsyncIterator[str]:
    """The stream's messages, from `cursor` on, until the client leaves, MAX_AGE passes, or
    (if given) after `polls` reads."""
    yield "retry: 2000\n\n"
    began = quiet = time.monotonic()
    while time.monotonic() - began < MAX_AGE and (polls is None or polls > 0):
        if polls is not None:
            polls -= 1
        if await request.is_disconnected():
            return
        events = await run_in_threadpool(state.reads.events_after, cursor, BATCH)
        if events:
            cursor = events[-1].id
            ids = await run_in_threadpool(visible, state, principal, events)
            if ids:
                yield message("task", str(len(ids)), cursor)
                for task_id in ids[:PER_TASK]:
                    yield message(f"task-{task_id}", str(task_id))
            else:
                yield message(None, "", cursor)  # moves the browser's Last-Event-ID only
            quiet = time.monotonic()
            if len(events) == BATCH:
                continue
        elif time.monotonic() - quiet >= KEEPALIVE:
            yield message(None, "")
            quiet = time.monotonic()
        await asyncio.sleep(poll)


@router.get("/events/stream")
async def stream(
    request: Request,
    principal: Viewer,
    state: State,
    after: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """The live feed of the dashboard's pages (text/event-stream)."""
    cursor = after
    if last_event_id is not None and last_event_id.isdigit() and len(last_event_id) < 19:
        cursor = int(last_event_id)
    if cursor is None:
        cursor = await run_in_threadpool(state.reads.event_head)
    browser = "text/event-stream" in request.headers.get("accept", "")
    return StreamingResponse(
        feed(request, state, principal, cursor, state.settings.sse_poll, None if browser else 1),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
