"""The day partitions of PostgreSQL's history (events, logs, attempts): made ahead of their rows,
dropped whole once corral.retention lets the day go (its rule: `retention` module docstring).

Cost: making the days ahead is one catalog read a prune run, and a short transaction per day made
(three tables, once a day). Deciding whether a day may go costs index probes that follow the
tasks still stored from around that day (`HELD_BY_TASK`, at most `SCAN` of them), never the rows
of the day; the drop itself is a DETACH and a DROP: no row is read, deleted or left for a vacuum.
"""

from __future__ import annotations

import calendar
import logging
import re
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from ...retention import DAY, PrunePlan
from . import partition_queries as pq

log = logging.getLogger("corral.store.postgres")
SCAN = 1000
"""Stored tasks looked at, at most, to decide whether a day holds one of theirs; a day around
which more are stored is kept this run (the pruner's batches will thin them out)."""
_DAY_NAME = re.compile(r"^(?P<parent>corral_[a-z]+)_p(?P<day>\d{8})$")

Transaction = Callable[[], AbstractContextManager[psycopg.Connection[Any]]]


@dataclass(frozen=True)
class Day:
    """One day partition of a history table."""

    parent: str
    name: str
    oid: int
    start: float


class _Held(Exception):
    """The day turned out to be needed once locked: roll the detach back."""


def day_name(parent: str, start: float) -> str:
    return f"{parent}_p{time.strftime('%Y%m%d', time.gmtime(start))}"


def days(tx: psycopg.Connection[Any]) -> list[Day]:
    """The day partitions of the history tables, oldest first (DEFAULT ones are not days)."""
    found = []
    for parent, name, oid in tx.execute(pq.PARTITIONS, {"parents": list(pq.PARENTS)}):
        match = _DAY_NAME.match(name)
        if match and match["parent"] == parent:
            start = float(calendar.timegm(time.strptime(match["day"], "%Y%m%d")))
            found.append(Day(parent, name, int(oid), start))
    return sorted(found, key=lambda d: (d.start, d.parent))


def make_days_ahead(transaction: Transaction, plan: PrunePlan, existing: list[Day]) -> int:
    """Make the partitions of the days ahead that don't exist yet; returns how many were made. A
    day whose parent is busy is left for the next run (its rows go to DEFAULT meanwhile, and move
    in when it is made)."""
    have = {d.name for d in existing}
    made = 0
    for start in plan.days_ahead():
        for parent, key in pq.PARENTS.items():
            name = day_name(parent, start)
            if name in have:
                continue
            try:
                with transaction() as tx:
                    tx.execute(pq.LOCK_TIMEOUT)
                    _make_day(tx, parent, key, name, start)
                made += 1
            except _Busy:
                log.info("prune: %s busy, day %s made at a later run", parent, name)
    return made


def _make_day(tx: psycopg.Connection[Any], parent: str, key: str, name: str, start: float) -> None:
    ids = {
        "part": sql.Identifier(name),
        "parent": sql.Identifier(parent),
        "default": sql.Identifier(f"{parent}_default"),
        "key": sql.Identifier(key),
    }
    bounds = {"lo": start, "hi": start + DAY}
    literal = {k: sql.Literal(v) for k, v in bounds.items()}
    try:
        tx.execute(sql.SQL(pq.LOCK_PARENT).format(**ids))
        tx.execute(sql.SQL(pq.NEW_DAY).format(**ids))
        tx.execute(sql.SQL(pq.ADOPT_DEFAULT_ROWS).format(**ids), bounds)
        tx.execute(sql.SQL(pq.ATTACH_DAY).format(**ids, **literal))
    except psycopg.errors.LockNotAvailable:
        raise _Busy from None


class _Busy(Exception):
    """A lock the statement needed was not free within LOCK_TIMEOUT."""


def drop_days(
    transaction: Transaction, candidates: list[Day], cursor: tuple[int, int] | None
) -> list[Day]:
    """Drop those of `candidates` (days the plan lets go by their age) that no stored task and
    no undelivered event needs, oldest first; returns the days dropped. `cursor`: the slowest
    event consumer's (xid, id), None without consumers."""
    dropped = []
    with transaction() as tx:
        free = [day for day in candidates if not _held(tx, day, cursor)]
    for day in free:
        try:
            with transaction() as tx:
                tx.execute(pq.LOCK_TIMEOUT)
                ids = {"part": sql.Identifier(day.name), "parent": sql.Identifier(day.parent)}
                try:
                    tx.execute(sql.SQL(pq.DETACH_DAY).format(**ids))
                except psycopg.errors.LockNotAvailable:
                    raise _Busy from None
                if _held(tx, day, cursor):  # a row came in before the lock: keep the day
                    raise _Held
                tx.execute(sql.SQL(pq.DROP_DAY).format(**ids))
            dropped.append(day)
        except _Busy:
            log.info("prune: %s busy, day %s dropped at a later run", day.parent, day.name)
        except _Held:
            pass
    if dropped:
        log.info("prune: dropped %s", ", ".join(d.name for d in dropped))
    return dropped


def _held(tx: psycopg.Connection[Any], day: Day, cursor: tuple[int, int] | None) -> bool:
    """Whether the day holds a stored task's row, or an undelivered event (or can't tell)."""
    part = {"part": sql.Identifier(day.name)}
    for query in (pq.HELD_BY_TASK, pq.STORED_AROUND):
        row = tx.execute(sql.SQL(query).format(**part), {"scan": SCAN}).fetchone()
        assert row is not None
        if row[0] is True or (row[0] is not False and int(row[0]) >= SCAN):
            return True
    if day.parent == "corral_events" and cursor is not None:
        params = {"cursor_xid": cursor[0], "cursor_id": cursor[1]}
        found = tx.execute(sql.SQL(pq.HELD_BY_CURSOR).format(**part), params).fetchone()
        return bool(found and found[0])
    return False
