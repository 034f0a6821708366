"""corral beside its peers: the same phases as the peers' drivers, with corral's interpreter.

Workers: one `corral scheduler` and `--processes` `corral worker --concurrency <--concurrency>`
processes on a fresh database of `--backend` for each phase (benchmarks/common.py's
`fresh_database`), the store opened with it (outside the timings, as the Procrastinate driver opens
its app). One-at-a-time submit: `TaskType.submit`. Bulk submit: `submit_many`, 5,000
tasks a call. Done: the unfinished tasks counted from the store's partial indexes (as
benchmarks/drain.py does). The no-op is async (`anoop`, as drain.py's default); the stamping
task returns `time.time()` at its start and the stamp is read from its result. Run by
`benchmarks/peers.py`; prints one JSON line.
"""

from __future__ import annotations

import json
import os
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import corral

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

app = corral.App()


@app.task(name="anoop")
async def anoop(ctx: corral.Context, n: int) -> int:
    return n


@app.task(name="stamp")
async def stamp(ctx: corral.Context, n: int) -> float:
    return time.time()


def make(args):
    from common import fresh_database
    from harness import Library

    from corral.lifecycle import TERMINAL

    state: dict = {"stack": None, "url": ""}

    def drop() -> None:
        app.close()
        if state["stack"] is not None:
            state["stack"].close()
            state["stack"] = None

    def reset() -> None:
        drop()
        state["stack"] = ExitStack()
        state["url"] = state["stack"].enter_context(fresh_database(args.backend))
        app.url = state["url"]
        app.clock.now()  # the store and its clock opened here, as Procrastinate's `app.open()`

    def submit_bulk(count: int) -> None:
        for first in range(0, count, 5000):
            app.submit_many([anoop.prepare(i) for i in range(first, min(first + 5000, count))])

    def done() -> int:
        unfinished = sum(c.count for c in app.store.task_count_unfinished())
        return state["queued"] - unfinished

    def submit_and_count(count: int) -> None:
        submit_bulk(count)
        state["queued"] = count

    def read_stamp(task_id: object) -> float | None:
        record = app.get(task_id)  # type: ignore[arg-type]
        if record.state not in TERMINAL:
            return None
        assert record.result is not None, record
        return float(json.loads(record.result))

    base = [sys.executable, "-m", "corral", "--app", "corral_driver:app"]
    worker = [*base, "worker", "--concurrency", str(args.concurrency)]
    return Library(
        reset=reset,
        submit_one=anoop.submit,
        submit_bulk=submit_and_count,
        done=done,
        submit_stamp=stamp.submit,
        stamp=read_stamp,
        workers=lambda: [[*base, "scheduler"], *[worker for _ in range(args.processes)]],
        env=lambda: dict(
            os.environ,
            CORRAL_DATABASE_URL=state["url"],
            PYTHONPATH=os.pathsep.join([str(HERE), str(HERE.parent)]),
        ),
        close=drop,
    )


if __name__ == "__main__":
    import corral_driver  # the tasks of the module the workers import
    from harness import main

    main(corral_driver.make, __doc__)
