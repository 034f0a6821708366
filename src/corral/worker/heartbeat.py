"""The heartbeat companion: a small process beside each worker that renews its leases.

A worker's own heartbeat runs on its event loop, and a thread handler that holds the GIL in C
code (a pandas merge, a big regex, a driver that doesn't release it) stops that loop, so the
leases of a live worker would expire under it and its tasks would run twice. The companion is a
separate interpreter with its own store connection: nothing a handler does to the worker's GIL
can starve it. Every `heartbeat` seconds it extends the worker's lease and its running tasks'
leases and sends the cancel requests it got back over a pipe, for the worker's loop to act on.

It renews only while the worker looks alive, by this rule (`Liveness`):

    the worker is alive while, within the last `hung_after` seconds, its event loop sent a tick
    (one per heartbeat), or its process used at least BUSY_SHARE of a CPU over a window of
    `cpu_window` seconds (utime + stime from /proc/<pid>/stat; ticks only where /proc is absent);
    and never while its process is stopped (SIGSTOP, a debugger: state T or t in /proc).

So a worker busy in C code, however long, keeps its leases; a worker that neither ticks nor
computes for `hung_after` (deadlocked, or in a C call that sleeps or waits holding the GIL) is
taken for hung: renewals stop and its tasks are recovered within `hung_after + lease`. A stopped
worker is not renewed at all: its tasks are recovered within the lease, as without a companion.

It dies with the worker: PR_SET_PDEATHSIG on Linux, and on every platform it exits when its
parent changes (`os.getppid()`), when the pipe from the worker closes, or when told `stop`. A
SIGKILLed worker's leases so lapse within `lease` seconds of its death, as without a companion.
It ignores SIGINT and SIGTERM, so it keeps the leases while its worker drains.

The pipe protocol is one line per message. Worker -> companion: a JSON config first, then `tick`
or `stop`. Companion -> worker: `ok` + the comma-separated ids of cancel requests, after each
renewal (dropped if the worker is not reading: the next renewal brings the cancels again).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the companion process and `prestart` don't need asyncio: imported on use
    import asyncio

    from ..store import Store

log = logging.getLogger("corral.heartbeat")

BUSY_SHARE = 0.05
"""The share of one CPU the worker process must use over `cpu_window` to count as busy. A busy C
call uses a whole core (a tenth of it on a loaded host); a deadlocked process's idle threads,
waking a few times a second, use well under 0.1%."""
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class CompanionConfig:
    url: str
    worker_id: str
    worker_pid: int
    lease: float
    heartbeat: float
    hung_after: float
    log_level: int = logging.WARNING


class Liveness:
    """The rule that tells a busy worker from a hung one (pure: the caller passes the times).

    `tick(now)` records a tick of the worker's loop; `cpu(now, seconds)` a reading of its
    process's CPU time. `alive(now)` is whether either showed life within `hung_after`."""

    def __init__(self, hung_after: float, cpu_window: float, now: float) -> None:
        self.hung_after = hung_after
        self.cpu_window = cpu_window
        self.last_sign = now
        self.stopped = False
        self._samples: deque[tuple[float, float]] = deque()

    def tick(self, now: float) -> None:
        self.last_sign = max(self.last_sign, now)

    def cpu(self, now: float, seconds: float) -> None:
        samples = self._samples
        samples.append((now, seconds))
        while len(samples) > 2 and samples[1][0] <= now - self.cpu_window:
            samples.popleft()  # keep one sample at least a window old
        start, used = samples[0]
        if now - start >= self.cpu_window and seconds - used >= BUSY_SHARE * (now - start):
            self.last_sign = max(self.last_sign, now)

    def silent_for(self, now: float) -> float:
        return now - self.last_sign

    def alive(self, now: float) -> bool:
        return not self.stopped and self.silent_for(now) < self.hung_after


def process_cpu(pid: int) -> tuple[float, bool] | None:
    """User + system CPU time of process `pid` (all its threads) and whether it is stopped; None
    without /proc."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) ": state is fields[0]
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), fields[0] in "Tt"


# --- the companion process ----------------------------------------------------------------------


def _die_with_parent() -> None:
    """Linux: the kernel kills this process when the thread that started it ends."""
    with contextlib.suppress(Exception):
        import ctypes  # here: the worker's side doesn't need it

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class _Inbox:
    """Thread: reads the worker's lines; a tick feeds the liveness rule, EOF or `stop` ends."""

    def __init__(self, liveness: Liveness, stop: threading.Event) -> None:
        self._liveness = liveness
        self._stop = stop
        self._lock = threading.Lock()
        threading.Thread(target=self._read, name="corral-heartbeat-inbox", daemon=True).start()

    def _read(self) -> None:
        try:
            for line in sys.stdin:
                if line.strip() == "stop":
                    break
                with self._lock:
                    self._liveness.tick(time.monotonic())
        finally:
            self._stop.set()

    def check(self, now: float, cpu: tuple[float, bool] | None) -> bool:
        with self._lock:
            if cpu is not None:
                self._liveness.stopped = cpu[1]
                self._liveness.cpu(now, cpu[0])
            return self._liveness.alive(now)

    def silent_for(self, now: float) -> float:
        with self._lock:
            return self._liveness.silent_for(now)

    def stopped(self) -> bool:
        with self._lock:
            return self._liveness.stopped


