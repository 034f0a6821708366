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
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .model import NewTask

trace: Any = None
"""`opentelemetry.trace`, once loaded (`loaded()`); None before, or without the extra."""
context_api: Any = None
"""`opentelemetry.context`, with `trace`."""

SYSTEM = "corral"
TRACER = "corral"
FAILED_OUTCOMES = frozenset({"failed", "timed_out", "stalled", "lost"})
_PROPAGATOR: Any = None
"""W3C trace context in and out, stateless: one for every submit and link (made by `loaded`)."""


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
    global trace, context_api, _PROPAGATOR
    if trace is None and "opentelemetry.trace" in sys.modules:
        from opentelemetry import context
        from opentelemetry import trace as api
        from opentelemetry.trace.propagation.tracecontext import (
            TraceContextTextMapPropagator as propagator,
        )

        context_api, _PROPAGATOR = context, propagator()
        trace = api  # last: a thread that sees it loaded sees the rest
    return trace


def recording() -> bool:
    """A tracer provider is set up (an SDK's): the API alone hands out the proxy (or the no-op)
    provider, whose spans record nothing, so corral doesn't build them (a drain of no-op tasks
    paid a few percent for spans nobody kept). Asked at every span: an SDK set up later is seen."""
    return tracer() is not None


def tracer() -> Any:
    """corral's tracer, from the SDK's provider; None when none is set up (see `recording`), or
    the API is not loaded (`loaded`). Kept for the provider last asked about: an identity check
    per span, where getting the tracer and telling the provider's class (through the API's
    abstract base classes) took some 9 µs a submit."""
    global _asked
    api = loaded()
    if api is None:
        return None
    provider = api.get_tracer_provider()
    asked, got = _asked
    if provider is not asked:
        real = not isinstance(provider, api.ProxyTracerProvider | api.NoOpTracerProvider)
        got = api.get_tracer(TRACER) if real else None
        _asked = (provider, got)  # one tuple: a thread reads a pair, never half of one
    return got


_asked: tuple[Any, Any] = (None, None)
"""The provider `tracer` last looked at, and corral's tracer from it (None: not an SDK's)."""


class Send:
    """The submit's span, while the insert runs: `context` is what to store with the tasks."""

    def __init__(self, span: Any, context: str | None) -> None:
        self.span = span
        self.context = context

    def stamp(self, tasks: Sequence[NewTask]) -> Sequence[NewTask]:
        """The tasks, carrying this submit's context: copies (the caller's submissions are left
        as they are), or the tasks themselves when there is no context. Each copy is the task's
        fields and the context, as `dataclasses.replace` would make it without the
        constructor's work (8 to 15 µs a task, a quarter of a traced `submit_many`'s cost)."""
        if self.context is None:
            return tasks
        copies = []
        for task in tasks:
            copy = object.__new__(type(task))
            fields = copy.__dict__
            fields.update(task.__dict__)
            fields["trace_context"] = self.context
            copies.append(copy)
        return copies

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
    got = tracer()
    if got is None:
        yield NO_SEND
        return
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
    with got.start_as_current_span(
        name, kind=trace.SpanKind.PRODUCER, attributes=attributes
    ) as span:
        if not span.get_span_context().is_valid:  # the API without an SDK: nothing to store
            yield Send(None, None)
            return
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier)
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
    context = _PROPAGATOR.extract(carrier)
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
    "tracer",
]  # fmt: skip
