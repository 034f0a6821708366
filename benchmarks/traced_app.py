"""The no-op app with OpenTelemetry's SDK set up (spans made, batched, then dropped): what a
worker pays for tracing, without an exporter's network cost (benchmarks/metrics.py)."""

from __future__ import annotations

from collections.abc import Sequence

from noop_app import app
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult


class Drop(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


provider = TracerProvider()
provider.add_span_processor(BatchSpanProcessor(Drop()))
trace.set_tracer_provider(provider)

__all__ = ["app", "provider"]
