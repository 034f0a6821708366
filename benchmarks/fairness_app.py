"""The app of the fairness benchmark: one task that stands for a job of the reference workload
(a poll, a load, a check), sleeping its compressed run time."""

from __future__ import annotations

import asyncio

import corral

app = corral.App()


@app.task(name="job")
async def job(ctx: corral.Context, ms: float) -> None:
    await asyncio.sleep(ms / 1000)


@app.task(name="low", aging=corral.aging.step(every=0.25, cap=5))
async def low(ctx: corral.Context, ms: float) -> None:
    """A low-priority check whose level rises by one every 0.25 s of waiting (compressed from
    one level every 4 minutes), up to the level of the high-priority stream (5)."""
    await asyncio.sleep(ms / 1000)
