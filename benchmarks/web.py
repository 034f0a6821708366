"""What corral web's pages cost, and how it answers under load.

1. History: a filtered page of 100 tasks (one group; one type; the ready tasks), a task's
   detail and the groups figures, with 10,000 then 2,000,000 finished tasks (the read-side
   benchmark's database: the same backlog of 2,000 ready tasks each time). Through the whole
   web stack in-process (auth, routing, JSON); medians. The ratio 2M / 10k should stay near 1.
2. Groups: the groups figures (GET /api/v1/groups) with 20,000 ready tasks in 10, then in
   10,000 groups.
3. Load: `corral web` in its own process (uvicorn), 50 concurrent clients for --seconds, each
   looping over the main endpoints; p50 and p99 latency per endpoint, requests per second.

    python benchmarks/web.py --backend sqlite --backend postgres
    python benchmarks/web.py --backend sqlite --only load --clients 50 --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import fresh_database, percentile
from metrics import free_port
from read_side import READY, execute, fill, median_ms, task

import corral
from corral.store import open_store
from corral.store.contract import InsertParams
from corral.web import create_app
from corral.web.auth import Tokens

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


def client_of(url: str) -> tuple[corral.App, TestClient, dict[str, str]]:
    app = corral.App(url)
    token = Tokens(app.store, app.clock).create("viewer", name="bench").secret
    return app, TestClient(create_app(app)), {"Authorization": f"Bearer {token}"}


def timed_get(client: TestClient, path: str, headers: dict[str, str]) -> Callable[[], object]:
    def call() -> object:
        response = client.get(path, headers=headers)
        assert response.status_code == 200, (path, response.status_code, response.text[:200])
        return response

    return call


def by_history(backend: str, finished: int, rounds: int) -> dict[str, float]:
    with fresh_database(backend) as url:
        store = open_store(url)
        fill(url, store, backend, finished, time.time())
        store.close()
        app, client, headers = client_of(url)
        some_task = READY + finished // 3
        cases = {
            "page: one group": "/api/v1/tasks?group=h7&limit=100",
            "page: one type": "/api/v1/tasks?type=bench.hist&limit=100",
            "page: ready": "/api/v1/tasks?state=ready&limit=100",
            "page: finished order": "/api/v1/tasks?order=finished&limit=100",
            "task detail": f"/api/v1/tasks/{some_task}",
            "groups": "/api/v1/groups",
        }
        figures = {n: median_ms(timed_get(client, p, headers), rounds) for n, p in cases.items()}
        app.close()
        return figures


def by_groups(backend: str, groups: int, rounds: int, ready: int = 20_000) -> float:
    with fresh_database(backend) as url:
        store = open_store(url)
        tasks = [task(f"g{i % groups:05d}") for i in range(ready)]
        for first in range(0, ready, 5000):
            store.task_insert_many(InsertParams(tasks[first : first + 5000], time.time() - 60))
        store.close()
        execute(url, "ANALYZE")
        app, client, headers = client_of(url)
        cost = median_ms(timed_get(client, "/api/v1/groups", headers), rounds)
        app.close()
        return cost


LOAD_PATHS = {
    "tasks page": "/api/v1/tasks?limit=100",
    "group page": "/api/v1/tasks?group=h7&limit=100",
    "task detail": "/api/v1/tasks/{task}",
    "groups": "/api/v1/groups",
    "pools": "/api/v1/pools",
}


async def hammer(base: str, headers: dict[str, str], clients: int, seconds: float,
                 task_id: int) -> dict[str, list[float]]:  # fmt: skip
    import httpx

    paths = {n: p.format(task=task_id) for n, p in LOAD_PATHS.items()}
    times: dict[str, list[float]] = {n: [] for n in paths}
    errors = 0
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits) as http:

        async def one_client(offset: int) -> None:
            nonlocal errors
            names = list(paths)
            i = offset
            while time.monotonic() < deadline:
                name = names[i % len(names)]
                i += 1
                started = time.perf_counter()
                response = await http.get(paths[name])
                times[name].append(time.perf_counter() - started)
                errors += response.status_code != 200

        await asyncio.gather(*(one_client(i) for i in range(clients)))
    if errors:
        print(f"  ({errors} answers were not 200)")
    return times


def load(backend: str, clients: int, seconds: float, finished: int) -> None:
    with fresh_database(backend) as url:
        store = open_store(url)
        fill(url, store, backend, finished, time.time())
        store.close()
        app = corral.App(url)
        token = Tokens(app.store, app.clock).create("viewer", name="bench").secret
        app.close()
        port = free_port()
        env = dict(os.environ)
        server = subprocess.Popen(
            [sys.executable, "-m", "corral", "--database-url", url, "web", "--bind",
             f"127.0.0.1:{port}"], env=env, stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_up(base)
            headers = {"Authorization": f"Bearer {token}"}
            started = time.monotonic()
            times = asyncio.run(hammer(base, headers, clients, seconds, READY + finished // 3))
            took = time.monotonic() - started
        finally:
            server.terminate()
            server.wait(10)
        total = sum(len(v) for v in times.values())
        print(f"{backend}: {clients} clients for {seconds:.0f}s, {finished:,} finished tasks: "
              f"{total / took:,.0f} requests/s")  # fmt: skip
        for name, values in times.items():
            ms = [v * 1000 for v in values]
            print(f"  {name:<14} p50 {percentile(ms, 50):7.1f} ms   p99 {percentile(ms, 99):7.1f} "
                  f"ms   ({len(ms)} requests)")  # fmt: skip


def _wait_up(base: str) -> None:
    import httpx

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/api/v1/health").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("corral web did not come up")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", action="append", choices=["sqlite", "postgres"])
    parser.add_argument("--only", choices=["history", "groups", "load"], action="append")
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--big", type=int, default=2_000_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    parts = args.only or ["history", "groups", "load"]
    for backend in args.backend or ["sqlite"]:
        if "history" in parts:
            small = by_history(backend, args.small, args.rounds)
            big = by_history(backend, args.big, args.rounds)
            print(f"{backend}: median ms with {args.small:,} vs {args.big:,} finished tasks")
            for name in small:
                print(f"  {name:<22} {small[name]:8.2f} {big[name]:8.2f}   "
                      f"ratio {big[name] / small[name]:5.2f}")  # fmt: skip
        if "groups" in parts:
            few, many = by_groups(backend, 10, args.rounds), by_groups(backend, 10_000, 5)
            print(f"{backend}: groups figures, 20,000 ready tasks in 10 vs 10,000 groups: "
                  f"{few:.2f} vs {many:.2f} ms, ratio {many / few:.2f}")  # fmt: skip
        if "load" in parts:
            load(backend, args.clients, args.seconds, args.small)


if __name__ == "__main__":
    main()
