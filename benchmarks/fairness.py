"""Fairness on the reference workload: corral's policy against plain FIFO and strict priority.

Runs corral's real scheduler (in this process, one policy at a time) and a real worker process
(`corral worker`, 16 slots) on a fresh database per run, on the shape of shared/WORKLOAD.md with
time compressed 1000 times (a 30 s poll runs 30 ms, a 4-minute ageing step takes 0.24 s; the
ratios between run times, arrivals and slots are kept). Every figure comes from the event rows
afterwards, so measuring costs the run nothing. The baselines run the same scheduler with
another admission order ("fifo": oldest first; "priority": highest level, then oldest); caps hold
under all three, so only the order differs.

Scenarios:
  big-first   one 1,500-job pipeline (cap 12), then 60 small pipelines (3-9 jobs) and 4 medium
              ones (30-120 jobs, cap 6) submitted just after it: the wait of the small ones.
  trickle     the 1,500-job pipeline (cap 12), then 60 small pipelines whose jobs are submitted
              one at a time over about 3 s: the fast lane's case (`fair-no-lane` compares).
  share       8 equal pipelines of 150 jobs submitted one after another, all backlogged: Jain's
              fairness index of their slot shares, sampled every 10 ms while all are backlogged
              (1.0 is perfectly fair, 1/8 is one group taking everything).
  starvation  a high-priority stream (level 5) at 1.25 times the capacity for 4 s, and 10
              low-priority checks (level 0, +1 every 0.25 s up to 5): their longest wait.
Then the scheduler's cost per decision with 10 to 10,000 groups holding 20,000 ready tasks
(store-level, no worker: a dispatch round, timed per task it admits, with 64 slots turning over).

    python benchmarks/fairness.py --backend sqlite
    python benchmarks/fairness.py --backend postgres --policies fair,fifo,priority
    python benchmarks/fairness.py --backend sqlite --policies fair,fair-no-lane --skip-cost
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import backlog, fresh_database, percentile
from fairness_app import make_app

import corral
from corral.demo.summary import peaks
from corral.lifecycle import ACTIVE
from corral.model import AttemptReport, GroupConfig, TaskQuery, WorkerInfo
from corral.readside import ReadSide
from corral.scheduler.dispatcher import dispatch
from corral.scheduler.service import Scheduler, SchedulerConfig
from corral.store import Store, open_store
from corral.store.contract import ClaimParams, CompleteParams, InsertParams

SLOTS = 16
NO_LANE = "-no-lane"
"""A policy named with this suffix runs without the fast lane (`--policies fair,fair-no-lane`)."""


@dataclass
class Run:
    """What one scenario under one policy gave."""

    waits: dict[str, list[float]] = field(default_factory=dict)
    """Wait (submission or release to first start) of each task, per group."""
    jain: float | None = None
    cap_violations: int = 0
    seconds: float = 0.0


# -- driving corral ---------------------------------------------------------------------------


class Cluster:
    """A scheduler thread (with the policy under test) and one worker process."""

    def __init__(self, url: str, policy: str) -> None:
        self.app = make_app(url)
        path = os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(HERE)) if p)
        env = dict(os.environ, CORRAL_DATABASE_URL=url, PYTHONPATH=path)
        command = [sys.executable, "-m", "corral", "--app", "fairness_app:app", "worker",
                   "--concurrency", str(SLOTS)]  # fmt: skip
        self.worker = subprocess.Popen(command, env=env, stderr=subprocess.PIPE)
        config = SchedulerConfig(
            policy=policy.removesuffix(NO_LANE),
            prefetch=0,
            prefetch_ratio=0.0,
            fast_lane=not policy.endswith(NO_LANE),
        )
        self.scheduler = Scheduler(self.app.store, config)
        self.thread = threading.Thread(target=self.scheduler.run, daemon=True)

    def __enter__(self) -> Cluster:
        deadline = time.monotonic() + 30
        while not self.app.store.worker_list(time.time()):
            if self.worker.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the worker did not start: {self.worker.stderr.read()!r}")  # type: ignore[union-attr]
            time.sleep(0.05)
        self.thread.start()
        return self

    def wait_all_done(self, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if not self.app.store.task_count_unfinished():  # the backlog's own indexes
                return
            if time.monotonic() > deadline:
                raise SystemExit("the scenario did not finish in time")
            time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        self.scheduler.stop()
        self.thread.join(10)
        self.worker.send_signal(signal.SIGTERM)
        self.worker.wait(30)
        self.app.close()


def job(app: corral.App, group: str, ms: float) -> corral.Submission:
    return app.task_type("job").prepare(ms, group=group)


def poll_ms(rng: random.Random) -> float:
    """A job's compressed run time: mostly polls and checks of 5-60 s, one in ten a load of
    1-5 minutes."""
    return rng.uniform(60, 300) if rng.random() < 0.1 else rng.uniform(5, 60)


# -- scenarios --------------------------------------------------------------------------------


def big_first(cluster: Cluster, rng: random.Random, policy: str) -> None:
    app = cluster.app
    app.groups.configure("big", max_parallel=12)
    for m in range(4):
        app.groups.configure(f"medium-{m}", max_parallel=6)
    app.submit_many([job(app, "big", poll_ms(rng)) for _ in range(1500)])
    batch = [job(app, f"medium-{m}", poll_ms(rng)) for m in range(4)
             for _ in range(rng.randint(30, 120))]  # fmt: skip
    batch += [job(app, f"small-{s}", poll_ms(rng)) for s in range(60)
              for _ in range(rng.randint(3, 9))]  # fmt: skip
    app.submit_many(batch)


def trickle(cluster: Cluster, rng: random.Random, policy: str) -> None:
    """The big pipeline (cap 12) in one batch, then 60 small pipelines whose jobs come one
    submit at a time, as polls and checks do, over about 3 s: with 4 slots the big one can't
    take, the fast lane admits them in their own writes, the leader's round otherwise."""
    app = cluster.app
    app.groups.configure("big", max_parallel=12)
    app.submit_many([job(app, "big", poll_ms(rng)) for _ in range(1500)])
    kind = app.task_type("job")
    for s in range(60):
        for _ in range(rng.randint(3, 9)):
            kind.submit(poll_ms(rng), group=f"small-{s}")
        time.sleep(0.05)


