"""Pooled connections that go back to the pool usable or closed, never in between."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

log = logging.getLogger("corral.store.postgres")


def restore_or_close(conn: psycopg.Connection[Any]) -> None:
    """After an exception: leave `conn` idle (a transaction still open is rolled back), or close
    it when it can't be, e.g. a command cut off half-way (an interrupt: in a handler thread they
    wait for corral's calls, see corral.interrupts, but a KeyboardInterrupt does not), whose next
    command would fail with "another command is already in progress"; the pool replaces a closed
    connection."""
    status = conn.pgconn.transaction_status
    if status == TransactionStatus.IDLE:
        return
    if status in (TransactionStatus.INTRANS, TransactionStatus.INERROR):
        try:
            conn.rollback()
            return
        except Exception:
            log.debug("rollback failed: closing the connection", exc_info=True)
    conn.close()
