"""The per-attempt log lines of a worker (a middleware): `attempt started` and `attempt ended`
(outcome, duration), each with the attempt's fields, which also go on every other line logged
while the attempt runs (corral.logformat.attempt_fields). With `--log-format json` a log system
joins them to the task, and to its trace by trace_id."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from .. import tracing
from ..logformat import attempt_fields
from .middleware import Middleware, Run

log = logging.getLogger("corral.attempt")


class AttemptLog(Middleware):
    """`trace_id`: gives the run's trace id (hex); by default the current span's (the
    attempt's process span, when tracing is on)."""

    def __init__(self, trace_id: Callable[[Run], str | None] | None = None) -> None:
        self.trace_id = trace_id or (lambda run: tracing.current_trace_id())

    def fields(self, run: Run) -> dict[str, Any]:
        return {
            "task_id": run.task_id,
            "attempt": run.attempt,
            "task_type": run.name,
            "group": run.group,
            "pool": run.task.pool,
            "trace_id": self.trace_id(run),
        }

    def before_run(self, run: Run) -> None:
        fields = self.fields(run)
        attempt_fields.set(fields)
        log.info("attempt started: task %d (%s) attempt %d", run.task_id, run.name, run.attempt,
                 extra=fields)  # fmt: skip

    def after_run(self, run: Run) -> None:
        fields = self.fields(run)
        attempt_fields.set(fields)
        outcome = run.outcome or "released"
        log.info(
            "attempt ended: task %d (%s) attempt %d %s", run.task_id, run.name, run.attempt,
            outcome, extra={**fields, "outcome": outcome, "duration": run.duration},
        )  # fmt: skip
