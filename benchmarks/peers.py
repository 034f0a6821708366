"""corral beside its peers: Huey and Dramatiq on this machine's Redis, Procrastinate on its
PostgreSQL, side by side with corral on PostgreSQL and on SQLite (issue 15).

Each library is run by a small driver under `benchmarks/peers/` (see `harness.py` there for the
phases): one-at-a-time submit, bulk submit, drain of N queued no-op tasks (start-up included,
and the steady rate from the first completion), start-up to the first task with one queued, and
idle submit-to-start latency. Every library gets the same N, the same no-op body and the same
worker process count; corral runs 128 tasks at once per worker process (the issue's set-up), the
peers 8 (Dramatiq's default; at 128 Dramatiq drained about 3 times slower here and Procrastinate
no faster). The peers are installed from the package
index into a venv of their own (`benchmarks/.peers-venv`, made on the first run); corral's
driver runs with this interpreter. Rounds alternate the libraries (the order rotates each round)
and the figures are medians. Each phase has a fresh queue: a fresh PostgreSQL database, a fresh
SQLite file, or a FLUSHDB of a dedicated Redis db. Beside them, in each round, the floor of a
one-at-a-time submit: a bare loop of durable one-row INSERT commits on the same PostgreSQL.

    python benchmarks/peers.py --tasks 20000 --rounds 3
    python benchmarks/peers.py --tasks 2000 --rounds 1 --only huey --only corral-sqlite
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import venv
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import PG_ADMIN_URL, fresh_database
from submit_one import bare

PEERS_VENV = HERE / ".peers-venv"
PEERS_PYTHON = PEERS_VENV / "bin" / "python"
PEER_REQUIREMENTS = [
    "huey==3.5.4",
    "dramatiq[redis]==2.2.1",
    "procrastinate==3.10.0",
    "redis",
    "psycopg[binary]",
]
REDIS_URL = "redis://127.0.0.1:6379/15"

# key: (label, interpreter, driver, extra flags)
LIBRARIES = {
    "corral-pg": (
        "corral PostgreSQL",
        sys.executable,
        "corral_driver.py",
        ["--backend", "postgres"],
    ),
    "corral-sqlite": ("corral SQLite", sys.executable, "corral_driver.py", ["--backend", "sqlite"]),
    "huey": ("Huey 3.5 (Redis)", str(PEERS_PYTHON), "huey_driver.py", []),
    "dramatiq": ("Dramatiq 2.2 (Redis)", str(PEERS_PYTHON), "dramatiq_driver.py", []),
    "procrastinate": (
        "Procrastinate 3.10 (PostgreSQL)",
        str(PEERS_PYTHON),
        "procrastinate_driver.py",
        [],
    ),
}
PEERS = ("huey", "dramatiq", "procrastinate")
CORRAL = ("corral-pg", "corral-sqlite")
COLUMNS = [
    ("one_at_a_time", "one-at-a-time submit/s", "{:,.0f}"),
    ("bulk", "bulk submit/s", "{:,.0f}"),
    ("drain", "drain/s (incl. start-up)", "{:,.0f}"),
    ("drain_steady", "drain/s (steady)", "{:,.0f}"),
    ("p50_ms", "idle p50 ms", "{:.1f}"),
    ("p99_ms", "idle p99 ms", "{:.1f}"),
    ("startup_s", "start-up s", "{:.2f}"),
]


def ensure_peers_venv() -> None:
    """The peers' own venv, made and filled from the package index on the first run."""
    probe = [str(PEERS_PYTHON), "-c", "import huey, dramatiq, procrastinate, redis, psycopg"]
    if PEERS_PYTHON.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return
    venv.create(PEERS_VENV, with_pip=True)
    pip = [str(PEERS_PYTHON), "-m", "pip", "install", "-q", *PEER_REQUIREMENTS]
    subprocess.run(pip, check=True)


def server_settings() -> dict[str, str]:
    import psycopg

    settings = {}
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        for name in ("server_version", "fsync", "synchronous_commit", "autovacuum"):
            settings[f"PostgreSQL {name}"] = conn.execute(f"SHOW {name}").fetchone()[0]
    script = (
        "import json, redis; r = redis.Redis.from_url('" + REDIS_URL + "'); "
        "print(json.dumps({k: r.config_get(k)[k] for k in ('appendonly', 'appendfsync', 'save')}"
        " | {'version': r.info()['redis_version']}))"
    )
    out = subprocess.run([str(PEERS_PYTHON), "-c", script], capture_output=True, check=True)
    for key, value in json.loads(out.stdout).items():
        settings[f"Redis {key}"] = repr(value) if value == "" else value
    return settings