def share(cluster: Cluster, rng: random.Random, policy: str) -> None:
    app = cluster.app
    for g in range(8):
        app.submit_many([job(app, f"pipeline-{g}", rng.uniform(20, 40)) for _ in range(150)])


def starvation(cluster: Cluster, rng: random.Random, policy: str) -> None:
    """High-priority jobs of 20 ms: 16 slots serve 800 a second; 1,000 a second arrive. The low
    checks age under corral's policy only: the baselines have no ageing."""
    app = cluster.app
    high = app.task_type("job")
    started = time.monotonic()
    lows_sent = False
    while (elapsed := time.monotonic() - started) < 4.0:
        app.submit_many([high.prepare(20.0, group="stream", priority=5) for _ in range(50)])
        if elapsed > 0.2 and not lows_sent:
            low = app.task_type("low")
            ageing = None if policy.startswith("fair") else corral.aging.none
            app.submit_many([low.prepare(20.0, group="checks", aging=ageing) for _ in range(10)])
            lows_sent = True
        time.sleep(max(0.0, 0.05 - (time.monotonic() - started - elapsed)))


SCENARIOS: dict[str, Callable[[Cluster, random.Random, str], None]] = {
    "big-first": big_first,
    "trickle": trickle,
    "share": share,
    "starvation": starvation,
}


# -- measuring from the events -----------------------------------------------------------------


def jain(store: Store) -> float:
    """Mean of Jain's index of the slot shares of the backlogged groups (each with ready tasks,
    all of equal weight), taken after every admission that fills the pool while at least two
    groups are backlogged: how the policy divides the workers. The events are replayed in
    commit order (their timestamps are each caller's clock)."""
    group_of = {t.id: t.group for t in store.task_list(TaskQuery(limit=1_000_000))}
    ready: dict[str, int] = defaultdict(int)
    held: dict[str, int] = defaultdict(int)
    indices = []
    after = 0
    while events := store.event_fetch_after(after, 10_000):
        after = events[-1].id
        for event in events:
            if event.to_state is None:
                continue
            group = group_of[event.task_id]
            ready[group] += (event.to_state == "ready") - (event.from_state == "ready")
            held[group] += (event.to_state in ACTIVE) - (event.from_state in ACTIVE)
            backlogged = [g for g, n in ready.items() if n > 0]
            shares = [held[g] for g in backlogged]
            full = sum(held.values()) >= SLOTS
            if event.to_state == "admitted" and full and len(backlogged) >= 2:
                squares = sum(x * x for x in shares)
                indices.append(sum(shares) ** 2 / (len(shares) * squares) if squares else 0.0)
    return statistics.fmean(indices) if indices else float("nan")


def cap_violations(store: Store) -> int:
    """Groups that ever held more slots than their cap: the events replayed in commit order
    (their timestamps are each caller's clock, so overlaps of a few ms there mean nothing)."""
    group_of = {t.id: t.group for t in store.task_list(TaskQuery(limit=1_000_000))}
    defaults = store.group_get("*")
    violations = 0
    for group, peak in peaks(ReadSide(store, store.clock()), group_of).items():
        config = store.group_get(group) or defaults or GroupConfig(group)
        violations += config.max_parallel is not None and peak > config.max_parallel
    return violations


def run_scenario(backend: str, scenario: str, policy: str, seed: int) -> Run:
    with fresh_database(backend) as url, Cluster(url, policy) as cluster:
        started = time.time()
        SCENARIOS[scenario](cluster, random.Random(seed), policy)
        cluster.wait_all_done()
        store = cluster.app.store
        run = Run(seconds=time.time() - started)
        for task in store.task_list(TaskQuery(limit=1_000_000)):
            if task.wait_seconds is not None:
                run.waits.setdefault(task.group, []).append(task.wait_seconds)
        run.cap_violations = cap_violations(store)
        if scenario == "share":
            run.jain = jain(store)
        return run


