"""The prune batch both backends run: select what corral.retention's plan lets go, then delete it
with everything that hangs off it, in the caller's transaction. A backend gives its named
statements, the cursor parameters its candidate queries take and how it passes a list."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

from ..retention import PrunePlan

DELETES = (
    "PRUNE_CLEANUPS",
    "PRUNE_DEPS",
    "PRUNE_DEPENDENTS",
    "PRUNE_LINKS",
    "PRUNE_TASKS",
)
"""What hangs off a pruned task, deleted before the task itself, after its history (the backend's
`PRUNE_HISTORY`: its events, logs and attempts; PostgreSQL's leave the days it will drop). Its
clean-ups that ended go; one still pending or running stays, to run from its own row."""


def prune_batch(
    tx: Any,
    rq: ModuleType,
    plan: PrunePlan,
    common: dict[str, Any],
    as_list: Callable[[list[Any]], Any],
) -> int:
    """Prune up to `plan.batch` tasks, per-type retentions first, then the default; returns how
    many went. `tx` is the backend's connection in a transaction (DB-API `execute`)."""
    rows: list[Any] = []
    for name, cutoff in plan.per_type.items():
        left = plan.batch - len(rows)
        if left <= 0:
            break
        params = {**common, "name": name, "cutoff": cutoff, "limit": left}
        rows += tx.execute(rq.PRUNABLE_OF_TYPE, params).fetchall()
    left = plan.batch - len(rows)
    if left > 0:
        params = {
            **common,
            "own": as_list(sorted(plan.per_type)),
            "cutoff": plan.default_cutoff,
            "limit": left,
        }
        rows += tx.execute(rq.PRUNABLE_DEFAULT, params).fetchall()
    if not rows:
        return 0
    ids = as_list([r[0] for r in rows])
    linked = [r[0] for r in tx.execute(rq.LINKED_WORKFLOWS, {"ids": ids}).fetchall()]
    for history in rq.PRUNE_HISTORY:
        tx.execute(history, {**common, "ids": ids})
    for statement in DELETES:
        tx.execute(getattr(rq, statement), {"ids": ids})
    tx.execute(rq.PRUNE_SUBMITS, {"times": as_list(sorted({r[2] for r in rows}))})
    workflows = as_list(sorted({r[1] for r in rows if r[1] is not None} | set(linked)))
    tx.execute(rq.PRUNE_EMPTY_WORKFLOW_LINKS, {"ids": workflows})
    tx.execute(rq.PRUNE_EMPTY_WORKFLOWS, {"ids": workflows})
    return len(rows)


def prune_fires(
    tx: Any, rq: ModuleType, plan: PrunePlan, as_list: Callable[[list[Any]], Any]
) -> int:
    """Prune up to `plan.batch` schedule fires that corral.retention's rule lets go, then up to
    `plan.batch` ended backfills left with no fire; returns how many rows went (both kinds)."""
    params = {"cutoff": plan.default_cutoff, "limit": plan.batch}
    fires = [r[0] for r in tx.execute(rq.PRUNABLE_FIRES, params).fetchall()]
    if fires:
        tx.execute(rq.PRUNE_FIRES, {"ids": as_list(fires)})
    backfills = [r[0] for r in tx.execute(rq.PRUNABLE_BACKFILLS, params).fetchall()]
    if backfills:
        tx.execute(rq.PRUNE_BACKFILLS, {"ids": as_list(backfills)})
    return len(fires) + len(backfills)