def run_driver(key: str, args: argparse.Namespace) -> dict[str, float]:
    _, python, driver, extra = LIBRARIES[key]
    command = [
        python,
        str(HERE / "peers" / driver),
        *extra,
        *("--tasks", str(args.tasks), "--submits", str(args.submits)),
        *("--samples", str(args.samples), "--processes", str(args.processes)),
        *("--concurrency", str(args.concurrency if key in CORRAL else args.peer_concurrency)),
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{key} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def bare_floor(submits: int) -> float:
    with fresh_database("postgres") as url:
        return bare(url, submits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=5000, help="N: bulk submit and drain")
    parser.add_argument("--submits", type=int, default=2000, help="one-at-a-time submits")
    parser.add_argument("--samples", type=int, default=200, help="idle latency samples")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--processes", type=int, default=2, help="worker processes, each")
    parser.add_argument("--concurrency", type=int, default=128, help="corral: tasks per process")
    parser.add_argument(
        "--peer-concurrency",
        type=int,
        default=8,
        help="the peers: tasks at once per process (Dramatiq's default thread count)",
    )
    parser.add_argument("--only", action="append", choices=list(LIBRARIES))
    args = parser.parse_args()
    keys = args.only or list(LIBRARIES)
    ensure_peers_venv()
    settings = server_settings()

    figures: dict[str, list[dict[str, float]]] = {key: [] for key in keys}
    floors: list[float] = []
    for round_ in range(args.rounds):
        order = keys[round_ % len(keys) :] + keys[: round_ % len(keys)]
        for key in order:
            figures[key].append(run_driver(key, args))
            print(f"round {round_ + 1}: {key} {json.dumps(figures[key][-1])}", flush=True)
        floors.append(bare_floor(args.submits))
        print(f"round {round_ + 1}: bare INSERT commits {floors[-1]:,.0f}/s", flush=True)

    med = {
        key: {c: statistics.median(r[c] for r in runs) for c, _, _ in COLUMNS}
        for key, runs in figures.items()
    }
    floor = statistics.median(floors)

    print()
    print(
        f"N = {args.tasks:,} no-op tasks, {args.submits:,} one-at-a-time submits, "
        f"{args.samples} latency samples, {args.processes} worker processes, each "
        f"{args.concurrency} at once (corral) or {args.peer_concurrency} (the peers), "
        f"median of {args.rounds} round(s)"
    )
    print("server settings: " + ", ".join(f"{k} = {v}" for k, v in settings.items()))
    print()
    print("| library | " + " | ".join(title for _, title, _ in COLUMNS) + " |")
    print("|---|" + "---|" * len(COLUMNS))
    for key in keys:
        cells = [fmt.format(med[key][c]) for c, _, fmt in COLUMNS]
        print(f"| {LIBRARIES[key][0]} | " + " | ".join(cells) + " |")
    print(f"| bare durable INSERT commits (PostgreSQL) | {floor:,.0f} | | | | | | |")
    print()
    print_ratios(med, floor)


def print_ratios(med: dict[str, dict[str, float]], floor: float) -> None:
    """The ratios issue 15 sets targets for, each with its target (those whose libraries ran)."""
    peers = [key for key in PEERS if key in med]
    lines = []
    if "corral-pg" in med:
        pg = med["corral-pg"]
        lines.append(
            ("corral PG one-at-a-time / bare INSERT commits", pg["one_at_a_time"] / floor, ">= 0.8")
        )
        if "procrastinate" in med:
            lines.append(
                (
                    "corral PG bulk / Procrastinate bulk",
                    pg["bulk"] / med["procrastinate"]["bulk"],
                    ">= 4",
                )
            )
    for key, target in (("corral-pg", ">= 2"), ("corral-sqlite", ">= 1.5")):
        if key in med and peers:
            for column, what in (("drain", "drain"), ("drain_steady", "steady drain")):
                fastest = max(peers, key=lambda p: med[p][column])
                ratio = med[key][column] / med[fastest][column]
                lines.append(
                    (f"{LIBRARIES[key][0]} {what} / fastest peer's ({fastest})", ratio, target)
                )
    if "corral-sqlite" in med and "huey" in med:
        lite, huey = med["corral-sqlite"], med["huey"]
        lines.append(("corral SQLite idle p50 / Huey's", lite["p50_ms"] / huey["p50_ms"], "<= 1.5"))
        lines.append(("corral SQLite idle p99 / Huey's", lite["p99_ms"] / huey["p99_ms"], "<= 3"))
        lines.append(
            (
                "corral SQLite one-at-a-time / Huey's",
                lite["one_at_a_time"] / huey["one_at_a_time"],
                ">= 1",
            )
        )
    for key in ("corral-pg", "corral-sqlite"):
        if key in med:
            lines.append(
                (f"{LIBRARIES[key][0]} start-up to first task, s", med[key]["startup_s"], "<= 0.5")
            )
    print("| ratio | value | target |")
    print("|---|---|---|")
    for what, value, target in lines:
        print(f"| {what} | {value:.2f} | {target} |")


if __name__ == "__main__":
    main()
