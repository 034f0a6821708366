"""Run one handler call under an executor kind, with a time limit and cancellation.

`async` handlers run as asyncio tasks, `thread` handlers in a pooled daemon thread (stopped by an
injected asynchronous exception), `process` handlers in a forked child (stopped by SIGKILL) that
reports checkpoints, shared values, log lines and its result as JSON over a pipe.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import inspect
import json
import logging
import os
import queue
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from .. import interrupts
from ..context import Context
from ..errors import ConfigError, PayloadError, TaskCancelled, TaskTimeout
from ..registry import ExecutorKind

if TYPE_CHECKING:  # a process run's needs, imported by it (start-up: issue 15)
    from multiprocessing.connection import Connection

Outcome = Literal["succeeded", "failed", "timed_out", "cancelled"]
Message = dict[str, Any]
_READ_BATCH = 100
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_CONTEXT_FIELDS = ("task_id", "task_name", "attempt", "group", "args", "kwargs", "checkpoint",
                   "shared", "dedup_key", "deadline", "logical_time", "data_interval")  # fmt: skip


@dataclass(frozen=True)
class RunResult:
    outcome: Outcome
    value: Any = None
    """The handler's return value when succeeded (process: already JSON round-tripped)."""
    error: str | None = None
    """"ExceptionType: message" when failed, timed_out or cancelled."""
    traceback: str | None = None
    """The formatted traceback when failed."""


async def execute(
    kind: ExecutorKind,
    fn: Callable[..., Any],
    ctx: Context,
    args: list[Any],
    kwargs: dict[str, Any],
    *,
    timeout: float | None,
    grace: float = 1.0,
) -> RunResult:
    """Call `fn(ctx, *args, **kwargs)` under `kind`; stop it at `timeout` seconds (None: never) or
    when `ctx.request_cancel()` is called, giving it `grace` seconds to stop by itself first."""
    if kind not in ("async", "thread", "process"):
        raise ConfigError(f"unknown executor kind {kind!r}: use 'async', 'thread' or 'process'")
    if ctx.cancelled:
        return _stopped("cancelled", ctx, timeout)
    run = {"async": _run_async, "thread": _run_thread, "process": _run_process}[kind]
    return await run(_Call(fn, ctx, args, kwargs), timeout, grace)


# --- helpers shared by the three kinds -------------------------------------------------------


@dataclass(frozen=True)
class _Call:
    """One handler call: `fn(ctx, *args, **kwargs)`."""

    fn: Callable[..., Any]
    ctx: Context
    args: list[Any]
    kwargs: dict[str, Any]

    def __call__(self) -> Any:
        return self.fn(self.ctx, *self.args, **self.kwargs)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _from_exception(exc: BaseException) -> RunResult:
    """The result of a handler that raised `exc`."""
    if isinstance(exc, TaskCancelled):
        return RunResult("cancelled", error=_describe(exc))
    if isinstance(exc, TaskTimeout):
        return RunResult("timed_out", error=_describe(exc))
    tb = "".join(traceback.format_exception(exc))
    return RunResult("failed", error=_describe(exc), traceback=tb)


def _stopped(outcome: Outcome, ctx: Context, timeout: float | None, note: str = "") -> RunResult:
    """The result of a handler that we stopped (or gave up on) at its deadline or on cancel."""
    if outcome == "timed_out":
        error = f"TaskTimeout: task {ctx.task_id} exceeded its time limit of {timeout:g}s"
    else:
        error = f"TaskCancelled: task {ctx.task_id} was cancelled"
    return RunResult(outcome, error=error + note)


def _cancel_future(ctx: Context, loop: asyncio.AbstractEventLoop) -> asyncio.Future[None]:
    """A future of `loop` that completes when cancel is requested, from whichever thread."""
    future: asyncio.Future[None] = loop.create_future()

    def on_loop() -> None:
        if not future.done():
            future.set_result(None)

    def listener() -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: this run is long over
            loop.call_soon_threadsafe(on_loop)

    ctx.add_cancel_listener(listener)
    return future


