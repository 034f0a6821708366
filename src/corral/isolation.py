"""Suspects, isolated runs and quarantine: who is to blame when a worker dies. Pure: no I/O.

A worker process that dies (a handler's `os._exit` or SIGKILL, a crash in an extension, the OOM
killer) takes every task it was running down with it, and the reaper finds them all by their
expired leases. The rows can't tell which of them killed it. So:

- A task lost while its worker was not running it alone is a *suspect*: its lost attempt does
  not count against its retries, and it goes back to ready.
- A suspect runs *isolated*: only a worker that runs nothing else claims it, and that worker
  claims nothing more until it ends. The attempt row records that it ran isolated.
- A lost isolated attempt names its culprit: it counts as a failure (against `max_retries`) and
  as an isolated crash. At `quarantine_after` isolated crashes, or when no retry is left, the task
  is dead: *quarantined*, with an error that says so.
- A suspect whose run ends any other way (any outcome but a release at shutdown) is cleared.

Isolation is a promise made at claim time, never a coincidence seen afterwards: a task that
happened to be alone on its worker when it was lost becomes a suspect like the others.

A suspect is never starved by busy workers. A worker learns once per heartbeat (one indexed read of
the admitted suspects, never per claim) whether a suspect of its pools has waited longer than the
*patience* (default two leases, so a worker that is idle anyway gets the first chance). If so it
takes that suspect's *drain mark* (a compare-and-set on the suspect's row, renewed each heartbeat,
lapsing a lease after its last renewal), claims nothing more until it has nothing running, then
claims with `may_take_suspect`. Whatever that claim returns ends the drain: the suspect (alone), or,
if another worker took it meanwhile, ordinary work. One mark per suspect and one per worker: the
workers draining at once are at most the overdue suspects.
"""

from __future__ import annotations

from dataclasses import dataclass

from .lifecycle import OnTimeout, Outcome, State, next_state

QUARANTINE_AFTER = 2
"""Isolated crashes (lost attempts while running alone) before a task is quarantined (dead)."""
SUSPECT_PATIENCE_LEASES = 2.0
"""A suspect admitted this many worker leases ago and still unclaimed makes a busy worker drain."""
QUARANTINED = "quarantined"
"""The event kind, and the start of the error, of a quarantined task."""
SUSPECT = "suspect"
"""The event kind of a task made (or kept) a suspect by a lost attempt."""


@dataclass(frozen=True)
class LostVerdict:
    """What a lost attempt does to its task."""

    target: State
    counts_as_failure: bool
    suspect: bool | None
    """The task's suspect mark from now on (None: unchanged)."""
    isolated_crashes: int
    flag: str | None
    """The event recorded beside the transition (`suspect`, `quarantined`), or None."""
    error: str


def lost_verdict(
    *,
    isolated: bool,
    failures_before: int,
    max_retries: int,
    on_timeout: OnTimeout,
    isolated_crashes_before: int,
    quarantine_after: int,
    cancel_requested: bool,
    worker_id: str | None,
) -> LostVerdict:
    """Where a task goes when the reaper finds its attempt lost (its lease expired).

    `isolated`: the attempt ran alone on its worker (it was claimed as a suspect).
    """
    lost = f"worker {worker_id} lost (lease expired)"
    if cancel_requested:
        return LostVerdict(State.CANCELLED, False, None, isolated_crashes_before, None, lost)
    if not isolated:
        error = f"{lost} while it was not running alone: a suspect, it runs alone next"
        return LostVerdict(State.READY, False, True, isolated_crashes_before, SUSPECT, error)
    crashes = isolated_crashes_before + 1
    target = next_state(
        "lost", failures_before=failures_before, max_retries=max_retries, on_timeout=on_timeout
    )
    if crashes >= quarantine_after or target == State.DEAD:
        times = "1 time" if crashes == 1 else f"{crashes} times"
        why = "" if crashes >= quarantine_after else " (no retry left)"
        error = f"{QUARANTINED}: crashed its worker {times} while running alone{why}"
        return LostVerdict(State.DEAD, True, True, crashes, QUARANTINED, error)
    error = (
        f"{lost} while it ran alone: isolated crash {crashes} of {quarantine_after} before "
        "quarantine; it runs alone again"
    )
    return LostVerdict(State.READY, True, True, crashes, SUSPECT, error)


def suspect_after(outcome: Outcome) -> bool | None:
    """A task's suspect mark after a run its worker reported: cleared by any end (the run did
    not take its worker down), kept (None) by a release at shutdown, which proved nothing."""
    return None if outcome == "released" else False


def suspect_patience(lease: float, patience: float | None) -> float:
    """How long an admitted suspect waits for a worker that is idle anyway before a busy worker
    drains for it: `patience`, or `SUSPECT_PATIENCE_LEASES` leases when it is None."""
    return SUSPECT_PATIENCE_LEASES * lease if patience is None else patience


def drain_due(*, alone: bool) -> bool:
    """Whether a worker looks, at this heartbeat, for an overdue suspect to drain for: always,
    unless it runs a suspect alone (it then claims nothing, and is idle when that run ends)."""
    return not alone


@dataclass(frozen=True)
class ClaimPlan:
    """What a worker's next claim asks the store for."""

    limit: int
    may_take_suspect: bool


def claim_plan(*, free: int, busy: int, alone: bool, draining: bool, settled: bool) -> ClaimPlan:
    """The worker's next claim.

    `free`/`busy`: its free and used slots; `alone`: it runs a suspect isolated (so it claims
    nothing); `draining`: it holds a drain mark (so it claims nothing until it has nothing running
    and every ended run is reported, `settled`, so that the store's rows agree it is idle; then
    it claims with `may_take_suspect`). A claim with `draining` ends the drain, whatever it
    returns (see `corral.isolation`).
    """
    if alone or free <= 0:
        return ClaimPlan(0, False)
    if draining:
        return ClaimPlan(free, True) if busy == 0 and settled else ClaimPlan(0, False)
    return ClaimPlan(free, busy == 0)
