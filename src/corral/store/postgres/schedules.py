"""PostgreSQL's hooks of the schedule store (written once in store/schedules.py): a fire batch's
transaction is durable, a list parameter is an array, a workflow's links are one insert."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

import psycopg

from ..schedules import NamedSchedules
from . import queries as q
from . import schedule_queries


class PostgresSchedules(NamedSchedules["psycopg.Connection[Any]"]):
    """Mixed into PostgresStore."""

    schedule_queries = schedule_queries

    def _tx(self, durable: bool = False) -> AbstractContextManager[psycopg.Connection[Any]]:
        raise NotImplementedError

    def _schedule_tx(
        self, durable: bool = False
    ) -> AbstractContextManager[psycopg.Connection[Any]]:
        return self._tx(durable=durable)

    def _list_param(self, values: Sequence[str]) -> list[str]:
        return list(values)

    def _link_workflow(
        self, tx: psycopg.Connection[Any], workflow_id: int, task_ids: list[int]
    ) -> None:
        if task_ids:
            tx.execute(q.INSERT_WORKFLOW_LINKS, {"id": workflow_id, "task_ids": task_ids})
