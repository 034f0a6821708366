"""What the demo shows at the end: per group (or set of groups) how many tasks ran and ended how,
their queue waits and the most slots one group held at once; and each special case against what
was expected. Read through corral.readside and the App."""

from __future__ import annotations

from dataclasses import dataclass, field

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from ..lifecycle import ACTIVE, State
from ..model import TaskRecord
from ..read_model import TaskFilter
from ..readside import ReadSide
from .tasks import app
from .workload import DB_SYNC, Pipeline, Specials


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


def peaks(reads: ReadSide, group_of: dict[int, str]) -> dict[str, int]:
    """Most tasks of each group that held a slot (admitted or running) at once: the events
    replayed in commit order, which is what a cap bounds (timestamps are the callers' clocks)."""
    active: dict[str, int] = {}
    peak: dict[str, int] = {}
    after = 0
    while batch := reads.events_after(after, 1000):
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


def _judge_specials(reads: ReadSide, specials: Specials) -> list[CaseOutcome]:
    flaky, broken = app.get(specials.flaky), app.get(specials.broken)
    load, query = app.get(specials.long_load), app.get(specials.query)
    slices = len(reads.task(load.id).attempts)
    cleaned = any("clean-up" in line.message for line in reads.task(query.id, logs=1000).logs)
    return [
        _judge_workflow(reads, specials),
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


def _judge_workflow(reads: ReadSide, specials: Specials) -> CaseOutcome:
    """The binlog catch-up held its group alone, and every step ran after what it waits for."""
    status = app.workflow_status(specials.workflow)
    steps = every_task(reads, TaskFilter(group=DB_SYNC))
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


def every_task(reads: ReadSide, f: TaskFilter | None = None) -> list[TaskRecord]:
    """Every task matching `f`, page by page (the demo's database is small)."""
    page = reads.tasks(f, limit=1000)
    records = list(page.tasks)
    while page.next is not None:
        page = reads.tasks(f, after=page.next, limit=1000)
        records += page.tasks
    return records


def summarise(url: str, seconds: float, workers: int, concurrency: int,
              pipelines: list[Pipeline], refreshes: list[int],
              specials: Specials) -> DemoSummary:  # fmt: skip
    reads = ReadSide(app.store, app.clock)
    records = every_task(reads)
    waits: dict[int, float] = {}
    for r in records:
        if r.first_started_at is not None:
            waits[r.id] = r.first_started_at - r.enqueued_at
    for task_id in refreshes:  # a dependent task can't run before it is released: count from then
        events = [e for e in reads.task(task_id, logs=1).events if e.to_state == State.READY]
        record = app.get(task_id)
        if events and record.first_started_at is not None:
            waits[task_id] = record.first_started_at - events[0].at
    peak = peaks(reads, {r.id: r.group for r in records})
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
    cases = _judge_specials(reads, specials)
    problems += [f"{c.name}: expected {c.expected}, got {c.outcome}" for c in cases if not c.ok]
    return DemoSummary(url, seconds, workers, concurrency, lines, total, cases, problems)
