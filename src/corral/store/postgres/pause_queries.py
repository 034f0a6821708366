"""The named SQL of paused groups on PostgreSQL: SQLite's statements (sqlite/pause_queries.py)
in psycopg's parameter style."""

from __future__ import annotations

import re

from ..sqlite import pause_queries as lite


def _pg(sql: str) -> str:
    return re.sub(r"(?<!:):(\w+)", r"%(\1)s", sql)


PAUSE = _pg(lite.PAUSE)
RESUME = _pg(lite.RESUME)
PAUSED = lite.PAUSED
PAUSED_NAMES = lite.PAUSED_NAMES