# -- scheduler cost per decision ------------------------------------------------------------------


def decision_cost(backend: str, groups: int, tasks: int = 20_000, rounds: int = 40) -> float:
    """Mean seconds of a dispatch round per task it admits, with `tasks` ready tasks spread over
    `groups` groups and 64 slots turning over."""
    with fresh_database(backend) as url:
        store = open_store(url)
        new = backlog(tasks, groups=groups, levels=1)
        now = time.time()
        for first in range(0, tasks, 5000):
            store.task_insert_many(InsertParams(new[first : first + 5000], now))
        store.worker_register(WorkerInfo("w", "bench", 1, ("default",), 64), now + 3600, now)
        store.ready_groups_refresh(1_000_000)  # the bulk load's hints: once, not a decision
        spent, admitted = 0.0, 0
        for _ in range(rounds):
            now = time.time()
            began = time.perf_counter()
            admitted += dispatch(store, now)
            spent += time.perf_counter() - began
            claims = store.task_claim(ClaimParams("w", ["default"], 64, now + 60, now))
            reports = [
                AttemptReport(c.id, c.attempt, "succeeded", corral.State.SUCCEEDED) for c in claims
            ]
            store.task_complete_many(CompleteParams(reports, now))
        store.close()
        return spent / max(admitted, 1)


# -- report ---------------------------------------------------------------------------------------


def summarise(runs: dict[str, dict[str, Run]], policies: list[str]) -> None:
    def row(label: str, value: Callable[[Run], str], scenario: str) -> None:
        if scenario not in runs:
            return
        cells = " | ".join(value(runs[scenario][p]) for p in policies)
        print(f"| {label} | {cells} |")

    def small(run: Run) -> list[float]:
        return [w for g, ws in run.waits.items() if g.startswith("small") for w in ws]

    print(f"| metric | {' | '.join(policies)} |")
    print("|---|" + "---|" * len(policies))
    row("big-first: small pipelines, mean wait (s)", lambda r: f"{statistics.fmean(small(r)):.2f}",
        "big-first")  # fmt: skip
    row("big-first: small pipelines, p95 wait (s)", lambda r: f"{percentile(small(r), 95):.2f}",
        "big-first")  # fmt: skip
    row("big-first: small pipelines, max wait (s)", lambda r: f"{max(small(r)):.2f}", "big-first")
    row("big-first: big pipeline, mean wait (s)",
        lambda r: f"{statistics.fmean(r.waits['big']):.2f}", "big-first")  # fmt: skip
    row("big-first: all done after (s)", lambda r: f"{r.seconds:.1f}", "big-first")
    row("trickle: small pipelines, mean wait (s)", lambda r: f"{statistics.fmean(small(r)):.3f}",
        "trickle")  # fmt: skip
    row("trickle: small pipelines, p95 wait (s)", lambda r: f"{percentile(small(r), 95):.3f}",
        "trickle")  # fmt: skip
    row("trickle: big pipeline, mean wait (s)",
        lambda r: f"{statistics.fmean(r.waits['big']):.2f}", "trickle")  # fmt: skip
    row("share: Jain's index of backlogged groups", lambda r: f"{r.jain:.3f}", "share")
    row("starvation: low-priority, longest wait (s)",
        lambda r: f"{max(r.waits['checks']):.2f}", "starvation")  # fmt: skip
    row("starvation: high-priority, mean wait (s)",
        lambda r: f"{statistics.fmean(r.waits['stream']):.2f}", "starvation")  # fmt: skip
    violations = {p: sum(runs[s][p].cap_violations for s in runs) for p in policies}
    print(f"| cap violations, all scenarios | {' | '.join(str(violations[p]) for p in policies)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], action="append")
    parser.add_argument("--policies", default="fair,fifo,priority")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-cost", action="store_true", help="skip the cost per decision")
    args = parser.parse_args()
    policies = args.policies.split(",")
    for backend in args.backend or ["sqlite"]:
        print(f"\n## {backend}: {SLOTS} slots, time compressed 1000x\n")
        runs: dict[str, dict[str, Run]] = defaultdict(dict)
        for scenario in args.scenarios.split(","):
            for policy in policies:
                runs[scenario][policy] = run_scenario(backend, scenario, policy, args.seed)
                print(f"  ran {scenario} under {policy} in {runs[scenario][policy].seconds:.1f} s",
                      file=sys.stderr)  # fmt: skip
        summarise(runs, policies)
        if not args.skip_cost:
            costs = {groups: decision_cost(backend, groups) for groups in (10, 100, 1000, 10_000)}
            print("\n| groups with ready work | scheduler cost per decision | ratio to 10 groups |")
            print("|---|---|---|")
            for groups, cost in costs.items():
                print(f"| {groups:,} | {cost * 1e6:.0f} us | {cost / costs[10]:.2f} |")


if __name__ == "__main__":
    main()
