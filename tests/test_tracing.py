"""OpenTelemetry traces on every backend, with the SDK's in-memory exporter: a `send` span per
submit whose W3C context is stored with the task, a `process` span per attempt *linked* to it
(not its child), so retries and workflow steps link back to their submit; the messaging
attributes; a failure recorded as an error; the attempt's log lines carrying its trace id; and
without an SDK, nothing stored."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from conftest import wait_until
from opentelemetry import trace as otel_trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import corral
from corral import tracing
from corral.lifecycle import State
from corral.store.contract import AdmitParams, ClaimParams
from corral.worker.attempt_log import AttemptLog
from corral.worker.worker import WorkerConfig


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """An SDK provider for corral's tracer only (the process's global provider is left alone)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(otel_trace, "get_tracer", lambda name, *a, **k: provider.get_tracer(name))
    monkeypatch.setattr(otel_trace, "get_tracer_provider", lambda: provider)  # an SDK is set up
    yield exporter
    provider.shutdown()


def by_kind(exporter: InMemorySpanExporter, kind: SpanKind) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.kind == kind]


def test_process_spans_link_to_the_submit_across_retries_and_workflow_steps(
    app: corral.App, services: Any, spans: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    runs: dict[int, int] = {}

    @app.task(name="flaky", max_retries=1, backoff=corral.Backoff(base=0.01, jitter=0.0))
    def flaky(ctx: corral.Context) -> str:
        runs[ctx.task_id] = runs.get(ctx.task_id, 0) + 1
        if ctx.attempt == 1:
            raise RuntimeError("first try fails")
        return "ok"

    @app.task(name="step")
    def step(ctx: corral.Context) -> None:
        return None

    flaky_id = flaky.submit(group="g1")
    wf = app.workflow("nightly")
    first = wf.add(step)
    wf.add(step, after=[first])
    workflow_id = wf.submit()
    assert wf.ids is not None
    ids = [flaky_id, *wf.ids]
    config = WorkerConfig(concurrency=2, heartbeat=0.1, grace=2.0, middleware=[AttemptLog()])
    caplog.set_level(logging.INFO, logger="corral.attempt")
    services(app, worker=config)
    wait_until(lambda: all(app.get(i).state == State.SUCCEEDED for i in ids), timeout=30)
    wait_until(lambda: len(by_kind(spans, SpanKind.CONSUMER)) == 4)

    sends = by_kind(spans, SpanKind.PRODUCER)
    assert [s.name for s in sends] == ["send flaky", "send step"]
    send_flaky, send_wf = sends
    assert send_flaky.attributes is not None and send_wf.attributes is not None
    assert send_flaky.attributes["messaging.system"] == "corral"
    assert send_flaky.attributes["messaging.destination.name"] == "flaky"
    assert send_flaky.attributes["messaging.message.id"] == str(flaky_id)
    assert send_wf.attributes["messaging.batch.message_count"] == 2
    assert send_wf.attributes["corral.workflow"] == "nightly"

    processes = by_kind(spans, SpanKind.CONSUMER)
    flaky_runs = [s for s in processes if s.name == "process flaky"]
    assert len(flaky_runs) == 2 == runs[flaky_id]
    for span in processes:
        assert span.parent is None  # linked, not a child
        assert len(span.links) == 1
        send = send_flaky if span.name == "process flaky" else send_wf
        assert span.links[0].context.span_id == send.context.span_id
        assert span.links[0].context.trace_id == send.context.trace_id
        attrs = span.attributes or {}
        assert attrs["messaging.system"] == "corral"
        assert attrs["messaging.consumer.group.name"] == "default"
        assert attrs["messaging.operation.type"] == "process"
    failed, retried = sorted(flaky_runs, key=lambda s: (s.attributes or {})["corral.attempt"])
    assert (failed.attributes or {})["messaging.message.id"] == str(flaky_id)
    assert (failed.attributes or {})["corral.group"] == "g1"
    assert failed.status.status_code == StatusCode.ERROR
    assert [e.name for e in failed.events] == ["exception"]
    assert (failed.events[0].attributes or {})["exception.type"] == "RuntimeError"
    assert retried.status.status_code != StatusCode.ERROR
    steps = [s for s in processes if s.name == "process step"]
    assert {(s.attributes or {})["corral.workflow_id"] for s in steps} == {workflow_id}

    ended = [r for r in caplog.records if r.getMessage().startswith("attempt ended")]
    assert len(ended) == 4
    for record in ended:
        span = next(
            s for s in processes
            if (s.attributes or {})["messaging.message.id"] == str(record.__dict__["task_id"])
            and (s.attributes or {})["corral.attempt"] == record.__dict__["attempt"]
        )  # fmt: skip
        assert record.__dict__["trace_id"] == f"{span.context.trace_id:032x}"


def test_without_an_sdk_nothing_is_stored(app: corral.App) -> None:
    @app.task(name="plain")
    def plain(ctx: corral.Context) -> None:
        return None

    task_id = plain.submit()
    now = app.clock.now()
    app.store.task_admit_many(AdmitParams([task_id], now))
    claimed = app.store.task_claim(ClaimParams("w1", ["default"], 1, now + 30, now))
    assert [c.trace_context for c in claimed] == [None]
    assert claimed[0].pool == "default" and claimed[0].ready_at is not None


def test_a_claim_hands_the_worker_the_stored_context(
    app: corral.App, spans: InMemorySpanExporter
) -> None:
    @app.task(name="plain")
    def plain(ctx: corral.Context) -> None:
        return None

    task_id = plain.submit()
    now = app.clock.now()
    app.store.task_admit_many(AdmitParams([task_id], now))
    claimed = app.store.task_claim(ClaimParams("w1", ["default"], 1, now + 30, now))
    (send,) = by_kind(spans, SpanKind.PRODUCER)
    context = claimed[0].trace_context
    assert context is not None
    assert f"{send.context.trace_id:032x}-{send.context.span_id:016x}" in context


def test_spans_are_built_only_once_an_sdk_is_set_up(spans: InMemorySpanExporter) -> None:
    """The API alone hands out its proxy provider, whose spans record nothing: corral skips
    building them (the `spans` fixture sets an SDK provider up; undone, the proxy is back)."""
    assert tracing.recording()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(otel_trace, "get_tracer_provider", lambda: otel_trace.ProxyTracerProvider())
        assert not tracing.recording()
        with tracing.sending(["plain"], ["default"]) as send:
            assert send is tracing.NO_SEND


def test_a_submit_stamps_copies_of_its_tasks_with_its_context(
    app: corral.App, spans: InMemorySpanExporter
) -> None:
    """The copies (made without the dataclass constructor, for speed) equal what `replace`
    makes, and the caller's own submissions keep no context."""

    @app.task(name="plain")
    def plain(ctx: corral.Context, n: int) -> None:
        return None

    submissions = [plain.prepare(n) for n in range(3)]
    with tracing.sending(["plain"], ["default"]) as send:
        assert send.context is not None
        stamped = send.stamp([s.task for s in submissions])
    assert list(stamped) == [replace(s.task, trace_context=send.context) for s in submissions]
    assert [s.task.trace_context for s in submissions] == [None, None, None]
    assert tracing.NO_SEND.stamp([submissions[0].task])[0] is submissions[0].task
