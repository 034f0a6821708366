"""What an event consumer gets: one event row and the task it is about (`StateChange`), and the
event kinds there are."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import cleanup
from ..codec import loads
from ..failures import Failure
from ..lifecycle import State
from ..model import Event, FeedEvent

SKIPPED_KIND = "consumer_skipped"
"""The event a consumer records on a task when it gives up on one of its events (see
`Consumer.max_attempts`); its detail names the consumer, the event and the error."""
EVENT_KINDS: frozenset[str] = frozenset(
    {
        *(str(s) for s in State),
        "submitted",
        "cancel_requested",
        "stalled",
        "suspect",
        "quarantined",
        "gil_held",
        cleanup.SUCCEEDED_EVENT,
        cleanup.FAILED_EVENT,
        SKIPPED_KIND,
    }
)
"""The kinds of event rows: the states entered, and the events that are not transitions."""


@dataclass(frozen=True)
class StateChange:
    """What a callback or a consumer gets: one event row and the task it is about."""

    event: Event
    task_name: str | None
    group: str | None
    workflow_id: int | None

    @classmethod
    def of(cls, feed: FeedEvent) -> StateChange:
        return cls(feed.event, feed.task_name, feed.group, feed.workflow_id)

    @property
    def task_id(self) -> int:
        return self.event.task_id

    @property
    def kind(self) -> str:
        return self.event.kind

    @property
    def state(self) -> str | None:
        """The state entered (None for an event that is not a transition)."""
        return self.event.to_state

    @property
    def detail(self) -> Any:
        return loads(self.event.detail)

    @property
    def error(self) -> Failure | None:
        """The error an attempt ended with (type, message, where: see corral.failures), on the
        events of attempts' ends (`dead`, `retry_wait`, `ready` after a lost worker, ...); None
        on the others."""
        detail = self.detail
        return Failure.from_json(detail.get("error")) if isinstance(detail, dict) else None
