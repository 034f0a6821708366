"""Start-up to first task: spawn a worker process with one task already admitted, and measure the
time from the spawn to the task's start (the store's `first_started_at`; the same host clock).

A `corral scheduler` runs throughout (warm), so the task is ready before each spawn and what is
measured is the worker's own start: importing the CLI and the app, opening the store, registering,
the heartbeat companion's first renewal, the scheduler admitting to the new capacity, the first
claim. `corral run` is measured the same way
(its own scheduler stands by behind the warm one). Each round spawns a fresh process, waits for
its task to start, then stops it (SIGTERM) before the next round.

    python benchmarks/startup.py --backend sqlite --backend postgres --rounds 10
    python benchmarks/startup.py --src /other/checkout/src ...   # that code, in every process
    python benchmarks/startup.py --importtime                    # where `corral worker` spends
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _env(url: str, src: str | None) -> dict[str, str]:
    path = [src] if src else []
    return dict(os.environ, CORRAL_DATABASE_URL=url, PYTHONPATH=os.pathsep.join([*path, str(HERE)]))


def _base() -> list[str]:
    return [sys.executable, "-m", "corral", "--app", "noop_app:app", "--log-level", "WARNING"]


def _wait_for(predicate, timeout: float = 30.0, step: float = 0.002):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise TimeoutError("timed out")


def _cpu(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far (0 if gone)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def rounds(url: str, command: str, count: int, src: str | None) -> list[tuple[float, ...]]:
    """`count` spawns of `corral <command>`; each: seconds from spawn to its task's start, and the
    parts: spawn -> the worker registered (imports, app, store), registered -> the task admitted
    (the scheduler sees the new capacity), admitted -> started (the companion's first renewal,
    the claim); and the CPU seconds the worker process and its children (the companion) had used
    when the task started (a figure the host's load moves less)."""
    from noop_app import app, noop

    app.url = url
    env = _env(url, src)
    scheduler = subprocess.Popen([*_base(), "scheduler"], env=env, stderr=subprocess.DEVNULL)
    try:
        # Warm: the scheduler leads and a worker has run a task once (files cached, schema ready).
        warm = noop.submit(-1)
        proc = subprocess.Popen([*_base(), "worker", "--concurrency", "1"], env=env)
        app.wait(warm, timeout=60, poll=0.01)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        times = []
        for i in range(count):
            task_id = noop.submit(i)
            # Admitted only once a worker shows capacity: ready (or admitted, if a prefetch
            # slot was free) is as far as it goes without one.
            _wait_for(lambda: app.get(task_id).state in ("ready", "admitted"))  # noqa: B023
            time.sleep(0.3)
            args = ["--concurrency", "1"]
            started = time.time()
            proc = subprocess.Popen([*_base(), command, *args], env=env)
            try:
                first = _wait_for(lambda: app.get(task_id).first_started_at)  # noqa: B023
                cpu = _cpu(proc.pid), sum(_cpu(child) for child in _children(proc.pid))
                now = app.clock.now()
                registered = next(
                    (w.started_at for w in app.store.worker_list(now) if w.pid == proc.pid), first
                )
                admitted = max(
                    (e.at for e in app.store.event_list(task_id) if e.to_state == "admitted"),
                    default=first,
                )
                times.append(
                    (first - started, registered - started, admitted - registered,
                     first - admitted, *cpu)
                )  # fmt: skip
                app.wait(task_id, timeout=30, poll=0.01)
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)
        return times
    finally:
        scheduler.send_signal(signal.SIGTERM)
        scheduler.wait(timeout=30)
        app.close()


WORKER_IMPORTS = """
import corral.cli, corral.worker.heartbeat, noop_app
import corral.worker.worker, corral.store.sqlite.store
"""
"""What `corral --app noop_app:app worker` imports before its first claim (SQLite)."""


def importtime(src: str | None) -> None:
    """`python -X importtime -m corral --help` and of the worker's own imports, top modules."""
    env = _env("sqlite:///unused.db", src)
    for label, args in (
        ("corral --help", ["-m", "corral", "--help"]),
        ("corral worker's imports", ["-c", WORKER_IMPORTS]),
    ):
        out = subprocess.run(
            [sys.executable, "-X", "importtime", *args], env=env, capture_output=True, text=True
        ).stderr
        rows = []
        for line in out.splitlines():
            fields = line.removeprefix("import time:").split("|")
            if len(fields) != 3 or not fields[1].strip().isdigit():
                continue
            rows.append((int(fields[1]), fields[2].rstrip()))
        top = sum(us for us, name in rows if not name.startswith("  "))
        print(f"\n{label}: {top / 1000:.0f} ms of imports (importtime inflates it); the largest:")
        for cumulative, name in sorted(rows, reverse=True)[:30]:
            print(f"  {cumulative / 1000:7.1f} ms {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", action="append", choices=["sqlite", "postgres"])
    parser.add_argument("--command", action="append", choices=["worker", "run"])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--src", help="a src folder whose corral every process imports")
    parser.add_argument("--importtime", action="store_true")
    args = parser.parse_args()
    if args.src:
        sys.path.insert(0, args.src)
    sys.path.insert(0, str(HERE))
    if args.importtime:
        importtime(args.src)
        return
    from common import fresh_database

    import corral

    print(f"corral from {Path(corral.__file__).parent}")
    for backend in args.backend or ["sqlite", "postgres"]:
        for command in args.command or ["worker", "run"]:
            with fresh_database(backend) as url:
                times = rounds(url, command, args.rounds, args.src)
            total = [t[0] for t in times]
            parts = [statistics.median(t[i] for t in times) for i in (1, 2, 3, 4, 5)]
            print(
                f"{backend:8} corral {command:6}  spawn -> first task start: median "
                f"{statistics.median(total):.3f} s, max {max(total):.3f} s; medians of the parts: "
                f"to registered {parts[0]:.3f}, to admitted {parts[1]:.3f}, to started "
                f"{parts[2]:.3f}; CPU by then: the worker {parts[3]:.2f} s, its children "
                f"(the companion) {parts[4]:.2f} s "
                f"(n={len(total)}: {' '.join(f'{t:.3f}' for t in total)})",
                flush=True,
            )


if __name__ == "__main__":
    main()
