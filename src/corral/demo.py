"""`corral demo`: a day of a data-integration team's pipelines, compressed into seconds.

It runs on the embedded SQLite store with nothing to set up: a scheduler in this process, worker
processes started as `corral worker --app corral.demo:app`, and a workload shaped like the
reference one (WORKLOAD.md): one big pipeline submitted just before many small ones, a few
medium ones, each group capped; polls, table loads, warehouse checks and model refreshes that run
for milliseconds instead of minutes. Plus the cases people ask about: a flaky task that succeeds
on its third attempt, one that exhausts its retries, a long load that runs in time slices and
resumes from its checkpoint, and a query cancelled while it runs (its on_cancel cleans up).

`run_demo()` returns a `DemoSummary`; `ok` is True only if every task ended as expected.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import sqlite3
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table
from rich.text import Text

from .app import App, Submission
from .backoff import Backoff
from .cli import stop_processes, worker_command
from .context import Context
from .errors import ConfigError, CorralError
from .lifecycle import ACTIVE, TERMINAL, State
from .model import TaskQuery, TaskRecord
from .scheduler.service import Scheduler
from .store import Store

DEFAULT_URL = "sqlite:///corral-demo.db"
APP_SPEC = "corral.demo:app"
SLICE = 0.5
"""max_runtime of the sliced historical load (times the time scale)."""

app = App()
"""The demo's task types. Its URL is set by `run_demo`, and given to the worker processes with
--database-url."""


# -- task types ---------------------------------------------------------------------------------


@app.task(name="demo.poll_source", priority=2)
async def poll_source(ctx: Context, source: str, seconds: float) -> dict[str, Any]:
    """Ask a source (a database, an API) for what changed."""
    await asyncio.sleep(seconds)
    return {"source": source, "changed_rows": int(seconds * 10_000)}


@app.task(name="demo.load_table", priority=1)
def load_table(ctx: Context, table: str, seconds: float) -> dict[str, Any]:
    """Copy a table into the warehouse (a blocking client: the thread executor)."""
    if ctx.wait_cancelled(seconds):
        ctx.raise_if_cancelled()
    return {"table": table, "rows": int(seconds * 1_000_000)}


@app.task(name="demo.warehouse_check", priority=1)
async def warehouse_check(ctx: Context, table: str, seconds: float) -> dict[str, Any]:
    """Check a loaded table: row counts, freshness, nulls."""
    await asyncio.sleep(seconds)
    return {"table": table, "ok": True}


@app.task(name="demo.model_refresh", priority=3)
async def model_refresh(ctx: Context, model: str, seconds: float) -> dict[str, Any]:
    """Rebuild a model once every load and check of its pipeline succeeded."""
    await asyncio.sleep(seconds)
    return {"model": model, "refreshed": True}


@app.task(name="demo.flaky_api", priority=5, max_retries=3,
          backoff=Backoff(base=0.2, factor=2, jitter=0))  # fmt: skip
def flaky_api(ctx: Context, endpoint: str, failures: int, seconds: float) -> dict[str, Any]:
    """A source API that times out `failures` times, then answers."""
    time.sleep(seconds)
    if ctx.attempt <= failures:
        raise ConnectionError(f"{endpoint} timed out (attempt {ctx.attempt})")
    return {"endpoint": endpoint, "attempt": ctx.attempt}


@app.task(name="demo.broken_source", priority=5, max_retries=2, backoff=Backoff(base=0.2, jitter=0))
def broken_source(ctx: Context, source: str, seconds: float) -> None:
    """A source whose credentials were revoked: every attempt fails."""
    time.sleep(seconds)
    raise PermissionError(f"{source}: credentials rejected")


@app.task(name="demo.historical_load", priority=5, executor="process", max_runtime=SLICE,
          on_timeout="continue")  # fmt: skip
def historical_load(ctx: Context, table: str, chunks: int, chunk_seconds: float) -> dict[str, Any]:
    """Load a huge table chunk by chunk. Each run is a time slice (max_runtime, then the process
    is stopped and the task requeued); the next slice resumes from the saved checkpoint."""
    start = int((ctx.checkpoint or {}).get("done", 0))
    ctx.logger.info("slice %d resumes %s at chunk %d of %d", ctx.attempt, table, start, chunks)
    for chunk in range(start, chunks):
        time.sleep(chunk_seconds)
        ctx.save_checkpoint({"done": chunk + 1})
    return {"table": table, "chunks": chunks, "last_slice_started_at": start}


def release_query(ctx: Context) -> None:
    """on_cancel of warehouse_query: cancel what the task started in the warehouse."""
    ctx.logger.warning("clean-up: cancelled warehouse query %s", ctx.shared.get("query_id"))


@app.task(name="demo.warehouse_query", priority=5, on_cancel=release_query)
def warehouse_query(ctx: Context, sql: str, seconds: float) -> dict[str, Any]:
    """A long warehouse query; records its query id so that a cancel can release it."""
    ctx.set_shared("query_id", f"wh-{ctx.task_id}-{ctx.attempt}")
    ctx.logger.info("started warehouse query %s: %s", ctx.shared["query_id"], sql)
    if ctx.wait_cancelled(seconds):
        ctx.raise_if_cancelled()
    return {"rows": 42}


@app.task(name="demo.binlog_catchup", priority=4)
async def binlog_catchup(ctx: Context, database: str, seconds: float) -> dict[str, Any]:
    """Replay a source database's binlog up to now: it must run alone in its pipeline, before
    the pipeline's loads read the tables it brings up to date."""
    await asyncio.sleep(seconds)
    return {"database": database, "caught_up": True}