async def _wait_any(futures: set[asyncio.Future[Any]], timeout: float | None) -> bool:
    """Wait up to `timeout` seconds for one of `futures`; whether one is done."""
    done, _ = await asyncio.wait(futures, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    return bool(done)


# --- async ------------------------------------------------------------------------------------


async def _run_async(call: _Call, timeout: float | None, grace: float) -> RunResult:
    try:
        awaitable = call()
        if not inspect.isawaitable(awaitable):
            raise TypeError(f"async handler {call.ctx.task_name!r} is not a coroutine function")
    except Exception as exc:
        return _from_exception(exc)
    task: asyncio.Future[Any] = asyncio.ensure_future(awaitable)
    task.add_done_callback(lambda t: t.cancelled() or t.exception())  # never "not retrieved"
    cancel = _cancel_future(call.ctx, asyncio.get_running_loop())
    try:
        await _wait_any({task, cancel}, timeout)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if task.done():
        if task.cancelled():
            return _stopped("cancelled", call.ctx, timeout)
        error = task.exception()
        return (
            RunResult("succeeded", value=task.result()) if error is None else _from_exception(error)
        )
    outcome: Outcome = "cancelled" if cancel.done() else "timed_out"
    task.cancel()
    stuck = not await _wait_any({task}, grace)
    note = "; it ignored cancellation and was abandoned" if stuck else ""
    return _stopped(outcome, call.ctx, timeout, note)


# --- thread -----------------------------------------------------------------------------------


class _HandlerThreads:
    """Reusable daemon threads for thread handlers. Starting a thread per task would make the
    event loop wait for each new thread to come up; here work is handed over through a queue, and
    a thread is added only when all are busy (one stuck in C code just stays busy). Threads idle
    for `idle_timeout` seconds exit. One per process: threads are a process resource."""

    def __init__(self, idle_timeout: float = 30.0) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._unreserved_idle = 0
        self._idle_timeout = idle_timeout

    def submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            grow = self._unreserved_idle == 0
            if not grow:
                self._unreserved_idle -= 1  # an idle thread will take this job
        self._jobs.put(job)
        if grow:
            threading.Thread(target=self._serve, name="corral-handler", daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                job = self._jobs.get(timeout=self._idle_timeout)
            except queue.Empty:
                with self._lock:
                    if self._unreserved_idle > 0:  # no job is on its way to this thread
                        self._unreserved_idle -= 1
                        return
                continue
            job()
            with self._lock:
                self._unreserved_idle += 1


_HANDLER_THREADS = _HandlerThreads()


@dataclass(frozen=True)
class ThreadTask:
    """A thread handler's run, as the worker's GIL monitor (corral.worker.gil) sees it."""

    task_id: int
    attempt: int
    task_name: str
    cpu_at_start: float
    """The thread's CPU time when the handler started."""


_THREAD_TASKS: dict[int, ThreadTask] = {}
"""The thread handlers running now, by thread ident."""
_THREAD_TASKS_ENDED: collections.deque[tuple[int, ThreadTask, float, float]] = collections.deque(
    maxlen=256
)
"""The latest ended: (thread ident, run, the thread's CPU time at its end, monotonic end)."""


def thread_tasks() -> tuple[dict[int, ThreadTask], list[tuple[int, ThreadTask, float, float]]]:
    """A copy of the thread handlers running (by thread ident) and of the latest ended."""
    return dict(_THREAD_TASKS), list(_THREAD_TASKS_ENDED)


def _thread_task_ended(ident: int) -> None:
    run = _THREAD_TASKS.pop(ident, None)
    if run is not None:
        _THREAD_TASKS_ENDED.append((ident, run, time.thread_time(), time.monotonic()))


class _ThreadRun:
    """A handler running in a handler thread; its result arrives in `future`."""

    def __init__(self, call: _Call, loop: asyncio.AbstractEventLoop) -> None:
        self._call = call
        self._loop = loop
        self.future: asyncio.Future[RunResult] = loop.create_future()
        self._target = interrupts.Target()
        _HANDLER_THREADS.submit(self._main)

    def _main(self) -> None:
        result: RunResult | None = None
        while True:
            try:
                if result is None:
                    self._target.bind()  # raises an interrupt that came before the thread did
                    result = self._run_handler()
                self._target.close()  # from here on, inject() leaves this thread alone
                _thread_task_ended(threading.get_ident())
                break
            except BaseException as exc:  # an injected exception landed as the handler ended
                if result is None:
                    result = _from_exception(exc)
        with contextlib.suppress(RuntimeError):  # the loop is closed: this run was abandoned
            self._loop.call_soon_threadsafe(self._deliver, result)

    def _run_handler(self) -> RunResult:
        ctx = self._call.ctx
        ident = threading.get_ident()
        _THREAD_TASKS[ident] = ThreadTask(
            ctx.task_id, ctx.attempt, ctx.task_name, time.thread_time()
        )
        try:
            return RunResult("succeeded", value=self._call())
        except BaseException as exc:
            return _from_exception(exc)
        finally:
            _thread_task_ended(ident)

    def _deliver(self, result: RunResult) -> None:
        if not self.future.done():
            self.future.set_result(result)

    def inject(self, exc_type: type[BaseException]) -> bool:
        """Raise `exc_type` in the handler's thread, though never inside corral's own calls
        (see corral.interrupts); False if the handler already finished."""
        return self._target.interrupt(exc_type)


async def _run_thread(call: _Call, timeout: float | None, grace: float) -> RunResult:
    loop = asyncio.get_running_loop()
    cancel = _cancel_future(call.ctx, loop)
    run = _ThreadRun(call, loop)
    try:
        await _wait_any({run.future, cancel}, timeout)
    except asyncio.CancelledError:
        run.inject(TaskCancelled)
        raise
    if run.future.done():
        return run.future.result()
    if cancel.done():
        outcome: Outcome = "cancelled"
        if await _wait_any({run.future}, grace):  # it stopped cooperatively
            return _stopped(outcome, call.ctx, timeout)
        exc_type: type[BaseException] = TaskCancelled
    else:
        outcome, exc_type = "timed_out", TaskTimeout
    if not run.inject(exc_type):  # it finished just now: report what it did
        return await run.future
    if await _wait_any({run.future}, grace):
        return _stopped(outcome, call.ctx, timeout)
    note = "; its thread did not stop (stuck in C code?) and was abandoned"
    return _stopped(outcome, call.ctx, timeout, note)


# --- process: the child -----------------------------------------------------------------------


def _encode(message: Message) -> bytes:
    return json.dumps(message).encode()


class _PipeSink:
    """The child's ContextSink: each write becomes a JSON message to the parent."""

    def __init__(self, conn: Connection, lock: threading.Lock) -> None:
        self._conn = conn
        self._lock = lock

    def _send(self, message: Message) -> None:
        try:
            data = _encode(message)
        except (TypeError, ValueError) as exc:
            raise PayloadError(f"the {message['type']} is not JSON-serialisable: {exc}") from exc
        with self._lock:
            self._conn.send_bytes(data)

    def save_checkpoint(self, task_id: int, attempt: int, checkpoint: Any) -> None:
        self._send({"type": "checkpoint", "value": checkpoint})

    def save_shared(self, task_id: int, attempt: int, shared: dict[str, Any]) -> None:
        self._send({"type": "shared", "value": shared})

    def log(self, task_id: int, attempt: int, level: int, message: str) -> None:
        self._send({"type": "log", "level": level, "message": message})


def _reset_child_state() -> None:
    """Forget the parent's event loop and signal handlers: the child must not touch them."""
    asyncio.events._set_running_loop(None)
    with contextlib.suppress(ValueError):
        signal.set_wakeup_fd(-1)
    for sig in signal.valid_signals():
        with contextlib.suppress(OSError, ValueError, RuntimeError):
            if callable(signal.getsignal(sig)):  # a Python handler installed by the parent
                signal.signal(sig, signal.SIG_DFL)


def _die() -> None:
    """Kill this child at once, with its process group when it leads one (the processes the
    handler started); never the worker's group, should setpgid have failed."""
    with contextlib.suppress(OSError):
        if os.getpgid(0) == os.getpid():
            os.killpg(0, signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


def _set_parent_death_signal() -> None:
    """Linux: the kernel SIGKILLs this child when its parent dies, even while the handler holds
    the GIL in C code. It fires when the parent *thread* that forked exits: the fork happens on
    the worker's event-loop thread, which lives as long as the worker."""
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _die_with_parent(parent_pid: int) -> None:
    """First thing in the child: a child whose worker is gone would run its task a second time
    beside the rerun that the worker's expired lease brings, so it must go with the worker."""
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)  # its own group: a terminal's ^C drains the worker, not its children
    _set_parent_death_signal()
    if os.getppid() != parent_pid:  # the worker died before the signal was set
        _die()


def _watch_parent(conn: Connection, ctx: Context) -> None:
    """Thread in the child: a cancel message sets `ctx.cancelled`; the pipe closing means the
    worker is gone (nobody would record the result, and another worker reruns the task once the
    lease expires), so the child dies at once. Every platform's fallback for the parent-death
    signal (a handler holding the GIL in C code delays it)."""
    with contextlib.suppress(EOFError, OSError):
        while True:
            data = conn.recv_bytes()
            with contextlib.suppress(ValueError):
                if json.loads(data).get("type") == "cancel":
                    ctx.request_cancel()
    _die()


def _final_message(call: _Call) -> bytes:
    try:
        value = call()
        if inspect.iscoroutine(value):
            value = asyncio.run(value)
    except BaseException as exc:
        return _encode({"type": "error", **asdict(_from_exception(exc))})
    try:
        return _encode({"type": "result", "value": value})
    except (TypeError, ValueError) as exc:
        error = f"PayloadError: the handler's result is not JSON-serialisable: {exc}"
        return _encode({"type": "error", **asdict(RunResult("failed", error=error))})


def _child_main(
    call: _Call, conn: Connection, parent_end: Connection, parent_pid: int, others: list[int]
) -> None:
    code = 1
    try:
        _die_with_parent(parent_pid)
        for fd in others:  # other children's pipes: a copy held here would hide their EOF
            with contextlib.suppress(OSError):
                os.close(fd)
        parent_end.close()
        _reset_child_state()
        lock = threading.Lock()
        fields = {name: getattr(call.ctx, name) for name in _CONTEXT_FIELDS}
        ctx = Context(sink=_PipeSink(conn, lock), **fields)
        threading.Thread(target=_watch_parent, args=(conn, ctx), daemon=True).start()
        message = _final_message(replace(call, ctx=ctx))
        with lock:
            conn.send_bytes(message)
        code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


# --- process: the parent ----------------------------------------------------------------------


def _forward_one(ctx: Context, message: Message) -> None:
    """Apply a child's checkpoint, shared or log message to the parent's context and sink."""
    if message["type"] == "checkpoint":
        ctx.save_checkpoint(message["value"])
    elif message["type"] == "shared":
        ctx.shared = dict(message["value"])
        ctx._sink.save_shared(ctx.task_id, ctx.attempt, dict(ctx.shared))
    elif message["type"] == "log":
        ctx._sink.log(ctx.task_id, ctx.attempt, int(message["level"]), str(message["message"]))


_PARENT_ENDS: set[int] = set()
"""The file descriptors of the worker's ends of its live children's pipes. A child forked later
closes its copies: each child's pipe then closes the moment the worker dies."""
_PARENT_ENDS_LOCK = threading.Lock()


class _Child:
    """A forked child running one handler. The loop reads its messages as they come and forwards
    them, in order and off the loop, to the parent's context."""

    def __init__(self, call: _Call, loop: asyncio.AbstractEventLoop) -> None:
        import ctypes  # noqa: F401 - here, so that the forked child finds it imported
        import multiprocessing

        mp = multiprocessing.get_context("fork")
        self._ctx = call.ctx
        self._loop = loop
        self._conn, child_end = mp.Pipe()
        name = f"corral-task-{call.ctx.task_id}"
        with _PARENT_ENDS_LOCK:
            others = sorted(_PARENT_ENDS)
            _PARENT_ENDS.add(self._conn.fileno())
        args = (call, child_end, self._conn, os.getpid(), others)
        self._proc = mp.Process(target=_child_main, args=args, name=name, daemon=True)
        self._proc.start()
        pid = self._proc.pid
        with contextlib.suppress(OSError):  # as the child does itself: whichever runs first
            if pid:
                os.setpgid(pid, pid)
        child_end.close()
        self.final: Message | None = None
        self.killed = False
        self.exitcode: int | None = None
        self.exited: asyncio.Future[None] = loop.create_future()
        self._queue: asyncio.Queue[Message | None] = asyncio.Queue()
        self._forwarder = loop.create_task(self._forward())
        self._reading = True
        loop.add_reader(self._conn.fileno(), self._read)
        loop.add_reader(self._proc.sentinel, self._on_exit)

    def _read(self, to_eof: bool = False) -> None:
        """Dispatch the messages waiting in the pipe (a batch at most, unless `to_eof`, so that a
        chatty child can't hog the loop)."""
        count = 0
        try:
            while (to_eof or count < _READ_BATCH) and self._conn.poll():
                self._dispatch(self._conn.recv_bytes())
                count += 1
        except (EOFError, OSError):
            self._stop_reading()

    def _dispatch(self, data: bytes) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            return
        if message.get("type") in ("result", "error"):
            self.final = message
        else:
            self._queue.put_nowait(message)

    def _stop_reading(self) -> None:
        if self._reading:
            self._reading = False
            self._loop.remove_reader(self._conn.fileno())

    def _on_exit(self) -> None:
        self._loop.remove_reader(self._proc.sentinel)
        if not self.exited.done():
            self.exited.set_result(None)

    async def _forward(self) -> None:
        while (message := await self._queue.get()) is not None:
            try:
                await asyncio.to_thread(_forward_one, self._ctx, message)
            except Exception:
                logging.getLogger(__name__).exception(
                    "could not store the %s of task %s", message["type"], self._ctx.task_id
                )

    def send_cancel(self) -> None:
        with contextlib.suppress(OSError):
            self._conn.send_bytes(_encode({"type": "cancel"}))

    def kill(self) -> None:
        if self._proc.is_alive():
            self._kill_group()
            self._proc.kill()
            self.killed = True

    def _kill_group(self) -> None:
        """SIGKILL the child's process group: the child and what its handler started."""
        pid = self._proc.pid
        with contextlib.suppress(OSError):
            if pid is not None and os.getpgid(pid) == pid:
                os.killpg(pid, signal.SIGKILL)

    async def finish(self) -> None:
        """Once the child exited: reap it, read what is left in the pipe, forward it all."""
        self._proc.join()
        if self._reading:
            self._read(to_eof=True)  # the child is gone: this doesn't block
            self._stop_reading()
        self._queue.put_nowait(None)
        await self._forwarder
        self._close()

    def abort(self) -> None:
        """Kill and reap the child at once; drop whatever it had left to forward."""
        self._kill_group()
        self._proc.kill()
        self._proc.join()
        self._on_exit()
        self._stop_reading()
        self._forwarder.cancel()
        self._close()

    def _close(self) -> None:
        self.exitcode = self._proc.exitcode
        with _PARENT_ENDS_LOCK:
            _PARENT_ENDS.discard(self._conn.fileno())
        self._conn.close()
        self._proc.close()


async def _run_process(call: _Call, timeout: float | None, grace: float) -> RunResult:
    loop = asyncio.get_running_loop()
    cancel = _cancel_future(call.ctx, loop)
    child = _Child(call, loop)
    try:
        stopped = await _supervise(child, cancel, timeout, grace)
    except BaseException:
        child.abort()
        raise
    await child.finish()
    if stopped is not None:
        note = "; its process was killed" if child.killed else ""
        return _stopped(stopped, call.ctx, timeout, note)
    final = child.final
    if final is None:
        return RunResult("failed", error=f"ChildProcessError: {_exit_text(child.exitcode)}")
    if final["type"] == "result":
        return RunResult("succeeded", value=final["value"])
    return RunResult(final["outcome"], error=final["error"], traceback=final["traceback"])


async def _supervise(
    child: _Child, cancel: asyncio.Future[None], timeout: float | None, grace: float
) -> Outcome | None:
    """Wait for the child to exit; stop it at the deadline or on cancel, and say which."""
    await _wait_any({child.exited, cancel}, timeout)
    if child.exited.done():
        return None
    outcome: Outcome = "timed_out"
    if cancel.done():
        outcome = "cancelled"
        child.send_cancel()
        await _wait_any({child.exited}, grace)
    child.kill()
    await child.exited
    return outcome


def _exit_text(code: int | None) -> str:
    if code is not None and code < 0:
        how = f"was killed by {signal.Signals(-code).name}"
    else:
        how = f"exited with code {code}"
    return f"the handler's process {how} without reporting a result"
