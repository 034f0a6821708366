"""The named SQL of paused groups on SQLite (store/contract/pauses.py). PostgreSQL's
(postgres/pause_queries.py) are these, with its parameter style."""

from __future__ import annotations

PAUSE = """
INSERT INTO corral_paused_groups (name, paused_at, paused_by, reason)
VALUES (:name, :paused_at, :paused_by, :reason)
ON CONFLICT (name) DO NOTHING
RETURNING name
"""
RESUME = "DELETE FROM corral_paused_groups WHERE name = :name RETURNING name"
# Every paused group (an operator's handful): the scheduler reads their names with each round's
# load.
PAUSED = "SELECT name, paused_at, paused_by, reason FROM corral_paused_groups ORDER BY name"
PAUSED_NAMES = "SELECT name FROM corral_paused_groups"
