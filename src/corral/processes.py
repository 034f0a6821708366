"""Worker processes started by corral itself (`corral run --processes`, `corral demo`): the
command line of a `corral worker` child, starting a set of them with their stderr kept, and
stopping them (SIGTERM, so each drains, then a kill after the timeout)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import IO, Any

from .errors import CorralError


def worker_command(
    database_url: str, app_spec: str, log_level: str = "WARNING", log_format: str = "text"
) -> list[str]:
    """The command line of a `corral worker` child process (add worker options after it)."""
    return [sys.executable, "-m", "corral", "--database-url", database_url, "--app", app_spec,
            "--log-level", log_level, "--log-format", log_format, "worker"]  # fmt: skip


def stop_processes(processes: Sequence[subprocess.Popen[Any]], timeout: float) -> None:
    """SIGTERM each child (a worker then drains), wait up to `timeout`, then kill the rest."""
    for proc in processes:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in processes:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class WorkerProcesses:
    """`count` processes running `command`, each with its stderr kept for when one dies."""

    def __init__(self, command: Sequence[str], count: int) -> None:
        self.logs: list[IO[bytes]] = []
        self.procs: list[subprocess.Popen[bytes]] = []
        for _ in range(count):
            import tempfile  # here: a worker process doesn't need it

            log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
            self.logs.append(log)
            self.procs.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log))

    def check(self) -> None:
        """Raise CorralError, with the last lines it wrote, if a process has exited."""
        for proc, log in zip(self.procs, self.logs, strict=True):
            if proc.poll() is not None:
                log.seek(0)
                tail = log.read().decode(errors="replace").strip().splitlines()[-5:]
                raise CorralError(
                    f"worker process {proc.pid} exited with code {proc.returncode}: "
                    + (" | ".join(tail) or "no output")
                )

    def stop(self, timeout: float = 10.0) -> None:
        stop_processes(self.procs, timeout=timeout)
        for log in self.logs:
            log.close()
