"""`app.retention`: how long finished tasks are kept, stored in the database so that whichever
scheduler leads prunes by the same settings, changed without a restart."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from . import limits
from .durations import Duration
from .errors import ConfigError
from .retention import DEFAULT_KEY, Retention, checked

if TYPE_CHECKING:
    from .app import App


class RetentionSettings:
    """`app.retention.configure(default="7d", per_type={"poll_source": "1d"})`: finished tasks
    (succeeded, dead, cancelled, upstream_failed) are pruned this long after they finished,
    unless something still needs them (see docs/guarantees.md, "Retention")."""

    def __init__(self, app: App) -> None:
        self._app = app

    def configure(
        self,
        *,
        default: Duration | None = None,
        per_type: Mapping[str, Duration | None] | None = None,
    ) -> None:
        """`default`: the retention of every task type without its own (unchanged if None; 7 days
        until set). `per_type`: task type name -> its own retention, or None to drop it (the type
        falls back to the default). Durations: 3600, "12h", "7d", a timedelta; at least 1 s."""
        changes: list[tuple[str, float | None]] = []
        if default is not None:
            changes.append((DEFAULT_KEY, checked("retention default", default)))
        if per_type is not None:
            if not isinstance(per_type, Mapping):
                raise ConfigError(
                    f"per_type must map task type names to durations, got {per_type!r:.80}"
                )
            for name, kept in per_type.items():
                task_name = limits.text("retention per_type task name", name)
                if task_name == DEFAULT_KEY:
                    raise ConfigError(
                        f"retention per_type: {DEFAULT_KEY!r} is not a task type name "
                        "(set the default with default=)"
                    )
                value = None if kept is None else checked(f"retention of {task_name!r}", kept)
                changes.append((task_name, value))
        store = self._app.store
        for task_name, value in changes:
            store.retention_set(task_name, value)

    def get(self) -> Retention:
        """The retention in force: the default and the task types with their own."""
        return self._app.store.retention_get()
