"""The fast lane, in the store contract: slots the leader hands to single submits for a moment.

The leader opens a pool's lane when its round left free slots and no ready task in the pool
(corral.lanes says how many slots); a single submit that nothing bounds takes one in its own
write and is admitted there, so an idle pool's worker starts it without a scheduling round.
The leader closes every lane before it reads the load: a slot is then either taken (the task is
admitted, and counted by that read) or gone, never counted twice."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol


class FastLanes(Protocol):
    def lane_close(self) -> None:
        """Close every open lane (the leader, before it reads the load). When it returns, every
        submit that took a slot has committed, and no later one takes a slot."""
        ...

    def lane_open(self, slots: Mapping[str, int], until: float) -> None:
        """Open each pool's lane with its number of slots, until `until` (the store's clock):
        a leader that stops renewing them leaves nothing open for long."""
        ...

    def lane_slots(self, now: float) -> dict[str, int]:
        """The slots left in each pool's open lane at `now` (pools with none left out)."""
        ...
