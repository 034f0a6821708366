"""The processes' log format: `text` (the default) or `json`, one object a line, for a log
system to index. A line written while an attempt runs carries that attempt's fields (task_id,
attempt, task_type, group, pool, and trace_id when tracing is on), taken from a context variable
that the worker's AttemptLog middleware sets for the attempt's asyncio task (a thread handler's
`asyncio.to_thread` copies it), so concurrent attempts never mix their fields."""

from __future__ import annotations

import contextvars
import json
import logging
import time
from typing import Any

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
ATTEMPT_FIELDS = ("task_id", "attempt", "task_type", "group", "pool", "trace_id")

attempt_fields: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "corral_attempt_fields", default=None
)
"""The fields of the attempt running in this context, or None."""


class JsonFormatter(logging.Formatter):
    """One JSON object a record: ts (UNIX seconds), time (ISO 8601, UTC), level, logger,
    message, the attempt's fields, any `extra` fields of ATTEMPT_FIELDS or `outcome` and
    `duration`, and the exception's traceback as `exc`."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 6),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = attempt_fields.get()
        if fields:
            out.update({k: v for k, v in fields.items() if v is not None})
        for key in (*ATTEMPT_FIELDS, "outcome", "duration"):
            value = record.__dict__.get(key)
            if value is not None:
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, separators=(",", ":"))


def setup(level: str, fmt: str = "text") -> None:
    """Configure the root logger for a long-running process (worker, scheduler, run)."""
    if fmt not in FORMATS:
        from .errors import ConfigError

        raise ConfigError(f"log format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
