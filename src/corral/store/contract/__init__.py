"""The Store contract, split by role: transitions (tasks, workflows, settings), reads,
coordination (one lease primitive), clean-ups, notifications and schema. `Store` is their union:
what a backend implements. Names read entity first, then verb, so the list follows the lifecycle.

`now` is always the caller's: a store never reads the clock, so tests move time instead of
sleeping. Callers take it from the one clock the store offers (`clock()`, see corral.clock).
A store knows SQL and nothing of scheduling: policies live in the scheduler and the rule
modules (corral.lifecycle, corral.moves), and reach the store as decided values.
"""

from __future__ import annotations

from typing import Protocol

from ..readside_contract import ReadSide
from .access import AccessStore
from .alerts import AlertStore
from .bulk import BulkOutcome, BulkParams, BulkTransitions
from .cleanups import CleanupClaimParams, CleanupEndParams, Cleanups
from .coordination import ConsumerLeaseShims, Coordination, Lease, LeaseKind
from .lanes import FastLanes
from .notifications import SCHEDULER_CHANNEL, WORKERS_CHANNEL, Listener, Notifications
from .params import (
    AdmitParams,
    CancelParams,
    CheckpointParams,
    ClaimParams,
    CompleteParams,
    DrainParams,
    DueParams,
    EventParams,
    InsertParams,
    LevelParams,
    RetryParams,
    SharedParams,
    WorkflowCancelParams,
    WorkflowInsertParams,
)
from .pauses import GroupPauses, PausedGroup
from .reads import DispatchReads, HistoryReads, Reads, TaskReads
from .schedules import ScheduleStore
from .schema import SchemaStore
from .transaction import JoinedTransaction, join
from .transitions import SettingTransitions, TaskTransitions, Transitions, WorkflowTransitions
from .upkeep import TableUpkeep


class Store(
    Transitions,
    BulkTransitions,
    Reads,
    ReadSide,
    Coordination,
    Cleanups,
    Notifications,
    SchemaStore,
    ScheduleStore,
    AlertStore,
    AccessStore,
    GroupPauses,
    FastLanes,
    TableUpkeep,
    Protocol,
):
    """Everything a backend implements."""


__all__ = [
    "SCHEDULER_CHANNEL",
    "WORKERS_CHANNEL",
    "AccessStore",
    "AdmitParams",
    "AlertStore",
    "BulkOutcome",
    "BulkParams",
    "BulkTransitions",
    "CancelParams",
    "CheckpointParams",
    "ClaimParams",
    "CleanupClaimParams",
    "CleanupEndParams",
    "Cleanups",
    "CompleteParams",
    "ConsumerLeaseShims",
    "Coordination",
    "DispatchReads",
    "DrainParams",
    "DueParams",
    "EventParams",
    "FastLanes",
    "GroupPauses",
    "HistoryReads",
    "InsertParams",
    "JoinedTransaction",
    "Lease",
    "LeaseKind",
    "LevelParams",
    "Listener",
    "Notifications",
    "PausedGroup",
    "ReadSide",
    "Reads",
    "RetryParams",
    "ScheduleStore",
    "SchemaStore",
    "SettingTransitions",
    "SharedParams",
    "Store",
    "TableUpkeep",
    "TaskReads",
    "TaskTransitions",
    "Transitions",
    "WorkflowCancelParams",
    "WorkflowInsertParams",
    "WorkflowTransitions",
    "join",
]
