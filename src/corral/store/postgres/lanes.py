"""PostgreSQL's fast lanes (store/contract/lanes.py): the leader's statements, through the
session that holds its leadership (a leader that lost it opens nothing)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import lane_queries as lq


class PostgresLanes:
    """Mixed into PostgresStore."""

    def _leading(self, query: str, params: Any) -> list[Any]:
        raise NotImplementedError

    def _read(self, query: str, params: Any = None) -> list[Any]:
        raise NotImplementedError

    def lane_close(self) -> None:
        self._leading(lq.CLOSE, None)

    def lane_open(self, slots: Mapping[str, int], until: float) -> None:
        pools = sorted(slots)
        params = {"pools": pools, "slots": [slots[p] for p in pools], "until": until}
        self._leading(lq.OPEN, params)

    def lane_slots(self, now: float) -> dict[str, int]:
        return {pool: int(slots) for pool, slots in self._read(lq.SLOTS, {"now": now})}
