-- corral schema, version 14: a task keeps the W3C trace context of the span that submitted it
-- (its `traceparent`, and `tracestate` if any, as JSON), so every attempt's process span links
-- back to the submit, across retries, time slices and workflow steps. NULL when tracing is off.

ALTER TABLE corral_tasks ADD COLUMN trace_context TEXT;
