"""Where a drain's CPU goes: seconds per process (the scheduler, each worker and its heartbeat
companion) and the PostgreSQL server's, read from /proc, for one drain of N no-op tasks (one
`corral scheduler` and two `corral worker` processes, as drain.py's split mode). Run it with the
code before a change and after, alternated in one sitting, and compare the columns.

    python benchmarks/drain_cpu.py --tasks 20000
    python benchmarks/drain_cpu.py --tasks 20000 --drop-index corral_tasks_name_id

Linux only (/proc). The PostgreSQL figure counts every postgres process of the machine, and the
backends that exited (their parent's cutime): keep the server otherwise idle.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import fresh_database
from drain import corral_commands, submit_noops, succeeded

from corral import App

TICK = os.sysconf("SC_CLK_TCK")


def cpu_of(pid: int, reaped: bool = False) -> float:
    """CPU seconds of process `pid` (with its reaped children's, if `reaped`); 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if reaped:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / TICK


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def postgres_cpu() -> float:
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if not (entry / "comm").read_text().startswith("postgres"):
                continue
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += cpu_of(int(entry.name), reaped=True)
    return total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--drop-index", action="append", default=[], help="drop before draining")
    args = parser.parse_args()
    with fresh_database("postgres") as url:
        submit_noops(url, args.tasks, "anoop")
        if args.drop_index:
            import psycopg

            with psycopg.connect(url, autocommit=True) as conn:
                for index in args.drop_index:
                    conn.execute(f"DROP INDEX {index}".encode())
        env = dict(os.environ, CORRAL_DATABASE_URL=url, PYTHONPATH=str(HERE))
        app = App(url)
        server_before = postgres_cpu()
        procs = [
            subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for cmd in corral_commands("split", 2, args.concurrency)
        ]
        first: tuple[float, int] | None = None
        try:
            while (done := succeeded(app)) < args.tasks:
                if first is None and done > 0:
                    first = (time.perf_counter(), done)
                time.sleep(0.2)
            end = time.perf_counter()
            since, flowed = first or (end, 0)
            steady = (args.tasks - flowed) / max(end - since, 1e-9)
            scheduler = cpu_of(procs[0].pid)
            workers = [(cpu_of(p.pid), sum(cpu_of(c) for c in children(p.pid))) for p in procs[1:]]
            server = postgres_cpu() - server_before
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            for proc in procs:
                proc.wait(timeout=60)
            app.close()
    print(f"PostgreSQL, {args.tasks:,} no-op tasks, steady {steady:,.0f} tasks/s; CPU seconds:")
    print(f"  scheduler          {scheduler:6.2f}")
    for n, (worker, companion) in enumerate(workers, 1):
        print(f"  worker {n}           {worker:6.2f}  (its companion {companion:.2f})")
    print(f"  PostgreSQL server  {server:6.2f}")


if __name__ == "__main__":
    main()
