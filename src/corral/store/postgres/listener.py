"""Wake-ups on PostgreSQL: LISTEN on a connection of its own."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql

from . import queries as q

log = logging.getLogger("corral.store.postgres")


class Listener:
    """LISTEN on a dedicated connection; `wait(timeout)` returns the payloads that arrived (empty
    on timeout). A lost connection is reopened on the next wait, and polling covers the gap."""

    def __init__(self, url: str, channels: Sequence[str]) -> None:
        self._url = url
        self._channels = list(channels)
        self._conn: psycopg.Connection[Any] | None = None

    def _connect(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            conn = psycopg.connect(self._url, autocommit=True, connect_timeout=5)
            for channel in self._channels:
                conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
            self._conn = conn
        return self._conn

    def wait(self, timeout: float) -> list[tuple[str, str]]:
        try:
            conn = self._connect()
            first = list(conn.notifies(timeout=timeout, stop_after=1))
            rest = list(conn.notifies(timeout=0)) if first else []
            prefix = len(q.CHANNEL_PREFIX)
            return [(n.channel[prefix:], n.payload) for n in first + rest]
        except psycopg.Error as exc:
            log.debug("listener connection lost: %s", exc)
            self.close()
            time.sleep(min(timeout, 0.5))
            return []

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
