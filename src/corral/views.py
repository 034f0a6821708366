"""Rich tables of corral's records, as the CLI shows them: groups, pools, workers, tasks, one
task."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from rich import box
from rich.table import Table

from . import model as m
from .codec import loads
from .read_model import GroupFigures, PoolFigures, Waits

STATE_STYLES = {"succeeded": "green", "dead": "bold red", "cancelled": "yellow",
                "upstream_failed": "magenta", "running": "cyan", "retry_wait": "red"}  # fmt: skip
GROUP_STATES = ("waiting", "ready", "admitted", "running", "retry_wait")
"""The unfinished states, in lifecycle order: the counts the read side keeps per group."""


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 60:
        return f"{value:.2f}s" if value < 10 else f"{value:.0f}s"
    return f"{value / 60:.0f}m" if value < 3600 else f"{value / 3600:.1f}h"


def _clock(at: float | None) -> str:
    return "-" if at is None else datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def state_markup(state: str) -> str:
    style = STATE_STYLES.get(state)
    return f"[{style}]{state}[/]" if style else state


def _table(title: str, columns: str, rows: Iterable[Sequence[str]], **options: Any) -> Table:
    """A table; `columns` is comma-separated names, a trailing '>' right-aligns the column."""
    options = {"box": box.SIMPLE_HEAD, "collapse_padding": True, "pad_edge": False, **options}
    table = Table(title=title, title_justify="left", **options)
    for name in columns.split(","):
        table.add_column(name.rstrip(">"), justify="right" if name.endswith(">") else "left")
    for row in rows:
        table.add_row(*row)
    return table


def groups_table(figures: Sequence[GroupFigures]) -> Table:
    """Per group: unfinished tasks by state, its settings, its share of the slots held now and
    its fair share, and the queue waits of its recent starts."""
    shown = [s for s in GROUP_STATES if any(g.counts.get(s) for g in figures)]  # states in use
    columns = ",".join(["group", *(f"{s.replace('_', ' ')}>" for s in shown), "cap>", "weight>",
                        "rate", "share>", "fair>", "mean wait>", "p95>"])  # fmt: skip
    rows = ([g.group, *(str(g.counts.get(s, 0)) for s in shown),
             "-" if g.max_parallel is None else str(g.max_parallel), f"{g.weight:g}",
             g.rate_limit or "-", f"{100 * g.share:.0f}%", f"{100 * g.fair_share:.0f}%",
             _seconds(g.waits.mean), _seconds(g.waits.p95)] for g in figures)  # fmt: skip
    return _table("Groups", columns, rows, caption="share: of the slots held now; fair: by "
                  "weight among groups with work; waits: starts of the last 15 min")  # fmt: skip


def pools_table(figures: Sequence[PoolFigures]) -> Table:
    """Per pool: unfinished tasks by state, live workers and their slots, recent waits."""
    shown = [s for s in GROUP_STATES if any(p.counts.get(s) for p in figures)]
    columns = ",".join(["pool", *(f"{s.replace('_', ' ')}>" for s in shown), "workers>",
                        "slots>", "started>", "mean wait>", "p95 wait>", "max wait>"])  # fmt: skip
    rows = ([p.pool, *(str(p.counts.get(s, 0)) for s in shown), str(p.workers), str(p.capacity),
             *_waits(p.waits)] for p in figures)  # fmt: skip
    return _table("Pools", columns, rows)


def _waits(w: Waits) -> list[str]:
    return [str(w.started), _seconds(w.mean), _seconds(w.p95), _seconds(w.max)]


def workers_table(workers: Sequence[m.WorkerRecord], now: float) -> Table:
    rows = ([w.id, ",".join(w.pools), f"{w.running}/{w.concurrency}", _seconds(now - w.started_at),
             f"{_seconds(now - w.heartbeat_at)} ago"] for w in workers)  # fmt: skip
    return _table("Live workers", "worker,pools,running>,up>,last heartbeat>", rows)


def tasks_table(tasks: Sequence[m.TaskRecord], now: float) -> Table:
    rows = ([str(t.id), t.name, t.group, state_markup(t.state), str(t.attempt), str(t.level),
             _seconds(now - t.created_at), (t.error or "")[:60]] for t in tasks)  # fmt: skip
    return _table("Latest tasks", "id>,name,group,state,attempt>,level>,age>,error", rows)


def task_tables(record: m.TaskRecord, attempts: Sequence[m.AttemptRecord],
                events: Sequence[m.Event], logs: Sequence[m.LogLine],
                cleanups: Sequence[m.CleanupRecord] = ()) -> list[Table]:  # fmt: skip
    """One task: its fields, attempts, each failed attempt's clean-up, events and stored log
    lines (no clean-up table for a task that has none)."""
    fields = []
    for key, value in task_json(record).items():
        shown = value if isinstance(value, str) else "-" if value is None else json.dumps(value)
        shown = _clock(value) if key.endswith("_at") and isinstance(value, float) else shown
        fields.append([key, state_markup(shown) if key == "state" else shown])
    return [
        _table(f"Task {record.id}", "field,value", fields, show_header=False,
               box=box.ROUNDED, collapse_padding=False, pad_edge=True),
        _table("Attempts", "attempt>,worker,started,finished,outcome,error", (
            [str(a.attempt), (a.worker_id or "-") + (" (alone)" if a.isolated else ""),
             _clock(a.started_at), _clock(a.finished_at),
             a.outcome or "-", a.error or ""] for a in attempts)),
        *([_table("Clean-ups", "attempt>,reason,state,tries>,ended,error", (
            [str(c.attempt), c.reason, state_markup(c.state), str(c.tries),
             _clock(c.finished_at), c.last_error or ""] for c in cleanups))] if cleanups else []),
        _table("Events", "at,event,from,to,attempt>,detail", (
            [_clock(e.at), e.kind, e.from_state or "", e.to_state or "", str(e.attempt),
             e.detail or ""] for e in events)),
        _table("Logs", "at,attempt>,level,message", (
            [_clock(x.at), str(x.attempt), logging.getLevelName(x.level), x.message]
            for x in logs)),
    ]  # fmt: skip


def task_json(record: m.TaskRecord) -> dict[str, Any]:
    data = asdict(record) | {"state": str(record.state), "depends_on": list(record.depends_on)}
    for key in ("args", "kwargs", "checkpoint", "shared", "result"):
        data[key] = loads(data[key])
    return data | {"wait_seconds": record.wait_seconds}


def workflow_table(wf: m.WorkflowStatus) -> Table:
    title = (f"Workflow {wf.id} {wf.name!r} (group {wf.group}): {state_markup(wf.state)}, "
             f"{wf.finished}/{wf.total} ended")  # fmt: skip
    rows = [(state_markup(s), str(n)) for s, n in sorted(wf.counts.items())]
    return _table(title, "state,tasks>", rows)