# -- the workload -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pipeline:
    group: str
    kind: str  # "big", "medium" or "small"
    cap: int
    at: float  # seconds after the start when it is submitted
    size: int


def plan(scale: float, time_scale: float, seed: int = 7) -> list[Pipeline]:
    """The pipelines and when they arrive: the big one first, the rest right behind it."""
    rng = random.Random(seed)
    window = 16.0 * time_scale * min(1.0, max(scale, 0.3))
    big = Pipeline("big-pipeline", "big", 6, 0.0, max(3, round(300 * scale)))
    pipelines = [big]
    for i, (size, at) in enumerate([(60, 0.05), (45, 0.35), (30, 0.65)], start=1):
        pipelines.append(
            Pipeline(f"medium-{i}", "medium", 4, at * window, max(2, round(size * scale)))
        )
    smalls = max(2, round(40 * scale))
    for i in range(smalls):
        at = window * (0.02 + 0.9 * (i // 3) / max(1, (smalls - 1) // 3))
        pipelines.append(Pipeline(f"small-{i + 1:02d}", "small", 2, at, rng.randint(2, 9)))
    return sorted(pipelines, key=lambda p: p.at)


def pipeline_tasks(pipeline: Pipeline, rng: random.Random, time_scale: float) -> list[Submission]:
    """Polls, loads and checks of one pipeline (submitted together); its model refresh, which
    depends on all of them, is prepared by `refresh_task`."""
    n = pipeline.size - (1 if pipeline.size >= 3 else 0)
    polls = max(1, round(n * 0.1))
    checks = round(n * 0.15)
    subs = []
    for i in range(n):
        name = f"{pipeline.group}.t{i:03d}"
        if i < polls:
            subs.append(poll_source.prepare(name, rng.uniform(0.02, 0.08) * time_scale,
                                            group=pipeline.group))  # fmt: skip
        elif i < polls + checks:
            subs.append(warehouse_check.prepare(name, rng.uniform(0.005, 0.03) * time_scale,
                                                group=pipeline.group))  # fmt: skip
        else:
            big_table = rng.random() < 0.05
            seconds = rng.uniform(0.5, 1.0) if big_table else rng.uniform(0.04, 0.25)
            subs.append(load_table.prepare(name, seconds * time_scale, group=pipeline.group))
    return subs


def refresh_task(pipeline: Pipeline, rng: random.Random, time_scale: float,
                 upstream: list[int]) -> Submission:  # fmt: skip
    seconds = rng.uniform(0.3, 0.8) * time_scale
    return model_refresh.prepare(f"{pipeline.group}.model", seconds, group=pipeline.group,
                                 depends_on=upstream)  # fmt: skip


# -- the summary --------------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupLine:
    """One row of the summary: a group, or several (the small pipelines, the totals)."""

    label: str
    groups: int
    cap: int | None
    tasks: int
    succeeded: int
    dead: int
    cancelled: int
    mean_wait: float | None
    max_wait: float | None
    peak: int
    """Most tasks of one of these groups admitted or running at once (what its cap bounds)."""


@dataclass(frozen=True)
class CaseOutcome:
    name: str
    expected: str
    outcome: str
    ok: bool


@dataclass
class DemoSummary:
    database_url: str
    seconds: float
    workers: int
    concurrency: int
    lines: list[GroupLine]
    total: GroupLine
    cases: list[CaseOutcome]
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _fmt_wait(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


def render_summary(summary: DemoSummary) -> RenderableType:
    table = Table(
        title="corral demo: summary",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        collapse_padding=True,
        pad_edge=False,
    )
    table.add_column("group", no_wrap=True)
    for name in ("cap", "peak", "tasks", "succeeded", "dead", "cancelled", "mean wait",
                 "max wait"):  # fmt: skip
        table.add_column(name, justify="right", min_width=len(name) if " " not in name else 5)
    for line in [*summary.lines, summary.total]:
        total = line is summary.total
        if total:
            table.add_section()
        table.add_row(
            f"[bold]{line.label}[/]" if total else line.label,
            "-" if line.cap is None else str(line.cap),
            str(line.peak) if line.peak else "-",
            str(line.tasks), f"[green]{line.succeeded}[/]",
            f"[red]{line.dead}[/]" if line.dead else "0",
            f"[yellow]{line.cancelled}[/]" if line.cancelled else "0",
            _fmt_wait(line.mean_wait), _fmt_wait(line.max_wait),
        )  # fmt: skip
    cases = Table(
        title="Special cases",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        collapse_padding=True,
        pad_edge=False,
    )
    for name in ("case", "expected", "outcome", ""):
        cases.add_column(name)
    for case in summary.cases:
        mark = "[green]ok[/]" if case.ok else "[bold red]UNEXPECTED[/]"
        cases.add_row(case.name, case.expected, case.outcome, mark)
    rate = summary.total.tasks / summary.seconds if summary.seconds else 0.0
    lines = [
        *_headline(summary.lines),
        f"{summary.total.tasks} tasks in {summary.total.groups} groups ran in "
        f"{summary.seconds:.1f}s ({rate:.0f} tasks/s) on {summary.workers} worker processes "
        f"x {summary.concurrency}; database {summary.database_url}",
        "Time is compressed: minutes of real work run in milliseconds; the ratios of run times, "
        "arrivals and workers are kept. Wait = from ready to first start.",
        "peak = most tasks of one group admitted or running at once (its cap bounds it); "
        "small xN = the N small pipelines (2-9 tasks each) together.",
    ]
    if summary.ok:
        lines.append("[bold green]Every task ended as expected.[/]")
    else:
        lines += [f"[bold red]Problem:[/] {p}" for p in summary.problems]
    return Group(table, cases, Text.from_markup("\n".join(lines)))


def _headline(lines: list[GroupLine]) -> list[str]:
    """The figure the reference workload asks for: how long the small pipelines waited with a big
    one submitted just before them."""
    big = next((x for x in lines if x.label == "big-pipeline"), None)
    small = next((x for x in lines if x.label.startswith("small x")), None)
    if big is None or small is None or small.mean_wait is None:
        return []
    return [
        f"Fair share: the {small.groups} small pipelines, submitted right behind the "
        f"{big.tasks}-task one, waited {small.mean_wait:.2f}s on average (max "
        f"{_fmt_wait(small.max_wait)}); the big pipeline, held to its cap of {big.cap}, "
        f"{_fmt_wait(big.mean_wait)}.",
    ]


def peaks(store: Store, group_of: dict[int, str]) -> dict[str, int]:
    """Most tasks of each group that held a slot (admitted or running) at once: the events
    replayed in commit order, which is what a cap bounds (timestamps are the callers' clocks)."""
    active: dict[str, int] = {}
    peak: dict[str, int] = {}
    after = 0
    while batch := store.event_fetch_after(after, 10_000):
        after = batch[-1].id
        for e in batch:
            group = group_of.get(e.task_id)
            if group is None or e.to_state is None:
                continue
            held = active.get(group, 0) + (e.to_state in ACTIVE) - (e.from_state in ACTIVE)
            active[group] = held
            peak[group] = max(peak.get(group, 0), held)
    return peak


def _line(label: str, groups: int, cap: int | None, records: list[TaskRecord],
          waits: dict[int, float], peak: int) -> GroupLine:  # fmt: skip
    counted = [waits[r.id] for r in records if r.id in waits]
    states = [r.state for r in records]
    return GroupLine(
        label, groups, cap, len(records), states.count(State.SUCCEEDED), states.count(State.DEAD),
        states.count(State.CANCELLED), sum(counted) / len(counted) if counted else None,
        max(counted) if counted else None, peak,
    )  # fmt: skip


# -- running it ---------------------------------------------------------------------------------


def _sqlite_path(url: str) -> Path:
    if "://" not in url:
        url = f"sqlite:///{url}"
    if not url.startswith("sqlite:///"):
        raise ConfigError(f"the demo runs on an SQLite file (sqlite:///path.db), not {url!r}")
    return Path(url[len("sqlite:///") :].split("?", 1)[0]).expanduser().resolve()


def _is_demo_database(path: Path) -> bool:
    if path.stat().st_size == 0:
        return True
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            names = [row[0] for row in conn.execute("SELECT DISTINCT name FROM corral_tasks")]
    except sqlite3.Error:
        return False
    return all(name.startswith("demo.") for name in names)


def reset_database(url: str) -> str:
    """Delete the demo database (only one that holds nothing but demo tasks); its absolute URL."""
    path = _sqlite_path(url)
    if path.exists():
        if not path.is_file() or not _is_demo_database(path):
            raise ConfigError(
                f"refusing to delete {path}: it is not a corral demo database; "
                "give another --database-url"
            )
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{path}"


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM stops the demo like Ctrl-C does, so its worker processes are stopped too."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(*_: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class _Workers:
    """The demo's worker processes, with their stderr kept for when one dies."""

    def __init__(self, url: str, count: int, concurrency: int) -> None:
        self.logs: list[IO[bytes]] = []
        self.procs: list[subprocess.Popen[bytes]] = []
        command = [*worker_command(url, APP_SPEC), "--concurrency", str(concurrency)]
        command += ["--grace", "5"]
        for _ in range(count):
            log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
            self.logs.append(log)
            self.procs.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log))

    def check(self) -> None:
        for proc, log in zip(self.procs, self.logs, strict=True):
            if proc.poll() is not None:
                log.seek(0)
                tail = log.read().decode(errors="replace").strip().splitlines()[-5:]
                raise CorralError(
                    f"worker process {proc.pid} exited with code {proc.returncode}: "
                    + (" | ".join(tail) or "no output")
                )

    def stop(self) -> None:
        stop_processes(self.procs, timeout=10)
        for log in self.logs:
            log.close()


class _Display:
    """Live progress: one bar for everything, one per big or medium pipeline, one for the small
    pipelines and one for the special cases; and a line of counts per state."""

    def __init__(self, console: Console | None, pipelines: list[Pipeline]) -> None:
        columns = (TextColumn("{task.description:<22}"), BarColumn(bar_width=40))
        self.progress = Progress(*columns, MofNCompleteColumn(), TextColumn("{task.fields[note]}"))
        self.bars: dict[str, TaskID] = {"all": self._bar("all tasks")}
        for p in pipelines:
            if p.kind != "small":
                self.bars[p.group] = self._bar(f"{p.group} (cap {p.cap})")
        smalls = sum(p.kind == "small" for p in pipelines)
        self.bars["small"] = self._bar(f"{smalls} small pipelines")
        self.bars["special"] = self._bar("special cases")
        self.states = Text()
        self.live = (
            Live(Group(self.progress, self.states), console=console, refresh_per_second=8)
            if console is not None
            else None
        )

    def __enter__(self) -> None:
        if self.live is not None:
            self.live.start()

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.stop()
            if not self.live.console.is_terminal:
                self.live.console.line()

    def _bar(self, label: str) -> TaskID:
        return self.progress.add_task(label, total=0, note="")

    def update(self, counts: dict[str, dict[str, int]], elapsed: float) -> None:
        states: dict[str, int] = {}
        per_bar: dict[str, list[int]] = {}
        for group, by_state in counts.items():
            bar = "small" if group.startswith("small-") else group
            for key in ("all", bar):
                done_total = per_bar.setdefault(key, [0, 0])
                done_total[0] += sum(n for s, n in by_state.items() if s in TERMINAL)
                done_total[1] += sum(by_state.values())
            for state, n in by_state.items():
                states[state] = states.get(state, 0) + n
        for key, (done, total) in per_bar.items():
            if key in self.bars:
                note = "[green]done[/]" if total and done == total else ""
                self.progress.update(self.bars[key], completed=done, total=total, note=note)
        shown = "  ".join(f"{s} {states[s]}" for s in State if states.get(s))
        self.states.plain = f"{elapsed:5.1f}s  {shown}"


@dataclass
class _Specials:
    flaky: int
    broken: int
    long_load: int
    query: int
    workflow: int = 0
    binlog: int = 0
    cancelled_at: float | None = None


DB_SYNC = "db-sync"
"""The group of the demo's workflow: a binlog catch-up that runs alone, then loads and a check."""


def _submit_workflow(time_scale: float) -> tuple[int, int]:
    """A database pipeline as one workflow: a schema check that needs nothing, the exclusive
    binlog catch-up (it waits for the check to end, then runs alone), six loads after it and a
    warehouse check after the loads. Returns the workflow's id and the catch-up's."""
    wf = app.workflow("crm-db sync", group=DB_SYNC)
    wf.add(warehouse_check, "crm.schema", 0.1 * time_scale)
    binlog = wf.add(binlog_catchup, "crm-db", 0.3 * time_scale, exclusive=True)
    tables = ("accounts", "contacts", "deals", "notes", "tickets", "users")
    loads = [wf.add(load_table, f"crm.{t}", 0.1 * time_scale, after=[binlog]) for t in tables]
    wf.add(warehouse_check, "crm", 0.05 * time_scale, after=loads)
    return wf.submit(), binlog.id


def _submit_specials(time_scale: float) -> _Specials:
    long_load = historical_load.prepare("events_2019_2025", 16, 0.1 * time_scale, group="special")
    long_load = Submission(replace(long_load.task, max_runtime=SLICE * time_scale))
    ids = app.submit_many([
        flaky_api.prepare("https://api.example.com/v2/orders", 2, 0.05, group="special"),
        broken_source.prepare("legacy-ftp", 0.05, group="special"),
        long_load,
        warehouse_query.prepare("SELECT region, sum(amount) FROM sales GROUP BY 1", 60.0,
                                group="special"),
    ])  # fmt: skip
    flaky, broken, load, query = ids
    workflow, binlog = _submit_workflow(time_scale)
    return _Specials(flaky, broken, load, query, workflow, binlog)


def _judge_specials(specials: _Specials) -> list[CaseOutcome]:
    store = app.store
    flaky, broken = app.get(specials.flaky), app.get(specials.broken)
    load, query = app.get(specials.long_load), app.get(specials.query)
    slices = len(store.attempt_list(load.id))
    cleaned = any("clean-up" in line.message for line in store.log_list(query.id))
    return [
        _judge_workflow(specials),
        CaseOutcome("flaky API", "fails twice, succeeds on attempt 3",
                    f"{flaky.state} on attempt {flaky.attempt}",
                    flaky.state == State.SUCCEEDED and flaky.attempt == 3),
        CaseOutcome("broken source", "dead after 3 attempts (max_retries=2)",
                    f"{broken.state} after {broken.attempt} attempts: "
                    + (broken.error or "").rsplit(": ", 1)[-1],
                    broken.state == State.DEAD and broken.attempt == 3),
        CaseOutcome("historical load", "runs in slices, resumes from checkpoint",
                    f"{load.state}, finished across {slices} slices",
                    load.state == State.SUCCEEDED and slices >= 2),
        CaseOutcome("warehouse query", "cancelled while running; on_cancel cleans up",
                    f"{query.state}" + (", clean-up ran" if cleaned else ", no clean-up logged"),
                    query.state == State.CANCELLED and cleaned),
    ]  # fmt: skip


def _judge_workflow(specials: _Specials) -> CaseOutcome:
    """The binlog catch-up held its group alone, and every step ran after what it waits for."""
    status = app.workflow_status(specials.workflow)
    steps = app.store.task_list(TaskQuery(group=DB_SYNC, limit=100))
    binlog = app.get(specials.binlog)
    overlapped = [
        t.id for t in steps
        if t.id != binlog.id and t.first_started_at is not None and t.finished_at is not None
        and binlog.first_started_at is not None and binlog.finished_at is not None
        and t.first_started_at < binlog.finished_at and t.finished_at > binlog.first_started_at
    ]  # fmt: skip
    alone = "ran alone" if not overlapped else f"overlapped tasks {overlapped}"
    return CaseOutcome(
        "database sync", "a workflow: the binlog catch-up runs alone, then loads and a check",
        f"{status.state}, {status.finished} of {status.total} steps; the catch-up {alone}",
        status.state == "succeeded" and not overlapped,
    )  # fmt: skip


def _summarise(url: str, seconds: float, workers: int, concurrency: int,
               pipelines: list[Pipeline], refreshes: list[int],
               specials: _Specials) -> DemoSummary:  # fmt: skip
    store = app.store
    records = store.task_list(TaskQuery(limit=1_000_000))
    waits: dict[int, float] = {}
    for r in records:
        if r.first_started_at is not None:
            waits[r.id] = r.first_started_at - r.enqueued_at
    for task_id in refreshes:  # a dependent task can't run before it is released: count from then
        events = [e for e in store.event_list(task_id) if e.to_state == State.READY]
        record = app.get(task_id)
        if events and record.first_started_at is not None:
            waits[task_id] = record.first_started_at - events[0].at
    peak = peaks(store, {r.id: r.group for r in records})
    by_group: dict[str, list[TaskRecord]] = {}
    for r in records:
        by_group.setdefault(r.group, []).append(r)
    lines, problems = [], []
    for p in pipelines:
        if p.kind != "small":
            lines.append(_line(p.group, 1, p.cap, by_group.get(p.group, []), waits,
                               peak.get(p.group, 0)))  # fmt: skip
    smalls = [p for p in pipelines if p.kind == "small"]
    small_records = [r for p in smalls for r in by_group.get(p.group, [])]
    small_peak = max((peak.get(p.group, 0) for p in smalls), default=0)
    lines.append(_line(f"small x{len(smalls)}", len(smalls), 2, small_records, waits,
                       small_peak))  # fmt: skip
    lines.append(_line("special", 1, None, by_group.get("special", []), waits, 0))
    lines.append(_line(DB_SYNC, 1, None, by_group.get(DB_SYNC, []), waits, 0))
    total = _line("total", len(by_group), None, records, waits, 0)
    for p in pipelines:
        if peak.get(p.group, 0) > p.cap:
            problems.append(f"{p.group} held {peak[p.group]} slots at once, above its cap {p.cap}")
        bad = [r.id for r in by_group.get(p.group, []) if r.state != State.SUCCEEDED]
        if bad:
            problems.append(f"{p.group}: tasks {bad[:5]} did not succeed")
    cases = _judge_specials(specials)
    problems += [f"{c.name}: expected {c.expected}, got {c.outcome}" for c in cases if not c.ok]
    return DemoSummary(url, seconds, workers, concurrency, lines, total, cases, problems)


def run_demo(
    database_url: str = DEFAULT_URL,
    scale: float = 1.0,
    workers: int = 2,
    *,
    concurrency: int = 8,
    time_scale: float = 1.0,
    console: Console | None = None,
    timeout: float = 120.0,
) -> DemoSummary:
    """Run the demo on a fresh database and return what happened. `console`: where the live
    progress goes (None: nowhere). Raises CorralError if it can't run (a worker died, timeout)."""
    if scale <= 0 or workers < 1 or concurrency < 1 or time_scale <= 0:
        raise ConfigError("scale and time_scale must be > 0, workers and concurrency >= 1")
    url = reset_database(database_url)
    app.close()
    app.url = url
    rng = random.Random(11)
    pipelines = plan(scale, time_scale)
    for p in pipelines:
        app.groups.configure(p.group, max_parallel=p.cap)
    size = sum(p.size for p in pipelines) + 4
    if console is not None:
        console.print(
            f"[bold]corral demo[/]: {size} tasks in {len(pipelines) + 1} groups on {url}, "
            f"{workers} worker processes x {concurrency}. Time is compressed: run times of 5 ms "
            "to 1 s stand for seconds to an hour, arrivals come within seconds."
        )
    scheduler = Scheduler(app.store)
    thread = threading.Thread(target=scheduler.run, name="corral-demo-scheduler", daemon=True)
    display = _Display(console, pipelines)
    pool: _Workers | None = None
    try:
        with _sigterm_interrupts():
            thread.start()
            pool = _Workers(url, workers, concurrency)
            _wait_for_workers(pool, workers)
            start = time.monotonic()
            specials = _submit_specials(time_scale)
            refreshes = _drive(pipelines, rng, time_scale, specials, display, pool, start,
                               timeout)  # fmt: skip
            seconds = time.monotonic() - start
    finally:
        scheduler.stop()
        if pool is not None:
            pool.stop()
        thread.join(timeout=10)
    summary = _summarise(url, seconds, workers, concurrency, pipelines, refreshes, specials)
    app.close()
    return summary


def _wait_for_workers(pool: _Workers, count: int) -> None:
    deadline = time.monotonic() + 30
    while len(app.store.worker_list(app.clock.now())) < count:
        pool.check()
        if time.monotonic() > deadline:
            raise CorralError(f"the {count} demo worker processes did not start within 30s")
        time.sleep(0.05)


def _drive(pipelines: list[Pipeline], rng: random.Random, time_scale: float,
           specials: _Specials, display: _Display, pool: _Workers, start: float,
           timeout: float) -> list[int]:  # fmt: skip
    """Submit the pipelines on their schedule, cancel the query once it runs, show progress;
    return when every task has ended. Returns the ids of the dependent (refresh) tasks."""
    pending = list(pipelines)
    refreshes: list[int] = []
    with display:
        while True:
            elapsed = time.monotonic() - start
            while pending and pending[0].at <= elapsed:
                p = pending.pop(0)
                upstream = app.submit_many(pipeline_tasks(p, rng, time_scale))
                if p.size >= 3:
                    refreshes += app.submit_many([refresh_task(p, rng, time_scale, upstream)])
            _cancel_query_once_running(specials)
            stats = app.store.group_stats()
            display.update({s.group: s.counts for s in stats}, elapsed)
            unfinished = sum(n for s in stats for st, n in s.counts.items() if st not in TERMINAL)
            if not pending and unfinished == 0:
                return refreshes
            if elapsed > timeout:
                raise CorralError(f"the demo did not finish within {timeout:.0f}s")
            pool.check()
            time.sleep(0.1)


def _cancel_query_once_running(specials: _Specials) -> None:
    if specials.cancelled_at is not None:
        return
    record = app.get(specials.query)
    if record.state == State.RUNNING and record.shared:  # it has recorded its query id
        app.cancel(specials.query)
        specials.cancelled_at = time.time()
