"""The named SQL of corral web's access store on PostgreSQL: SQLite's statements
(sqlite/access_queries.py) in psycopg's parameter style."""

from __future__ import annotations

import re

from ..sqlite import access_queries as lite


def _pg(sql: str) -> str:
    return re.sub(r"(?<!:):(\w+)", r"%(\1)s", sql)


TOKEN_FIELDS = lite.TOKEN_FIELDS
INSERT_TOKEN = _pg(lite.INSERT_TOKEN)
TOKEN_BY_PREFIX = _pg(lite.TOKEN_BY_PREFIX)
TOKENS = lite.TOKENS
REVOKE_TOKEN = _pg(lite.REVOKE_TOKEN)
TOUCH_TOKEN = _pg(lite.TOUCH_TOKEN).replace("%(now)s - 60", "%(now)s::float8 - 60")
INSERT_SECRET = _pg(lite.INSERT_SECRET)
SECRET = _pg(lite.SECRET)
INSERT_AUDIT = _pg(lite.INSERT_AUDIT)
AUDIT_PAGE = _pg(lite.AUDIT_PAGE)