def _send(line: str) -> bool:
    """Write a line to the worker; False once the worker's end is closed."""
    try:
        os.write(1, line.encode() + b"\n")
    except BlockingIOError:
        pass  # the worker isn't reading (its loop is blocked): it gets the next one
    except OSError:
        return False
    return True


def _open_ahead(url: str) -> Store | None:
    """Ahead of the config, while the worker imports and sets up: import the store module of
    `url`'s backend (the worker's `--database-url`/CORRAL_DATABASE_URL, a hint), and for
    PostgreSQL open the store too (its connections take tens of ms, which would otherwise come
    between the worker's registration and its first claim). A SQLite file is opened once the
    config came, as before: opening it first could create it before its worker migrates it.
    None if there is no store opened (the config's URL is opened then, and any error reported
    as before)."""
    scheme = url.partition(":")[0].lower()
    module = {"sqlite": "corral.store.sqlite.store", "postgresql": "corral.store.postgres.store",
              "postgres": "corral.store.postgres.store"}.get(scheme)  # fmt: skip
    if module is None:
        return None
    try:
        importlib.import_module(module)
        if module.endswith("postgres.store"):
            from ..store import open_store

            return open_store(url, migrate=False)
    except Exception:  # a hint only: the config's open reports what is wrong
        pass
    return None


