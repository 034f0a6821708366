"""The worker's side of tracing (corral.tracing): a `process` span per attempt, linked to the
task's submit, as a middleware. The span is current while the handler runs, so the handler's own
spans (a warehouse client's, say) are its children; a thread handler inherits it too."""

from __future__ import annotations

from typing import Any

from .. import tracing
from .middleware import Middleware, Run


def traced() -> tuple[Middleware, ...]:
    """The tracing middleware, outermost in every worker's chain, if the OpenTelemetry API is
    installed (else none: no cost)."""
    return (Tracing(),) if tracing.available() else ()


class Tracing(Middleware):
    """A `process {task type}` span (CONSUMER) around each attempt, linked to its submit."""

    def __init__(self) -> None:
        self._spans: dict[tuple[int, int], tuple[Any, Any]] = {}

    def before_run(self, run: Run) -> None:
        tracer = tracing.tracer()  # first: it loads the API (tracing.loaded) if imported since
        if tracer is None:
            return
        trace = tracing.trace
        task = run.task
        link = tracing.link_of(task.trace_context)
        attributes: dict[str, Any] = {
            "messaging.system": tracing.SYSTEM,
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "messaging.destination.name": task.name,
            "messaging.message.id": str(task.id),
            "messaging.consumer.group.name": task.pool,
            "corral.attempt": task.attempt,
            "corral.group": task.group,
        }
        if task.workflow_id is not None:
            attributes["corral.workflow_id"] = task.workflow_id
        span = tracer.start_span(
            f"process {task.name}", kind=trace.SpanKind.CONSUMER, attributes=attributes,
            links=[link] if link is not None else None,
        )  # fmt: skip
        token = tracing.context_api.attach(trace.set_span_in_context(span))
        self._spans[(task.id, task.attempt)] = (span, token)

    def after_run(self, run: Run) -> None:
        trace = tracing.trace
        held = self._spans.pop((run.task_id, run.attempt), None)
        if trace is None or held is None:
            return
        span, token = held
        outcome = run.outcome or "released"
        span.set_attribute("corral.outcome", outcome)
        if outcome in tracing.FAILED_OUTCOMES:
            error = run.error or outcome
            kind, _, message = error.partition(": ")
            span.add_event("exception", {"exception.type": kind or outcome,
                                         "exception.message": message or error})  # fmt: skip
            span.set_status(trace.Status(trace.StatusCode.ERROR, error[:200]))
        span.end()
        tracing.context_api.detach(token)

    def trace_id(self, run: Run) -> str | None:
        """The attempt's trace id (32 hex digits), for its log lines; None without a span."""
        held = self._spans.get((run.task_id, run.attempt))
        if held is None:
            return None
        context = held[0].get_span_context()
        return f"{context.trace_id:032x}" if context.is_valid else None
