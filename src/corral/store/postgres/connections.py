"""Pooled connections that go back to the pool usable or closed, never in between."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from psycopg_pool import ConnectionPool

log = logging.getLogger("corral.store.postgres")


@contextmanager
def pooled(pool: ConnectionPool[Any]) -> Iterator[psycopg.Connection[Any]]:
    """A connection of `pool`. After any exception, a transaction still open is rolled back, and
    a connection whose command was cut off half-way (an interrupt: in a handler thread they wait
    for corral's calls, see corral.interrupts, but a KeyboardInterrupt does not) is closed, since
    its next command would fail with "another command is already in progress"; the pool
    replaces a closed connection."""
    with pool.connection() as conn:
        try:
            yield conn
        except BaseException:
            _restore_or_close(conn)
            raise


def _restore_or_close(conn: psycopg.Connection[Any]) -> None:
    """Leave `conn` idle, or close it when it can't be."""
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
