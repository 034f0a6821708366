"""Bulk submit alone (issue 15, item 4): corral on PostgreSQL and on SQLite beside
Procrastinate's `batch_defer`, each through its driver under `benchmarks/peers/` (phase 2 of
their harness: a fresh queue, then `--tasks` no-ops, 5,000 a call, no worker running), and the
same corral drivers on an older checkout of corral (`--base`, the `src` folder of one) for a
before/after in one sitting. Rounds rotate the order of the runs; each run is a process of its
own that repeats the phase `--repeat` times; the figures are medians of every phase, with the
spread (lowest and highest round's median) beside them.

    python benchmarks/bulk_submit.py --tasks 5000 --rounds 5 --base /tmp/bulk-base/src
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from peers import PEERS_PYTHON, ensure_peers_venv


def run(
    driver: str, python: str, flags: list[str], path: str, args: argparse.Namespace
) -> list[float]:
    env = dict(os.environ)
    if path:
        env["PYTHONPATH"] = path
    command = [python, str(HERE / "peers" / driver), *flags, "--bulk-only",
               "--tasks", str(args.tasks), "--repeat", str(args.repeat)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{driver} {flags} failed:\n{done.stderr[-3000:]}")
    return list(json.loads(done.stdout.strip().splitlines()[-1])["bulk"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3, help="phases per run")
    parser.add_argument("--base", default="", help="the src folder of corral to compare with")
    args = parser.parse_args()
    ensure_peers_venv()
    runs = {
        "corral PostgreSQL": ("corral_driver.py", sys.executable, ["--backend", "postgres"], ""),
        "corral SQLite": ("corral_driver.py", sys.executable, ["--backend", "sqlite"], ""),
        "Procrastinate 3.10": ("procrastinate_driver.py", str(PEERS_PYTHON), [], ""),
    }
    if args.base:
        runs["base: corral PostgreSQL"] = (*runs["corral PostgreSQL"][:3], args.base)
        runs["base: corral SQLite"] = (*runs["corral SQLite"][:3], args.base)
    names = list(runs)
    rates: dict[str, list[float]] = {name: [] for name in names}
    per_round: dict[str, list[float]] = {name: [] for name in names}
    for r in range(args.rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            got = run(*runs[name], args)
            rates[name] += got
            per_round[name].append(statistics.median(got))
            print(f"round {r + 1} {name:24} {statistics.median(got):10,.0f} tasks/s", flush=True)
    med = {name: statistics.median(values) for name, values in rates.items()}
    print(f"\n{args.tasks:,} tasks per phase, {args.rounds} rounds x {args.repeat} phases")
    for name in names:
        low, high = min(per_round[name]), max(per_round[name])
        print(f"  {name:24} {med[name]:10,.0f} tasks/s  (round medians {low:,.0f} .. {high:,.0f})")
    peer = med["Procrastinate 3.10"]
    for name in ("corral PostgreSQL", "corral SQLite"):
        print(f"  {name} / Procrastinate      {med[name] / peer:6.2f}")
        if args.base:
            ratios = [
                a / b for a, b in zip(per_round[name], per_round[f"base: {name}"], strict=True)
            ]
            print(f"  {name} / base               {med[name] / med['base: ' + name]:6.2f}"
                  f"  (per round {min(ratios):.2f} .. {max(ratios):.2f})")  # fmt: skip


if __name__ == "__main__":
    main()
