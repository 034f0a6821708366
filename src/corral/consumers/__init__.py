"""Event consumers: named readers of the event feed, each with its lease and cursor, at least once
and in commit order. State-change callbacks are one (corral.callbacks); alerts and metrics read
the feed the same way. See corral.consumers.service and docs/consumers.md."""

from .events import EVENT_KINDS, SKIPPED_KIND, StateChange
from .registry import Consumers, default_holder
from .service import RETRY_BACKOFF, Consumer, ConsumerService, Start

__all__ = [
    "EVENT_KINDS",
    "RETRY_BACKOFF",
    "SKIPPED_KIND",
    "Consumer",
    "ConsumerService",
    "Consumers",
    "Start",
    "StateChange",
    "default_holder",
]
