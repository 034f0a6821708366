"""Pools and workers: each pool's unfinished tasks by state, the slots its live workers offer
and its recent queue waits; the live workers. Both span every group, so a scoped token can't
read them (403)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from ..auth import Principal
from ..deps import Reads, Viewer
from ..problems import Problem
from .groups import WaitsOut

router = APIRouter(tags=["pools"])


class PoolOut(BaseModel):
    name: str
    counts: dict[str, int]
    ready: int
    active: int
    workers: int
    capacity: int
    """The slots its live workers offer."""
    waits: WaitsOut


class WorkerOut(BaseModel):
    id: str
    hostname: str
    pid: int
    pools: list[str]
    concurrency: int
    running: int
    started_at: float
    heartbeat_at: float
    lease_expires_at: float


def _unscoped(principal: Principal) -> None:
    if principal.scope:
        raise Problem(403, "Forbidden", "pools and workers serve every group: a scoped token "
                      "can't read them")  # fmt: skip


@router.get("/pools", response_model=list[PoolOut])
def list_pools(principal: Viewer, reads: Reads) -> list[PoolOut]:
    """Every pool with unfinished tasks, live workers, or recent starts, by name."""
    _unscoped(principal)
    return [
        PoolOut(name=p.pool, counts=p.counts, ready=p.ready, active=p.active, workers=p.workers,
                capacity=p.capacity, waits=WaitsOut.of(p.waits))
        for p in reads.pools()
    ]  # fmt: skip


@router.get("/workers", response_model=list[WorkerOut])
def list_workers(principal: Viewer, reads: Reads) -> list[WorkerOut]:
    """The live workers."""
    _unscoped(principal)
    return [
        WorkerOut(id=w.id, hostname=w.hostname, pid=w.pid, pools=list(w.pools),
                  concurrency=w.concurrency, running=w.running, started_at=w.started_at,
                  heartbeat_at=w.heartbeat_at, lease_expires_at=w.lease_expires_at)
        for w in reads.workers()
    ]  # fmt: skip
