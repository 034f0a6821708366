"""A stateful property test of the task lifecycle against the real store.

Hypothesis drives random sequences of submits (dedup keys, delays, dependencies), resolver and
dispatcher rounds, direct admissions, claims (by idle and busy workers, so suspects are claimed
alone), completions with random outcomes, stale reports, checkpoints, cancels, retries,
heartbeats, lease expiries and clean-ups (tasks of a type with one: their bad ends leave a
clean-up that holds the next attempt until it ended; the clock is moved, never slept).
After every step the store is checked against what the machine observed so far.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from conftest import T0, Databases, new_task, register_worker
from hypothesis import Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from corral.cleanup import held_target, reason_for
from corral.errors import TransitionRefused
from corral.isolation import lost_verdict, suspect_after
from corral.lifecycle import (
    CANCELLABLE_AT_ONCE,
    TERMINAL,
    Outcome,
    State,
    counts_as_failure,
    is_allowed,
    next_state,
)
from corral.model import AttemptReport, TaskQuery, TaskRecord
from corral.scheduler.dispatcher import dispatch
from corral.scheduler.reaper import rescue_expired
from corral.scheduler.resolver import resolve_due
from corral.store import Store
from corral.store.contract import (
    AdmitParams,
    CancelParams,
    CheckpointParams,
    ClaimParams,
    CleanupClaimParams,
    CleanupEndParams,
    CompleteParams,
    InsertParams,
    RetryParams,
    SharedParams,
)
from corral.worker.renewal import renew_worker

KEYS = (None, "a", "b", "c")
WORKERS = ("w1", "w2")
LEASE = 10.0
OUTCOMES: tuple[Outcome, ...] = ("succeeded", "failed", "timed_out", "cancelled", "released")
RETRYABLE = (State.DEAD, State.CANCELLED, State.UPSTREAM_FAILED)
picks = st.integers(min_value=0, max_value=10_000)

task_specs = st.fixed_dictionaries(
    {
        "key": st.sampled_from(KEYS),
        "delay": st.sampled_from([0.0, 0.0, 0.0, 5.0, 30.0]),
        "max_retries": st.integers(0, 2),
        "on_timeout": st.sampled_from(["retry", "fail", "continue"]),
        "dep": st.sampled_from([None, None, None, None, 0, 1, 2]),
        "cleanup": st.booleans(),
    }
)


def has(*states: State) -> Callable[[LifecycleMachine], bool]:
    """A precondition: some task was last seen in one of `states` (any task when none given)."""
    return lambda self: any(not states or s in states for s in self.states.values())


class LifecycleMachine(RuleBasedStateMachine):
    make_store: Callable[[], Store]

    def __init__(self) -> None:
        super().__init__()
        self.store = self.make_store()
        self.now = T0
        self.ids: list[int] = []
        self.leases: dict[int, float] = {}  # running task -> lease expiry, as the model sees it
        self.outcomes: dict[tuple[int, int], str] = {}  # (task, attempt) -> recorded outcome
        self.attempts: dict[int, int] = {}
        self.states: dict[int, State] = {}
        self.event_states: dict[int, State] = {}  # each task's state as its events tell it
        self.cursor = 0
        self.retried: set[int] = set()
        self.with_cleanup: set[int] = set()  # tasks of a type with a clean-up
        self.unheld: set[int] = set()  # retried by hand while a clean-up was due: not held
        self._register_workers()

    def teardown(self) -> None:
        try:
            for record in self._records().values():
                self._check_attempts(record)
        finally:
            self.store.close()

    # -- helpers ---------------------------------------------------------------------------------
    def _register_workers(self) -> None:
        for worker in WORKERS:
            register_worker(self.store, worker, now=self.now, concurrency=2, lease=1000)

    def _records(self) -> dict[int, TaskRecord]:
        return {t.id: t for t in self.store.task_list(TaskQuery(limit=100_000))}

    def _get(self, task_id: int) -> TaskRecord:
        record = self.store.task_get(task_id)
        assert record is not None
        return record

    def _pick(self, pick: int, states: tuple[State, ...] = ()) -> TaskRecord | None:
        records = [r for r in self._records().values() if not states or r.state in states]
        if not records:
            return None
        records.sort(key=lambda r: r.id)
        return self._get(records[pick % len(records)].id)

    # -- submit and the clock --------------------------------------------------------------------
    @rule(specs=st.lists(task_specs, min_size=1, max_size=3))
    def submit(self, specs: list[dict[str, Any]]) -> None:
        holders = {
            r.dedup_key: r.id
            for r in self._records().values()
            if r.dedup_key is not None and r.state not in TERMINAL
        }
        tasks = []
        for spec in specs:
            deps = (
                ()
                if spec["dep"] is None or not self.ids
                else (self.ids[spec["dep"] % len(self.ids)],)
            )
            tasks.append(
                new_task(
                    dedup_key=spec["key"],
                    run_at=self.now + spec["delay"] if spec["delay"] else None,
                    max_retries=spec["max_retries"],
                    on_timeout=spec["on_timeout"],
                    max_runtime=5.0,
                    depends_on=deps,
                    cleanup=spec["cleanup"],
                )
            )
        results = self.store.task_insert_many(InsertParams(tasks, self.now))
        assert len(results) == len(tasks)
        for task, result in zip(tasks, results, strict=True):
            key = task.dedup_key
            if key is not None and key in holders:
                assert (result.id, result.created) == (holders[key], False)
                continue
            assert result.created and result.id not in self.ids
            self.ids.append(result.id)
            if task.cleanup:
                self.with_cleanup.add(result.id)
            if key is not None:
                holders[key] = result.id
            expected = State.WAITING if task.run_at or task.depends_on else State.READY
            assert self._get(result.id).state == expected

    @rule(seconds=st.sampled_from([0.5, 3.0, 11.0, 40.0]))
    def advance_clock(self, seconds: float) -> None:
        self.now += seconds

    # -- scheduler services ----------------------------------------------------------------------
    @precondition(has(State.WAITING, State.RETRY_WAIT))
    @rule()
    def resolve(self) -> None:
        resolve_due(self.store, self.now)
        records = self._records()
        for record in records.values():
            if record.state == State.RETRY_WAIT and record.run_at is None:
                assert (record.id, record.attempt) in self._unfinished_cleanups()  # held
            elif record.state == State.RETRY_WAIT:
                assert record.run_at is not None and record.run_at > self.now
            if record.state == State.WAITING:
                deps_done = all(records[d].state == State.SUCCEEDED for d in self._deps(record))
                assert not (deps_done and (record.run_at or 0) <= self.now), record

    def _deps(self, record: TaskRecord) -> tuple[int, ...]:
        return self._get(record.id).depends_on  # task_list leaves depends_on out

    @precondition(has(State.READY))
    @rule(prefetch=st.integers(0, 2))
    def dispatch(self, prefetch: int) -> None:
        self._register_workers()
        before = self._records()
        admitted = dispatch(self.store, self.now, prefetch)
        after = self._records()
        moved = [
            i for i in after if before[i].state == State.READY and after[i].state != State.READY
        ]
        assert admitted == len(moved)
        assert all(after[i].state == State.ADMITTED for i in moved)
        active = sum(1 for r in after.values() if r.state in (State.ADMITTED, State.RUNNING))
        if admitted:
            assert active <= 2 * len(WORKERS) + prefetch

    @precondition(has())
    @rule(chosen=st.lists(picks, min_size=1, max_size=4))
    def admit_directly(self, chosen: list[int]) -> None:
        if not self.ids:
            return
        ids = [self.ids[p % len(self.ids)] for p in chosen]
        before = self._records()
        expected: list[int] = []
        for task_id in ids:
            if before[task_id].state == State.READY and task_id not in expected:
                expected.append(task_id)
        assert self.store.task_admit_many(AdmitParams(ids, self.now)) == expected

    @precondition(has(State.RUNNING))
    @rule()
    def reap(self) -> None:
        before = self._records()
        expired = {
            i for i, r in before.items() if r.state == State.RUNNING and self.leases[i] < self.now
        }
        assert rescue_expired(self.store, self.now) == len(expired)
        for task_id in expired:
            old = before[task_id]
            record = self._get(task_id)
            attempt = self.store.attempt_list(task_id)[-1]
            assert attempt.isolated == old.suspect  # a suspect only ever runs alone
            verdict = lost_verdict(
                isolated=attempt.isolated,
                failures_before=old.failures,
                max_retries=old.max_retries,
                on_timeout=old.on_timeout,  # type: ignore[arg-type]
                isolated_crashes_before=old.isolated_crashes,
                quarantine_after=old.quarantine_after,
                cancel_requested=old.cancel_requested,
                worker_id=old.worker_id,
            )
            held = task_id in self.with_cleanup
            assert record.state == (held_target(verdict.target) if held else verdict.target)
            assert ((task_id, old.attempt) in self._unfinished_cleanups()) == held
            if old.cancel_requested:
                assert record.state == State.CANCELLED
            elif not attempt.isolated:  # lost beside others: a suspect, the loss not counted
                assert (record.state, record.failures, record.suspect) == (
                    State.RETRY_WAIT if held else State.READY,
                    old.failures,
                    True,
                )
            else:  # lost alone: counted, and quarantined at the limit
                assert record.failures == old.failures + 1
                assert record.isolated_crashes == old.isolated_crashes + 1
                assert (record.state == State.DEAD) == (
                    record.isolated_crashes >= old.quarantine_after
                    or next_state(
                        "lost",
                        failures_before=old.failures,
                        max_retries=old.max_retries,
                        on_timeout=old.on_timeout,  # type: ignore[arg-type]
                    )
                    == State.DEAD
                )
                if record.state == State.DEAD:
                    assert (record.error or "").startswith("quarantined: crashed its worker")
            assert attempt.outcome == "lost"
            del self.leases[task_id]
        after = self._records()
        for task_id, old in before.items():
            if task_id not in expired:
                assert after[task_id].state == old.state

    @precondition(has(State.RUNNING))
    @rule()
    def lose_workers(self) -> None:
        """Every worker dies: the leases run out and the reaper finds the attempts lost."""
        self.now += LEASE + 1
        self.reap()

    # -- worker ----------------------------------------------------------------------------------
    @precondition(has(State.ADMITTED))
    @rule(worker=st.sampled_from(WORKERS), limit=st.integers(1, 3), idle=st.booleans())
    def claim(self, worker: str, limit: int, idle: bool) -> None:
        """`idle`: the worker says it runs nothing (the store checks its rows too)."""
        before = self._records()
        admitted = {i for i, r in before.items() if r.state == State.ADMITTED}
        suspects = {i for i in admitted if before[i].suspect}
        mine = [r for r in before.values() if r.state == State.RUNNING and r.worker_id == worker]
        claimed = self.store.task_claim(
            ClaimParams(
                worker, ["default"], limit, self.now + LEASE, self.now, may_take_suspect=idle
            )
        )
        if idle and not mine and suspects:  # a suspect, alone
            assert len(claimed) == 1 and claimed[0].id in suspects and claimed[0].isolated
        elif any(r.suspect for r in mine):  # the worker runs a suspect: nothing beside it
            assert claimed == []
        else:  # suspects never block the others
            assert len(claimed) == min(limit, len(admitted - suspects))
            assert not any(task.isolated or task.id in suspects for task in claimed)
        for task in claimed:
            assert task.id in admitted
            assert task.attempt == before[task.id].attempt + 1
            assert task.failures == before[task.id].failures
            record = self._get(task.id)
            assert (record.state, record.worker_id, record.attempt) == (
                State.RUNNING,
                worker,
                task.attempt,
            )
            self.leases[task.id] = self.now + LEASE

    @precondition(has(State.RUNNING))
    @rule(pick=picks, outcome=st.sampled_from(OUTCOMES), backoff=st.sampled_from([0.0, 2.0, 20.0]))
    def complete(self, pick: int, outcome: Outcome, backoff: float) -> None:
        old = self._pick(pick, (State.RUNNING,))
        if old is None:
            return
        on_timeout = old.on_timeout
        target = next_state(
            outcome,
            failures_before=old.failures,
            max_retries=old.max_retries,
            on_timeout=on_timeout,  # type: ignore[arg-type]
        )
        failure = counts_as_failure(outcome, on_timeout)  # type: ignore[arg-type]
        # As the worker: a time slice (timed_out with "continue") is no bad end.
        sliced = outcome == "timed_out" and on_timeout == "continue"
        reason = reason_for(outcome) if old.id in self.with_cleanup and not sliced else None
        report = AttemptReport(
            task_id=old.id,
            attempt=old.attempt,
            outcome=outcome,
            target=target,
            counts_as_failure=failure,
            worker_id=old.worker_id,
            result="42" if outcome == "succeeded" else None,
            error=None if outcome == "succeeded" else f"{outcome} on attempt {old.attempt}",
            traceback="Traceback: ..." if outcome == "failed" else None,
            retry_at=self.now + backoff if target == State.RETRY_WAIT else None,
            suspect=suspect_after(outcome),
            cleanup=reason,
        )
        assert self.store.task_complete_many(CompleteParams([report], self.now)) == [old.id]
        record = self._get(old.id)
        assert record.state == target
        assert record.suspect == (old.suspect and outcome == "released")
        assert record.failures == old.failures + int(failure)
        assert record.worker_id is None
        assert ((old.id, old.attempt) in self._unfinished_cleanups()) == (reason is not None)
        if target == State.RETRY_WAIT:
            assert record.run_at == (None if reason else self.now + backoff)  # held
        if target in TERMINAL:
            assert record.finished_at == self.now
        attempt = self.store.attempt_list(old.id)[-1]
        assert (attempt.attempt, attempt.outcome) == (old.attempt, outcome)
        del self.leases[old.id]

    @precondition(lambda self: any(self.attempts.values()))
    @rule(pick=picks, how=st.sampled_from(["old_attempt", "wrong_worker", "ended"]))
    def complete_stale(self, pick: int, how: str) -> None:
        """A report that must be refused: an attempt that isn't the running one, or a worker that
        no longer holds the task."""
        old = self._pick(pick)
        if old is None or old.attempt == 0:
            return
        attempts = self.store.attempt_list(old.id)
        if how == "ended" and old.state != State.RUNNING:
            attempt, worker = old.attempt, attempts[-1].worker_id
        elif how == "old_attempt" or old.state != State.RUNNING:
            attempt = old.attempt - 1
            worker = attempts[attempt - 1].worker_id if attempt >= 1 else "w1"
        else:
            attempt, worker = old.attempt, "intruder"
        reports = [
            AttemptReport(old.id, attempt, outcome, target, worker_id=worker)
            for outcome, target in (("succeeded", State.SUCCEEDED), ("failed", State.DEAD))
        ]
        assert self.store.task_complete_many(CompleteParams(reports, self.now)) == []
        record = self._get(old.id)
        assert record == old
        assert self.store.attempt_list(old.id) == attempts

    @precondition(has())
    @rule(pick=picks, stale=st.booleans(), value=st.integers(0, 100))
    def save_checkpoint(self, pick: int, stale: bool, value: int) -> None:
        old = self._pick(pick)
        if old is None:
            return
        attempt = old.attempt - 1 if stale else old.attempt
        saved = self.store.task_save_checkpoint(
            CheckpointParams(old.id, attempt, str(value), self.now)
        )
        shared = self.store.task_save_shared(
            SharedParams(old.id, attempt, f'{{"v":{value}}}', self.now)
        )
        allowed = old.state == State.RUNNING and not stale
        assert saved is allowed and shared is allowed
        record = self._get(old.id)
        assert record.checkpoint == (str(value) if allowed else old.checkpoint)
        assert record.shared == (f'{{"v":{value}}}' if allowed else old.shared)

    @precondition(has(State.RUNNING))
    @rule(worker=st.sampled_from(WORKERS))
    def heartbeat(self, worker: str) -> None:
        records = self._records()
        mine = [i for i, r in records.items() if r.state == State.RUNNING and r.worker_id == worker]
        expected = {i for i in mine if records[i].cancel_requested}
        assert set(renew_worker(self.store, worker, self.now + LEASE, self.now)) == expected
        for task_id in mine:
            self.leases[task_id] = self.now + LEASE

    # -- operators -------------------------------------------------------------------------------
    @precondition(has())
    @rule(pick=picks)
    def cancel(self, pick: int) -> None:
        old = self._pick(pick)
        if old is None:
            return
        if old.state in TERMINAL:
            with pytest.raises(TransitionRefused):
                self.store.task_cancel(CancelParams(old.id, self.now))
            assert self._get(old.id) == old
            return
        before, after = self.store.task_cancel(CancelParams(old.id, self.now))
        assert before == old.state
        record = self._get(old.id)
        if old.state in CANCELLABLE_AT_ONCE:
            assert after == State.CANCELLED and record.state == State.CANCELLED
        else:
            assert after is None
            assert record.state == State.RUNNING and record.cancel_requested

    @precondition(has(*TERMINAL))
    @rule(pick=picks)
    def retry(self, pick: int) -> None:
        old = self._pick(pick)
        if old is None:
            return
        records = self._records()
        key_taken = old.dedup_key is not None and any(
            r.dedup_key == old.dedup_key and r.state not in TERMINAL for r in records.values()
        )
        if old.state not in RETRYABLE or key_taken:
            with pytest.raises(TransitionRefused):
                self.store.task_retry(RetryParams(old.id, self.now))
            assert self._get(old.id) == old
            return
        assert self.store.task_retry(RetryParams(old.id, self.now)) == old.state
        if any(t == old.id for t, _ in self._unfinished_cleanups()):
            self.unheld.add(old.id)  # a manual retry does not wait for a clean-up (a limit)
        record = self._get(old.id)
        assert (record.state, record.failures, record.attempt) == (State.READY, 0, old.attempt)
        self.retried.add(old.id)

    # -- clean-ups -------------------------------------------------------------------------------
    def _unfinished_cleanups(self) -> set[tuple[int, int]]:
        return {(c.task_id, c.attempt) for c in self.store.cleanup_unfinished(100_000)}

    @rule(worker=st.sampled_from(WORKERS), end=st.sampled_from(["succeeded", "failed", "pending"]))
    def run_cleanup(self, worker: str, end: str) -> None:
        claim = CleanupClaimParams(worker, ["job"], 1, self.now + 5, self.now)
        claimed = self.store.cleanup_claim(claim)
        if not claimed:
            return
        (job,) = claimed
        before = self._get(job.task_id)
        ended = CleanupEndParams(job.id, worker, end, None if end == "succeeded" else "boom",  # type: ignore[arg-type]
                                 self.now, self.now + 3 if end == "pending" else None)  # fmt: skip
        assert self.store.cleanup_end(ended)
        after = self._get(job.task_id)
        held = before.state == State.RETRY_WAIT and before.run_at is None
        if held and before.attempt != job.attempt:
            # An older attempt's clean-up: only a manual retry lets a later attempt start before
            # it ended. The task stays held for its own attempt's clean-up.
            assert job.task_id in self.unheld and job.attempt < before.attempt
            assert after.run_at is None
        elif end != "pending" and held:
            assert after.run_at is not None  # released: its retry is due again
        else:
            assert after.run_at == before.run_at

    # -- invariants ------------------------------------------------------------------------------
    @invariant()
    def a_retry_never_starts_before_its_clean_up_ended(self) -> None:
        due = self._unfinished_cleanups()
        for record in self._records().values():
            if record.id in self.unheld or not any(t == record.id for t, _ in due):
                continue
            # Held in retry_wait, or ended (a terminal task's clean-up runs after its end).
            assert record.state == State.RETRY_WAIT or record.state in TERMINAL, record
            if record.state == State.RETRY_WAIT:
                assert record.run_at is None

    @invariant()
    def store_matches_the_model(self) -> None:
        records = self._records()
        assert sorted(records) == sorted(self.ids)
        touched = self._check_events()
        for task_id, record in records.items():
            assert isinstance(record.state, State)
            assert self.event_states[task_id] == record.state
            previous = self.states.get(task_id)
            if previous in TERMINAL and record.state != previous:
                assert task_id in self.retried and record.state == State.READY
            assert record.attempt >= self.attempts.get(task_id, 0)
            if task_id in touched or record.attempt != self.attempts.get(task_id):
                self._check_attempts(record)  # every task's are checked again at the end
            self.attempts[task_id] = record.attempt
            self.states[task_id] = record.state
        unfinished = Counter(
            r.dedup_key for r in records.values() if r.dedup_key and r.state not in TERMINAL
        )
        assert all(n == 1 for n in unfinished.values()), unfinished
        assert set(self.leases) == {i for i, r in records.items() if r.state == State.RUNNING}
        running = Counter(r.worker_id for r in records.values() if r.state == State.RUNNING)
        for record in records.values():  # a running suspect runs alone on its worker
            if record.state == State.RUNNING and record.suspect:
                assert running[record.worker_id] == 1, record
        self.retried.clear()

    def _check_events(self) -> set[int]:
        """Each new event is an allowed transition from the state its task was in; returns the
        tasks that changed."""
        touched = set()
        for event in self.store.event_fetch_after(self.cursor, 100_000):
            assert event.id > self.cursor
            self.cursor = event.id
            touched.add(event.task_id)
            if event.kind == "submitted":
                assert event.from_state is None and event.task_id not in self.event_states
                self.event_states[event.task_id] = State(event.to_state)
            elif event.kind in ("cleanup_succeeded", "cleanup_failed"):
                assert event.from_state is None and event.to_state is None
            elif event.kind in ("cancel_requested", "suspect", "quarantined"):
                assert event.to_state is None
                assert State(event.from_state) == self.event_states[event.task_id]
            else:
                source, target = State(event.from_state), State(event.to_state)
                assert is_allowed(source, target), event
                assert self.event_states[event.task_id] == source, event
                self.event_states[event.task_id] = target
        return touched

    def _check_attempts(self, record: TaskRecord) -> None:
        attempts = self.store.attempt_list(record.id)
        assert [a.attempt for a in attempts] == list(range(1, record.attempt + 1))
        for attempt in attempts:
            key = (record.id, attempt.attempt)
            if attempt.outcome is None:  # only the running attempt is open
                assert key not in self.outcomes
                assert record.state == State.RUNNING and attempt.attempt == record.attempt
            else:
                assert self.outcomes.setdefault(key, attempt.outcome) == attempt.outcome
        if record.state == State.RUNNING:
            assert attempts[-1].outcome is None and record.worker_id is not None


EXAMPLES = {"sqlite": 100, "postgres": 25}  # a fresh PostgreSQL database per example costs more
# Shrinking replays hundreds of examples: quick on SQLite, minutes on PostgreSQL, where a failure
# is reported as found instead.
PHASES = {
    "sqlite": tuple(Phase),
    "postgres": (Phase.explicit, Phase.reuse, Phase.generate),
}


def test_lifecycle_state_machine(databases: Databases) -> None:
    machine = type(
        "Lifecycle", (LifecycleMachine,), {"make_store": staticmethod(databases.new_store)}
    )
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=EXAMPLES[databases.backend],
            stateful_step_count=60,
            deadline=None,
            phases=PHASES[databases.backend],
        ),
    )
