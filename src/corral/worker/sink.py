"""Where a running handler's checkpoints, clean-up records and log lines go: straight to the store
for checkpoints and shared records (durable when the call returns), batched for log lines."""

from __future__ import annotations

import threading
from typing import Any

from ..clock import Clock
from ..codec import dumps
from ..limits import storable
from ..model import LogLine
from ..store import Store
from ..store.contract import CheckpointParams, SharedParams


class StoreSink:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._lines: list[LogLine] = []
        self._lock = threading.Lock()

    def save_checkpoint(self, task_id: int, attempt: int, checkpoint: Any) -> None:
        text = dumps(checkpoint, what="checkpoint")
        self._store.task_save_checkpoint(
            CheckpointParams(task_id, attempt, text, self._clock.now())
        )

    def save_shared(self, task_id: int, attempt: int, shared: dict[str, Any]) -> None:
        text = dumps(shared, what="ctx.shared")
        self._store.task_save_shared(SharedParams(task_id, attempt, text, self._clock.now()))

    def log(self, task_id: int, attempt: int, level: int, message: str) -> None:
        with self._lock:
            self._lines.append(
                LogLine(task_id, attempt, self._clock.now(), level, storable(message))
            )

    def has_lines(self) -> bool:
        return bool(self._lines)

    def take_lines(self) -> list[LogLine]:
        with self._lock:
            lines, self._lines = self._lines, []
        return lines
