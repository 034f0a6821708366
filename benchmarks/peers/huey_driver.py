"""Huey 3.5 on this machine's Redis (a dedicated db, FLUSHDB'd for each phase).

Workers: `--processes` `huey_consumer` processes, each `-q -k thread -w <--concurrency>`
(quiet: no log line a task).
One-at-a-time submit: calling the task (`noop(i)`, one LPUSH). Bulk submit: Huey has no bulk
enqueue, so its own serializer's messages are LPUSHed in one Redis pipeline per 5,000 (what
`huey.enqueue` does per task, batched). Done: the results Huey stores for the no-ops (its default,
a Redis hash) counted with HLEN. The stamping task writes `time.time()` into a Redis hash at
its start. Run by `benchmarks/peers.py` with the peers' venv; prints one JSON line.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from huey import RedisHuey

HERE = Path(__file__).resolve().parent
REDIS_URL = os.environ.get("PEERS_REDIS_URL", "redis://127.0.0.1:6379/15")
STAMPS = "peers:stamps"

huey = RedisHuey("peers", url=REDIS_URL)


@huey.task(name="noop")
def noop(n: int) -> int:
    return n


@huey.task(name="stamp")
def stamp(n: int) -> None:
    huey.storage.conn.hset(STAMPS, str(n), repr(time.time()))


def make(args):
    from harness import Library

    conn = huey.storage.conn

    def submit_bulk(count: int) -> None:
        for first in range(0, count, 5000):
            batch = [huey.serialize_task(noop.s(i)) for i in range(first, min(first + 5000, count))]
            pipe = conn.pipeline(transaction=False)
            for data in batch:
                pipe.lpush(huey.storage.queue_key, data)
            pipe.execute()

    def read_stamp(n: object) -> float | None:
        value = conn.hget(STAMPS, str(n))
        return None if value is None else float(value)

    def submit_stamp(n: int) -> int:
        stamp(n)
        return n

    consumer = [str(Path(sys.executable).parent / "huey_consumer"), "huey_driver.huey"]
    threads = ["-q", "-k", "thread", "-w", str(args.concurrency)]
    return Library(
        reset=conn.flushdb,
        submit_one=noop,
        submit_bulk=submit_bulk,
        done=lambda: conn.hlen(huey.storage.result_key),
        submit_stamp=submit_stamp,
        stamp=read_stamp,
        workers=lambda: [[*consumer, *threads] for _ in range(args.processes)],
        env=lambda: dict(os.environ, PYTHONPATH=str(HERE)),
    )


if __name__ == "__main__":
    import huey_driver  # the tasks registered under the module name the consumers import
    from harness import main

    main(huey_driver.make, __doc__)
