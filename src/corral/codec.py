"""JSON encoding shared by the app and the stores: compact, sorted, never pickle."""

from __future__ import annotations

import json
from typing import Any

from .errors import PayloadError


def dumps(value: Any, *, what: str = "value") -> str:
    try:
        return json.dumps(value, separators=(",", ":"), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise PayloadError(f"{what} must be JSON-serialisable: {exc}") from None


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)
