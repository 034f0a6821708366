"""The demo's live progress: one bar for everything, one per big or medium pipeline, one for the
small pipelines and one for the special cases, and a line of counts per state."""

from __future__ import annotations

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.text import Text

from ..lifecycle import State
from .workload import Pipeline


class Display:
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

    def update(self, unfinished: dict[str, dict[str, int]], submitted: dict[str, int],
               elapsed: float) -> None:  # fmt: skip
        """`unfinished`: per group, its unfinished tasks by state; `submitted`: per group, how
        many tasks it was given (the ended ones are the difference)."""
        states: dict[str, int] = {}
        per_bar: dict[str, list[int]] = {}
        ended = 0
        for group, total in submitted.items():
            by_state = unfinished.get(group, {})
            done = max(0, total - sum(by_state.values()))
            ended += done
            bar = "small" if group.startswith("small-") else group
            bar = "special" if group == "db-sync" else bar
            for key in ("all", bar):
                done_total = per_bar.setdefault(key, [0, 0])
                done_total[0] += done
                done_total[1] += total
            for state, n in by_state.items():
                states[state] = states.get(state, 0) + n
        for key, (done, total) in per_bar.items():
            if key in self.bars:
                note = "[green]done[/]" if total and done == total else ""
                self.progress.update(self.bars[key], completed=done, total=total, note=note)
        shown = "  ".join(f"{s} {states[s]}" for s in State if states.get(s))
        self.states.plain = f"{elapsed:5.1f}s  {shown}  ended {ended}"
