"""The app of the fairness benchmark: one task that stands for a job of the reference workload
(a poll, a load, a check), sleeping its compressed run time, and a low-priority check that ages."""

from __future__ import annotations

import asyncio

import corral


def make_app(url: str | None = None) -> corral.App:
    app = corral.App(url)

    @app.task(name="job")
    async def job(ctx: corral.Context, ms: float) -> None:
        await asyncio.sleep(ms / 1000)

    @app.task(name="low", aging=corral.aging.step(every=0.25, cap=5))
    async def low(ctx: corral.Context, ms: float) -> None:
        """Its level rises by one every 0.25 s of waiting (one every 4 minutes, compressed) up
        to the level of the high-priority stream (5)."""
        await asyncio.sleep(ms / 1000)

    return app


app = make_app()
