"""Dramatiq 2.2 on this machine's Redis (a dedicated db, FLUSHDB'd for each phase).

Workers: one `dramatiq` command, `--processes <--processes> --threads <--concurrency>`.
One-at-a-time submit: `actor.send(i)` (one dispatch script call). Bulk submit: Dramatiq has no
bulk enqueue (`group(...).run()` enqueues one message at a time), so `broker.enqueue` is called
for each message with its dispatch script bound to one Redis pipeline per 5,000. Done: the
broker's message hash for the queue (a message leaves it when acked) counted with HLEN. The
stamping actor writes `time.time()` into a Redis hash at its start. Run by `benchmarks/peers.py`
with the peers' venv; prints one JSON line.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from pathlib import Path

import dramatiq
from dramatiq.brokers.redis import RedisBroker

HERE = Path(__file__).resolve().parent
REDIS_URL = os.environ.get("PEERS_REDIS_URL", "redis://127.0.0.1:6379/15")
STAMPS = "peers:stamps"

broker = RedisBroker(url=REDIS_URL)
dramatiq.set_broker(broker)


@dramatiq.actor(actor_name="noop", max_retries=0)
def noop(n: int) -> int:
    return n


@dramatiq.actor(actor_name="stamp", max_retries=0)
def stamp(n: int) -> None:
    broker.client.hset(STAMPS, str(n), repr(time.time()))


def make(args):
    from harness import Library

    conn = broker.client
    messages = f"{broker.namespace}:default.msgs"

    def submit_bulk(count: int) -> None:
        dispatch = broker.scripts["dispatch"]
        for first in range(0, count, 5000):
            pipe = conn.pipeline(transaction=False)
            broker.scripts["dispatch"] = functools.partial(dispatch, client=pipe)
            try:
                for i in range(first, min(first + 5000, count)):
                    broker.enqueue(noop.message(i))
            finally:
                broker.scripts["dispatch"] = dispatch
            pipe.execute()

    def read_stamp(n: object) -> float | None:
        value = conn.hget(STAMPS, str(n))
        return None if value is None else float(value)

    def submit_stamp(n: int) -> int:
        stamp.send(n)
        return n

    total = {"queued": 0}

    def reset() -> None:
        conn.flushdb()

    def submit_and_count(count: int) -> None:
        submit_bulk(count)
        total["queued"] = count

    command = [str(Path(sys.executable).parent / "dramatiq"), "dramatiq_driver"]
    flags = ["--processes", str(args.processes), "--threads", str(args.concurrency)]
    return Library(
        reset=reset,
        submit_one=noop.send,
        submit_bulk=submit_and_count,
        done=lambda: total["queued"] - conn.hlen(messages),
        submit_stamp=submit_stamp,
        stamp=read_stamp,
        workers=lambda: [[*command, *flags]],
        env=lambda: dict(os.environ, PYTHONPATH=str(HERE)),
    )


if __name__ == "__main__":
    import dramatiq_driver  # the actors declared under the module name the workers import
    from harness import main

    main(dramatiq_driver.make, __doc__)
