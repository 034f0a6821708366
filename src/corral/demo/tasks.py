"""The demo's App and its task types: polls, loads, checks and refreshes that run for
milliseconds, and the special cases (a flaky API, a broken source, a sliced load, a cancellable
query, a binlog catch-up)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ..app import App
from ..backoff import Backoff
from ..context import Context

DEFAULT_URL = "sqlite:///corral-demo.db"
APP_SPEC = "corral.demo:app"
SLICE = 0.5
"""max_runtime of the sliced historical load (times the time scale)."""

app = App()
"""The demo's task types. Its URL is set by `run_demo`, and given to the worker processes with
--database-url."""


# -- task types ---------------------------------------------------------------------------------


@app.task(name="demo.poll_source", priority=2)
async def poll_source(ctx: Context, source: str, seconds: float) -> dict[str, Any]:
    """Ask a source (a database, an API) for what changed."""
    await asyncio.sleep(seconds)
    return {"source": source, "changed_rows": int(seconds * 10_000)}


@app.task(name="demo.load_table", priority=1)
def load_table(ctx: Context, table: str, seconds: float) -> dict[str, Any]:
    """Copy a table into the warehouse (a blocking client: the thread executor)."""
    if ctx.wait_cancelled(seconds):
        ctx.raise_if_cancelled()
    return {"table": table, "rows": int(seconds * 1_000_000)}


@app.task(name="demo.warehouse_check", priority=1)
async def warehouse_check(ctx: Context, table: str, seconds: float) -> dict[str, Any]:
    """Check a loaded table: row counts, freshness, nulls."""
    await asyncio.sleep(seconds)
    return {"table": table, "ok": True}


@app.task(name="demo.model_refresh", priority=3)
async def model_refresh(ctx: Context, model: str, seconds: float) -> dict[str, Any]:
    """Rebuild a model once every load and check of its pipeline succeeded."""
    await asyncio.sleep(seconds)
    return {"model": model, "refreshed": True}


@app.task(name="demo.flaky_api", priority=5, max_retries=3,
          backoff=Backoff(base=0.2, factor=2, jitter=0))  # fmt: skip
def flaky_api(ctx: Context, endpoint: str, failures: int, seconds: float) -> dict[str, Any]:
    """A source API that times out `failures` times, then answers."""
    time.sleep(seconds)
    if ctx.attempt <= failures:
        raise ConnectionError(f"{endpoint} timed out (attempt {ctx.attempt})")
    return {"endpoint": endpoint, "attempt": ctx.attempt}


@app.task(name="demo.broken_source", priority=5, max_retries=2, backoff=Backoff(base=0.2, jitter=0))
def broken_source(ctx: Context, source: str, seconds: float) -> None:
    """A source whose credentials were revoked: every attempt fails."""
    time.sleep(seconds)
    raise PermissionError(f"{source}: credentials rejected")


@app.task(name="demo.historical_load", priority=5, executor="process", max_runtime=SLICE,
          on_timeout="continue")  # fmt: skip
def historical_load(ctx: Context, table: str, chunks: int, chunk_seconds: float) -> dict[str, Any]:
    """Load a huge table chunk by chunk. Each run is a time slice (max_runtime, then the process
    is stopped and the task requeued); the next slice resumes from the saved checkpoint."""
    start = int((ctx.checkpoint or {}).get("done", 0))
    ctx.logger.info("slice %d resumes %s at chunk %d of %d", ctx.attempt, table, start, chunks)
    for chunk in range(start, chunks):
        time.sleep(chunk_seconds)
        ctx.save_checkpoint({"done": chunk + 1})
    return {"table": table, "chunks": chunks, "last_slice_started_at": start}


def release_query(ctx: Context) -> None:
    """on_cancel of warehouse_query: cancel what the task started in the warehouse."""
    ctx.logger.warning("clean-up: cancelled warehouse query %s", ctx.shared.get("query_id"))


@app.task(name="demo.warehouse_query", priority=5, on_cancel=release_query)
def warehouse_query(ctx: Context, sql: str, seconds: float) -> dict[str, Any]:
    """A long warehouse query; records its query id so that a cancel can release it."""
    ctx.set_shared("query_id", f"wh-{ctx.task_id}-{ctx.attempt}")
    ctx.logger.info("started warehouse query %s: %s", ctx.shared["query_id"], sql)
    if ctx.wait_cancelled(seconds):
        ctx.raise_if_cancelled()
    return {"rows": 42}


@app.task(name="demo.binlog_catchup", priority=4)
async def binlog_catchup(ctx: Context, database: str, seconds: float) -> dict[str, Any]:
    """Replay a source database's binlog up to now: it must run alone in its pipeline, before
    the pipeline's loads read the tables it brings up to date."""
    await asyncio.sleep(seconds)
    return {"database": database, "caught_up": True}
