"""The app the benchmarks run: no-op tasks of each executor kind."""

from __future__ import annotations

import corral

app = corral.App()


@app.task(name="noop")
def noop(ctx: corral.Context, n: int) -> int:
    return n


@app.task(name="anoop")
async def anoop(ctx: corral.Context, n: int) -> int:
    return n
