"""The named SQL of alerts on PostgreSQL (store/contract/alerts.py): SQLite's statements
(sqlite/alert_queries.py, each with its line of why) in psycopg's parameter style, without
SQLite's INDEXED BY (the planner picks the same partial indexes here)."""

from __future__ import annotations

import re

from ..sqlite import alert_queries as lite


def _pg(sql: str) -> str:
    sql = re.sub(r" INDEXED BY \w+", "", sql)
    return re.sub(r"(?<!:):(\w+)", r"%(\1)s", sql)


INCIDENT_FIELDS = lite.INCIDENT_FIELDS
NOTIFICATION_FIELDS = lite.NOTIFICATION_FIELDS
OPEN_INCIDENT = _pg(lite.OPEN_INCIDENT).replace(
    "%(state)s = 'firing'", "%(state)s::text = 'firing'"
)
FIRE_INCIDENT = _pg(lite.FIRE_INCIDENT)
NOTIFY_INCIDENT = _pg(lite.NOTIFY_INCIDENT)
RESOLVE_INCIDENT = _pg(lite.RESOLVE_INCIDENT)
INSERT_NOTIFICATION = _pg(lite.INSERT_NOTIFICATION)
SET_FLUSH = _pg(lite.SET_FLUSH)
CLOSE_GROUP = _pg(lite.CLOSE_GROUP)
FLUSHES = lite.FLUSHES
OPEN_INCIDENTS = lite.OPEN_INCIDENTS
INCIDENTS = _pg(lite.INCIDENTS)
INCIDENT = _pg(lite.INCIDENT)
SEEN = _pg(lite.SEEN)
NOTIFICATIONS = _pg(lite.NOTIFICATIONS)
DUE_NOTIFICATIONS = _pg(lite.DUE_NOTIFICATIONS)
NOTIFICATION_SENT = _pg(lite.NOTIFICATION_SENT)
NOTIFICATION_FAILED = _pg(lite.NOTIFICATION_FAILED)
SILENCE = _pg(lite.SILENCE)
SILENCES = _pg(lite.SILENCES)
FAILED_ATTEMPTS = _pg(lite.FAILED_ATTEMPTS)
OLDEST_READY = _pg(lite.OLDEST_READY)
