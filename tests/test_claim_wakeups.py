"""A notice that comes while a worker's claim runs is not lost (both backends): the worker clears
its wake-up before it claims, so an admission that committed during an empty claim ends the
worker's wait at once instead of leaving the task to the poll."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import corral
from corral.store.contract import ClaimParams
from corral.worker.worker import Worker, WorkerConfig


def test_a_notice_during_an_empty_claim_ends_the_wait_at_once(app: corral.App) -> None:
    @app.task
    def noop(ctx: corral.Context) -> None:
        return None  # a registered task type: a worker needs one

    poll = 60.0  # the fallback: far longer than the test waits
    config = WorkerConfig(concurrency=2, heartbeat=0.1, grace=1.0, poll=poll)
    holder: dict[str, Any] = {}
    claims: list[int] = []
    second = threading.Event()
    store = app.store
    real_claim = store.task_claim

    def claim(params: ClaimParams) -> Any:
        claims.append(len(claims))
        got = real_claim(params)
        if len(claims) == 1:  # a notice comes while the first claim runs (it found nothing)
            loop, worker = holder["loop"], holder["worker"]
            loop.call_soon_threadsafe(worker._wake.set)
        else:
            second.set()
        return got

    store.task_claim = claim  # type: ignore[method-assign]

    async def main() -> None:
        worker = Worker.of(app, config)
        holder["loop"], holder["worker"] = asyncio.get_running_loop(), worker
        running = asyncio.create_task(worker.run())
        try:
            assert await asyncio.to_thread(second.wait, 20), (
                f"the worker claimed {len(claims)} times: the notice was lost to the "
                f"{poll:.0f} s poll"
            )
        finally:
            worker.request_stop()
            await asyncio.wait_for(running, 30)

    try:
        asyncio.run(main())
    finally:
        store.task_claim = real_claim  # type: ignore[method-assign]
