"""`corral demo`: a day of a data-integration team's pipelines, compressed into seconds.

It runs on the embedded SQLite store with nothing to set up: a scheduler in this process, worker
processes started as `corral worker --app corral.demo:app`, and a workload shaped like the
reference one (WORKLOAD.md): one big pipeline submitted just before many small ones, a few
medium ones, each group capped; polls, table loads, warehouse checks and model refreshes that run
for milliseconds instead of minutes. Plus the cases people ask about: a flaky task that succeeds
on its third attempt, one that exhausts its retries, a long load that runs in time slices and
resumes from its checkpoint, and a query cancelled while it runs (its on_cancel cleans up).

It uses only the public API and the read side (corral.readside): no SQL. Modules: `tasks` (the
App and its task types), `workload` (the pipelines and special cases), `database` (the file it
recreates), `display` (live progress), `summary` (what happened), `run` (`run_demo`).

`run_demo()` returns a `DemoSummary`; `ok` is True only if every task ended as expected.
"""

from __future__ import annotations

from .database import reset_database
from .run import run_demo
from .summary import DemoSummary, render_summary
from .tasks import APP_SPEC, DEFAULT_URL, app
from .workload import plan

__all__ = ["APP_SPEC", "DEFAULT_URL", "DemoSummary", "app", "plan", "render_summary",
           "reset_database", "run_demo"]  # fmt: skip
