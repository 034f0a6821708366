"""Scale by simulation (issue 15, item 6): the leader's CPU and the claim cost on one PostgreSQL.

On a fresh PostgreSQL database holding 1,000,000 queued no-op tasks in 10,000 groups (bulk-loaded
through the store's COPY path in batches of 50,000, as claim_cost.py does; statistics refreshed
and the per-group heads built, as the scheduler would), three measurements:

  leader      corral's dispatcher (corral.scheduler.dispatcher.dispatch, the leader's admission
              round) driven in this process, with a registered worker giving it slots; a second
              connection claims and completes what each round admitted, so every round admits
              `--batch` tasks. Timed: this process's CPU (time.process_time) inside the rounds
              only, and the CPU of the PostgreSQL backends serving the leader's connections
              (/proc/<pid>/stat of the pids that pg_stat_activity lists under the leader's
              application_name), per 1,000 admissions and per round.
  groups      the same with the same backlog (--sweep-backlog, 100,000 by default) spread over
              10, 1,000 and 10,000 groups: CPU per round and per admission.
  claims      --processes (50) OS processes, each a store-level worker: the real store calls
              (task_claim of up to --claim-batch tasks, then task_complete_many of them, as a
              worker's batched reporting does; no handler runs, no heartbeats; an empty claim
              waits 25-75 ms, where a real worker waits for a notice; the workers run at nice 10,
              standing for other hosts), against a real leader (corral.scheduler.Scheduler in
              its own process, default config) admitting.
              For --seconds (60): claims/s, statements and transactions per task, p50/p99 claim
              latency, and the CPU of every backend of the database, of the leader process and
              of the worker processes, per 1,000 transitions (admit + claim + complete = 3 per
              task).

The database's CPU is what its own backends spent (read from /proc: server and benchmark share
the host); PostgreSQL's shared background processes (WAL writer, checkpointer, autovacuum) serve
every database on the server, so their CPU is reported apart, as a machine-wide figure that other
engineers' runs on the same server also feed. The load average is printed beside each figure.

    python benchmarks/scale.py                       # all three, 1,000,000 queued
    python benchmarks/scale.py --parts groups --sweep-backlog 100000
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import backlog, fresh_database, percentile

from corral.lifecycle import State
from corral.model import AttemptReport, WorkerInfo
from corral.scheduler.dispatcher import dispatch
from corral.store.contract import ClaimParams, CompleteParams, InsertParams
from corral.store.postgres.store import PostgresStore

TICK = os.sysconf("SC_CLK_TCK")
LOAD_BATCH = 50_000


# -- measuring ------------------------------------------------------------------------------------


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def cpu_of(pid: int) -> float:
    """User + system CPU seconds of process `pid` (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime (fields 14 and 15)


def postgres_background() -> dict[int, float]:
    """The server's processes that no database owns (WAL writer, checkpointer, autovacuum
    launcher, background writer...): their CPU by pid."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if comm.startswith("postgres: ") and not any(
            part in comm for part in (" postgres ", "corral_bench", "idle", "[local]", "127.0.0.1")
        ):
            out[int(entry.name)] = cpu_of(int(entry.name))
    return out


class Backends:
    """The CPU of the PostgreSQL backends serving database `url` (optionally only sessions with
    `app` as application_name), between start() and stop(); pids that appear in between count
    from zero."""

    def __init__(self, admin: Any, database: str, app: str | None = None) -> None:
        self.admin, self.database, self.app = admin, database, app

    def pids(self) -> list[int]:
        query = "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
        args: list[Any] = [self.database]
        if self.app is not None:
            query += " AND application_name = %s"
            args.append(self.app)
        return [row[0] for row in self.admin.execute(query, args).fetchall()]

    def start(self) -> None:
        self.before = {pid: cpu_of(pid) for pid in self.pids()}

    def sample(self) -> None:
        """Record the pids alive now (call before sessions close)."""
        self.after = {pid: cpu_of(pid) for pid in self.pids()}

    def stop(self) -> float:
        if not hasattr(self, "after"):
            self.sample()
        return sum(cpu - self.before.get(pid, 0.0) for pid, cpu in self.after.items())


def xacts(admin: Any, database: str) -> int:
    admin.execute("SELECT pg_stat_clear_snapshot()")
    row = admin.execute(
        "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s", (database,)
    ).fetchone()
    return int(row[0])


def with_app(url: str, app: str) -> str:
    return f"{url}?application_name={app}"


def admin_connection(url: str) -> Any:
    import psycopg

    return psycopg.connect(with_app(url, "scale_admin"), autocommit=True)


# -- the backlog ----------------------------------------------------------------------------------


def load(url: str, queued: int, groups: int) -> float:
    """Bulk-load `queued` ready no-op tasks round robin over `groups` groups; seconds taken."""
    store = PostgresStore(url)
    started = time.perf_counter()
    batch = min(LOAD_BATCH, queued)
    assert batch % groups == 0 or groups > batch, "a batch spreads over the groups evenly"
    for first in range(0, queued, batch):
        tasks = backlog(min(batch, queued - first), groups=groups)
        store.task_insert_many(InsertParams(tasks, time.time()))
    with admin_connection(url) as admin:
        admin.execute("VACUUM ANALYZE")
    while store.ready_groups_refresh(200_000):  # fold all the bulk load's hints into the heads,
        pass  # as the scheduler does over its first rounds: a one-off, not a decision
    store.close()
    return time.perf_counter() - started


# -- part 1 and 2: the leader's CPU per admission -------------------------------------------------


def leader_cost(url: str, batch: int, rounds: int) -> dict[str, float]:
    """Rounds of `batch` admissions: the leader's CPU here and in its backends."""
    database = url.rsplit("/", 1)[1]
    leader = PostgresStore(with_app(url, "scale_leader"), min_size=1, max_size=2)
    turnover = PostgresStore(with_app(url, "scale_turnover"), min_size=1, max_size=1)
    now = time.time()
    leader.worker_register(WorkerInfo("w", "bench", 1, ("default",), batch), now + 3600, now)
    with admin_connection(url) as admin:
        backends = Backends(admin, database, "scale_leader")
        spent = spent_wall = 0.0
        admitted = 0
        dispatch(leader, time.time())  # warm: the plans, the first round's hints
        drain(turnover, batch)
        backends.start()
        for _ in range(rounds):
            now = time.time()
            cpu, wall = time.process_time(), time.perf_counter()
            admitted += dispatch(leader, now)
            spent += time.process_time() - cpu
            spent_wall += time.perf_counter() - wall
            drain(turnover, batch)
        db = backends.stop()
    now = time.time()
    leader.worker_register(WorkerInfo("w", "bench", 1, ("default",), 0), now, now)
    leader.close()
    turnover.close()
    per = 1000 / max(admitted, 1)
    return {
        "admitted": admitted,
        "rounds": rounds,
        "leader_cpu_per_1000": spent * per,
        "db_cpu_per_1000": db * per,
        "wall_per_1000": spent_wall * per,
        "leader_cpu_per_round": spent / rounds,
        "db_cpu_per_round": db / rounds,
    }


def drain(store: PostgresStore, batch: int) -> None:
    """Claim and complete what the last round admitted (frees the slots for the next one)."""
    now = time.time()
    claimed = store.task_claim(ClaimParams("w", ["default"], batch, now + 60, now))
    reports = [
        AttemptReport(t.id, t.attempt, "succeeded", State.SUCCEEDED, worker_id="w", result="null")
        for t in claimed
    ]
    store.task_complete_many(CompleteParams(reports, now))


# -- part 3: 50 worker processes ------------------------------------------------------------------


def worker_process(
    url: str, index: int, slots: int, start_at: float, stop_at: float, out: Any
) -> None:
    """A store-level worker: claim up to `slots`, complete them (no-op), again, until stop_at."""
    import psycopg

    statements = 0
    original = psycopg.Cursor.execute

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal statements
        statements += 1
        return original(self, *args, **kwargs)

    psycopg.Cursor.execute = counted  # type: ignore[method-assign]
    os.nice(10)  # the workers stand for other hosts: they yield this host's cores to the leader
    rng = random.Random(index)
    store = PostgresStore(with_app(url, "scale_worker"), min_size=1, max_size=1)
    worker = f"w{index}"
    now = time.time()
    store.worker_register(WorkerInfo(worker, "bench", index, ("default",), slots), now + 3600, now)
    latencies: list[float] = []
    empty = done = 0
    while time.time() < start_at:
        time.sleep(0.01)
    statements = 0
    cpu = time.process_time()
    while time.time() < stop_at:
        now = time.time()
        began = time.perf_counter()
        claimed = store.task_claim(ClaimParams(worker, ["default"], slots, now + 60, now))
        latencies.append(time.perf_counter() - began)
        if not claimed:
            empty += 1
            # A real worker waits for a notice (LISTEN, one more session each: 50 more than
            # this shared server's max_connections allows) with a 0.5 s fallback; a poll here.
            time.sleep(rng.uniform(0.025, 0.075))
            continue
        reports = [
            AttemptReport(t.id, t.attempt, "succeeded", State.SUCCEEDED, worker_id=worker,
                          result="null")
            for t in claimed
        ]  # fmt: skip
        done += len(store.task_complete_many(CompleteParams(reports, time.time())))
    cpu = time.process_time() - cpu
    counted_statements = statements
    out.put((index, done, empty, counted_statements, cpu, latencies))
    now = time.time()
    store.worker_register(WorkerInfo(worker, "bench", index, ("default",), 0), now, now)
    store.close()


def leader_process(url: str, stop_at: float, out: Any) -> None:
    from corral.scheduler.service import Scheduler

    store = PostgresStore(with_app(url, "scale_leader"))
    scheduler = Scheduler(store)
    import threading

    thread = threading.Thread(target=scheduler.run, daemon=True)
    thread.start()
    while time.time() < stop_at:
        time.sleep(0.05)
    out.put(("leader", time.process_time(), dict(scheduler.work)))
    scheduler.stop()
    thread.join(10)
    store.close()


def claims(url: str, processes: int, slots: int, seconds: float) -> dict[str, Any]:
    database = url.rsplit("/", 1)[1]
    ctx = mp.get_context("fork")  # no connection is open in this process at this point
    out = ctx.Queue()
    warm = 8.0 + processes * 0.15  # the processes' start-up and registration, not measured
    start_at = time.time() + warm
    stop_at = start_at + seconds
    leader = ctx.Process(target=leader_process, args=(url, stop_at + 0.5, out))
    leader.start()
    workers = [
        ctx.Process(target=worker_process, args=(url, i, slots, start_at, stop_at, out))
        for i in range(processes)
    ]
    for p in workers:
        p.start()
    with admin_connection(url) as admin:
        while time.time() < start_at - 0.2:
            time.sleep(0.05)
        everyone = Backends(admin, database)
        leaders = Backends(admin, database, "scale_leader")
        background = postgres_background()
        everyone.start()
        leaders.start()
        leader_cpu0 = cpu_of(leader.pid)
        x0 = xacts(admin, database)
        load_before = loadavg()
        while time.time() < stop_at - 0.3:
            time.sleep(0.1)
        everyone.sample()
        leaders.sample()
        leader_cpu = cpu_of(leader.pid) - leader_cpu0
        x1 = xacts(admin, database)
        background_cpu = sum(cpu_of(pid) - cpu for pid, cpu in background.items())
        load_after = loadavg()
        results = [out.get(timeout=120) for _ in range(processes + 1)]
        for p in [leader, *workers]:
            p.join(30)
        db_cpu = everyone.stop()
        leader_db_cpu = leaders.stop()
    rows = [r for r in results if r[0] != "leader"]
    work = next(r[2] for r in results if r[0] == "leader")
    done = sum(r[1] for r in rows)
    empty = sum(r[2] for r in rows)
    statements = sum(r[3] for r in rows)
    worker_cpu = sum(r[4] for r in rows)
    latencies = [x for r in rows for x in r[5]]
    transitions = 3 * done
    per = 1000 / max(transitions, 1)
    return {
        "processes": processes,
        "slots": processes * slots,
        "seconds": seconds,
        "tasks": done,
        "tasks_per_s": done / seconds,
        "claims_per_s": len(latencies) / seconds,
        "empty_claims": empty,
        "claim_p50_ms": percentile(latencies, 50) * 1000,
        "claim_p99_ms": percentile(latencies, 99) * 1000,
        "claim_mean_ms": statistics.fmean(latencies) * 1000,
        "worker_statements_per_task": statements / max(done, 1),
        "statements_per_task_without_empty_claims": (statements - empty) / max(done, 1),
        "tasks_per_claim": done / max(len(latencies) - empty, 1),
        "db_xacts_per_task": (x1 - x0) / max(done, 1),
        "db_cpu_per_1000_ms": 1000 * db_cpu * per,
        "db_cpu_cores": db_cpu / seconds,
        "leader_db_cpu_per_1000_ms": 1000 * leader_db_cpu * per,
        "leader_cpu_per_1000_ms": 1000 * leader_cpu * per,
        "worker_cpu_per_1000_ms": 1000 * worker_cpu * per,
        "background_cpu_per_1000_ms": 1000 * background_cpu * per,
        "admissions_per_s": work.get("dispatch", 0) / (seconds + warm),
        "leader_work": work,
        "load": f"{load_before} -> {load_after}",
    }


# -- report ---------------------------------------------------------------------------------------


LEADER_HEADER = (
    "\n| admissions a round | leader CPU / 1,000 | its backends' CPU / 1,000 | wall / 1,000 "
    "| leader CPU / round | backends' CPU / round | load |"
)
GROUPS_HEADER = (
    "\n| groups ({:,} queued) | admissions a round | leader CPU / round | backends' CPU / round "
    "| leader CPU / 1,000 | backends' CPU / 1,000 | load |"
)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default="leader,claims,groups")
    parser.add_argument("--queued", type=int, default=1_000_000)
    parser.add_argument("--groups", type=int, default=10_000)
    parser.add_argument("--batch", default="10,100", help="admissions per round (leader part)")
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--processes", type=int, default=50)
    parser.add_argument("--claim-batch", type=int, default=8, help="each worker's slots")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--sweep-backlog", type=int, default=100_000)
    args = parser.parse_args()
    parts = args.parts.split(",")
    batches = [int(b) for b in args.batch.split(",")]

    if "leader" in parts or "claims" in parts:
        with fresh_database("postgres") as url:
            took = load(url, args.queued, args.groups)
            print(f"loaded {args.queued:,} tasks in {args.groups:,} groups in {took:.0f} s "
                  f"(load {loadavg()})", flush=True)  # fmt: skip
            if "leader" in parts:
                print(LEADER_HEADER)
                print("|---|---|---|---|---|---|---|")
                for batch in batches:
                    r = leader_cost(url, batch, args.rounds)
                    print(f"| {batch} | {ms(r['leader_cpu_per_1000'])} | "
                          f"{ms(r['db_cpu_per_1000'])} | {ms(r['wall_per_1000'])} | "
                          f"{ms(r['leader_cpu_per_round'])} | {ms(r['db_cpu_per_round'])} | "
                          f"{loadavg()} |", flush=True)  # fmt: skip
            if "claims" in parts:
                r = claims(url, args.processes, args.claim_batch, args.seconds)
                print(f"\n{args.processes} worker processes x {args.claim_batch} slots, "
                      f"{args.seconds:.0f} s, load {r['load']}:")  # fmt: skip
                for key, value in r.items():
                    shown = f"{value:,.3f}" if isinstance(value, float) else value
                    print(f"  {key:28} {shown}")
                sys.stdout.flush()

    if "groups" in parts:
        print(GROUPS_HEADER.format(args.sweep_backlog))
        print("|---|---|---|---|---|---|---|")
        for groups in (10, 1000, 10_000):
            with fresh_database("postgres") as url:
                load(url, args.sweep_backlog, groups)
                for batch in batches:
                    r = leader_cost(url, batch, args.rounds)
                    print(f"| {groups:,} | {batch} | {ms(r['leader_cpu_per_round'])} | "
                          f"{ms(r['db_cpu_per_round'])} | {ms(r['leader_cpu_per_1000'])} | "
                          f"{ms(r['db_cpu_per_1000'])} | {loadavg()} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
