"""OpenTelemetry traces, with the `corral[otel]` extra (opentelemetry-api); without it, or
with the API but no SDK set up, nothing is recorded or stored and the cost is one check.

Per the messaging semantic conventions: a `send {task type}` span (kind PRODUCER) around each
submit, whose W3C trace context (`traceparent`, `tracestate`) is stored with the task in the
same insert; and a `process {task type}` span (kind CONSUMER) per attempt, started by the worker
with a *link* to that context (not as its child: an attempt may run long after, more than once,
and many tasks may share one submit). So retries, time slices and workflow steps all link back
to their submit. Attributes: messaging.system="corral", messaging.destination.name = the task
type, messaging.message.id = the task id, messaging.consumer.group.name = the pool, and
corral.attempt, corral.group, corral.workflow_id; a failed attempt sets the span's status to
ERROR and records the error as an `exception` event."""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import sys
from collections.abc import Iterator, Sequence
from typing import Any

trace: Any = None
"""`opentelemetry.trace`, once loaded (`loaded()`); None before, or without the extra."""
context_api: Any = None
"""`opentelemetry.context`, with `trace`."""
TraceContextTextMapPropagator: Any = None

SYSTEM = "corral"
TRACER = "corral"
FAILED_OUTCOMES = frozenset({"failed", "timed_out", "stalled", "lost"})


@functools.cache
def available() -> bool:
    """The OpenTelemetry API is installed (found, not imported: a worker doesn't pay for
    importing it at start-up unless something set up tracing)."""
    try:
        return importlib.util.find_spec("opentelemetry.trace") is not None
    except (ImportError, ValueError):
        return False


def loaded() -> Any:
    """`opentelemetry.trace` if something imported it (an SDK's set-up, an instrumentation, a
    handler's own spans), else None. Without it imported no provider is set up and no span is
    current, so there is nothing to record or link to: corral imports the API only then."""
    global trace, context_api, TraceContextTextMapPropagator
    if trace is None and "opentelemetry.trace" in sys.modules:
        from opentelemetry import context
        from opentelemetry import trace as api
        from opentelemetry.trace.propagation.tracecontext import (
            TraceContextTextMapPropagator as propagator,
        )

        context_api, TraceContextTextMapPropagator, trace = context, propagator, api
    return trace


def recording() -> bool:
    """A tracer provider is set up (an SDK's): the API alone hands out the proxy (or the no-op)
    provider, whose spans record nothing, so corral doesn't build them (a drain of no-op tasks
    paid a few percent for spans nobody kept). Asked at every span: an SDK set up later is seen."""
    api = loaded()
    if api is None:
        return False
    provider = api.get_tracer_provider()
    return not isinstance(provider, api.ProxyTracerProvider | api.NoOpTracerProvider)


class Send:
    """The submit's span, while the insert runs: `context` is what to store with the tasks."""

    def __init__(self, span: Any, context: str | None) -> None:
        self.span = span
        self.context = context

    def stored(self, task_ids: Sequence[int]) -> None:
        """The tasks were inserted with these ids."""
        if self.span is None:
            return
        if len(task_ids) == 1:
            self.span.set_attribute("messaging.message.id", str(task_ids[0]))
        else:
            self.span.set_attribute("messaging.batch.message_count", len(task_ids))


NO_SEND = Send(None, None)


@contextlib.contextmanager
def sending(names: Sequence[str], groups: Sequence[str], workflow: str | None = None
            ) -> Iterator[Send]:  # fmt: skip
    """A `send` span around a submit of tasks of these types and groups (its context current);
    NO_SEND when tracing is off."""
    if not recording():
        yield NO_SEND
        return
    tracer = trace.get_tracer(TRACER)
    kinds = sorted(set(names))
    destination = kinds[0] if len(kinds) == 1 else None
    attributes: dict[str, Any] = {
        "messaging.system": SYSTEM,
        "messaging.operation.type": "send",
        "messaging.operation.name": "send",
    }
    if destination is not None:
        attributes["messaging.destination.name"] = destination
    if len(set(groups)) == 1:
        attributes["corral.group"] = groups[0]
    if workflow is not None:
        attributes["corral.workflow"] = workflow
    name = f"send {destination}" if destination is not None else "send"
    with tracer.start_as_current_span(
        name, kind=trace.SpanKind.PRODUCER, attributes=attributes
    ) as span:
        if not span.get_span_context().is_valid:  # the API without an SDK: nothing to store
            yield Send(None, None)
            return
        carrier: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(carrier)
        yield Send(span, json.dumps(carrier, sort_keys=True, separators=(",", ":")))


def link_of(trace_context: str | None) -> Any:
    """The Link to a stored submit context, or None (none stored, or not readable). Cached: the
    tasks of one submit share their context."""
    if not trace_context or loaded() is None:
        return None
    return _link(trace_context)


@functools.lru_cache(maxsize=1024)
def _link(trace_context: str) -> Any:
    try:
        carrier = json.loads(trace_context)
    except ValueError:
        return None
    if not isinstance(carrier, dict):
        return None
    context = TraceContextTextMapPropagator().extract(carrier)
    span_context = trace.get_current_span(context).get_span_context()
    return trace.Link(span_context) if span_context.is_valid else None


def current_trace_id() -> str | None:
    """The current span's trace id (32 hex digits), or None (no tracing, or no valid span)."""
    api = loaded()
    if api is None:
        return None
    context = api.get_current_span().get_span_context()
    return f"{context.trace_id:032x}" if context.is_valid else None


__all__ = [
    "FAILED_OUTCOMES",
    "NO_SEND",
    "SYSTEM",
    "TRACER",
    "Send",
    "available",
    "context_api",
    "current_trace_id",
    "link_of",
    "loaded",
    "recording",
    "sending",
    "trace",
]  # fmt: skip