def companion_main() -> None:
    """The companion's body (`python -m corral.worker.heartbeat`, the config on stdin)."""
    _die_with_parent()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    # Imported before the config is read: a companion started early (`prestart`) does this
    # while its worker is still importing and setting up, in parallel.
    from ..clock import skip_skew_warning
    from ..errors import CorralError
    from ..store import open_store
    from .renewal import renew_worker

    skip_skew_warning()  # its worker warns already
    hint = sys.argv[1] if len(sys.argv) > 1 else ""
    ahead = _open_ahead(hint)
    line = sys.stdin.readline()
    config = CompanionConfig(**json.loads(line)) if line.strip() else None
    if ahead is not None and (config is None or config.url != hint):
        ahead.close()  # not the worker's URL after all (its app names another), or no worker
        ahead = None
    if config is None:
        return  # a spare companion whose worker never came (it ended, or started its own)
    logging.basicConfig(
        level=config.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if os.getppid() != config.worker_pid:
        if ahead is not None:
            ahead.close()
        return  # the worker died before we could ask to die with it
    os.set_blocking(1, False)
    store = ahead if ahead is not None else open_store(config.url, migrate=False)
    clock = store.clock()  # the store's one clock (corral.clock), as the worker's
    stop = threading.Event()
    inbox = _Inbox(
        Liveness(config.hung_after, max(1.0, 2 * config.heartbeat), time.monotonic()), stop
    )
    renewing = True
    try:
        while os.getppid() == config.worker_pid and not stop.is_set():
            now = time.monotonic()
            if inbox.check(now, process_cpu(config.worker_pid)):
                if not renewing:
                    log.warning("worker %s shows life again: renewing its leases", config.worker_id)
                renewing = True
                try:
                    wall = clock.now()
                    cancels = renew_worker(store, config.worker_id, wall + config.lease, wall)
                except CorralError as exc:
                    log.warning("heartbeat of worker %s failed: %s", config.worker_id, exc)
                else:
                    if not _send("ok " + ",".join(map(str, cancels))):
                        return
            elif renewing and inbox.stopped():
                renewing = False
                log.warning("worker %s is stopped: its leases are not renewed", config.worker_id)
            elif renewing:
                renewing = False
                log.error(
                    "worker %s (pid %d) looks hung: no tick from its event loop and no CPU "
                    "used for %.1fs (hung_after); its leases are no longer renewed, so its "
                    "tasks are recovered within %gs",
                    config.worker_id,
                    config.worker_pid,
                    inbox.silent_for(now),
                    config.lease,
                )
            stop.wait(config.heartbeat)
    finally:
        store.close()


# --- the worker's side --------------------------------------------------------------------------

_spare: tuple[subprocess.Popen[bytes], int] | None = None
"""A companion process started ahead (`prestart`) and the thread that forked it."""


def _spawn(url: str) -> subprocess.Popen[bytes]:
    package_root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    return subprocess.Popen(
        [sys.executable, "-m", "corral.worker.heartbeat", url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
    )


def prestart(url: str | None = None) -> None:
    """Start the heartbeat companion of the worker this thread is about to run, now: its
    interpreter starts and imports the store (`url`'s backend, if given) while the worker imports
    the app and sets up, so that its first renewal, which the worker waits for before its first
    claim, comes moments after the worker asks. The next `Companion` started from this thread
    takes it (any other starts its own); a spare never taken exits with this process."""
    global _spare
    if _spare is not None:
        return
    with contextlib.suppress(OSError):
        _spare = (_spawn(url or ""), threading.get_ident())


def _take_spare() -> subprocess.Popen[bytes] | None:
    """The spare companion, if this thread forked it and it still runs (else None, and it is
    told to end)."""
    global _spare
    if _spare is None:
        return None
    proc, thread = _spare
    _spare = None
    if thread == threading.get_ident() and proc.poll() is None:
        return proc
    with contextlib.suppress(OSError):
        proc.stdin.close()  # type: ignore[union-attr]  # it reads EOF and ends
    return None


class Companion:
    """The worker's handle on its companion process: start it, tick it, read what it sends,
    stop it. Methods are called on the worker's event loop."""

    def __init__(
        self,
        config: CompanionConfig,
        loop: asyncio.AbstractEventLoop,
        on_cancels: Callable[[list[int]], None],
    ) -> None:
        self.config = config
        self._loop = loop
        self._on_cancels = on_cancels
        self._buffer = b""
        self.last_ok: float | None = None
        import asyncio

        self.ready = asyncio.Event()
        """Set at the companion's first renewal."""
        self.started_at = time.monotonic()
        # Started from the loop's thread: PR_SET_PDEATHSIG follows the thread that forks. A spare
        # that `prestart` started from this thread is taken instead, its imports done by now.
        self.proc = _take_spare() or _spawn(config.url)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._in = self.proc.stdin.fileno()
        self._out = self.proc.stdout.fileno()
        os.write(self._in, json.dumps(asdict(config)).encode() + b"\n")
        os.set_blocking(self._in, False)
        os.set_blocking(self._out, False)
        loop.add_reader(self._out, self._read)
        self._reading = True

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        try:
            data = os.read(self._out, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._stop_reading()
            return
        *lines, self._buffer = (self._buffer + data).split(b"\n")
        cancels: set[int] = set()
        for line in lines:
            kind, _, rest = line.decode(errors="replace").partition(" ")
            if kind == "ok":
                self.last_ok = time.monotonic()
                self.ready.set()
                cancels.update(int(part) for part in rest.split(",") if part.isdigit())
        if cancels:
            self._on_cancels(sorted(cancels))

    def _stop_reading(self) -> None:
        if self._reading:
            self._reading = False
            self._loop.remove_reader(self._out)

    def tick(self) -> None:
        """Tell the companion the worker's loop runs."""
        with contextlib.suppress(OSError):  # full (it will read on) or closed (it exited)
            os.write(self._in, b"tick\n")

    def renewing(self) -> bool:
        """Whether the companion renewed the leases lately (within two heartbeats)."""
        fresh = max(2 * self.config.heartbeat, self.config.heartbeat + 0.5)
        return self.last_ok is not None and time.monotonic() - self.last_ok < fresh

    def exit_code(self) -> int | None:
        """None while the companion runs; its exit code once it ended."""
        return self.proc.poll()

    def close(self) -> None:
        """Release what is left of a companion that already ended."""
        self._stop_reading()
        self._wait(1.0)
        for pipe in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                pipe.close()  # type: ignore[union-attr]

    async def stop(self, timeout: float = 5.0) -> None:
        """Ask the companion to end and wait for it (killed after `timeout`)."""
        self._stop_reading()
        with contextlib.suppress(OSError):
            os.write(self._in, b"stop\n")
        with contextlib.suppress(OSError):
            self.proc.stdin.close()  # type: ignore[union-attr]
        import asyncio

        await asyncio.to_thread(self._wait, timeout)
        with contextlib.suppress(OSError):
            self.proc.stdout.close()  # type: ignore[union-attr]

    def _wait(self, timeout: float) -> None:
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


if __name__ == "__main__":
    companion_main()
