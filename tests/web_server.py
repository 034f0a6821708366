"""A real uvicorn serving corral web on 127.0.0.1 (a free port), in a thread, for the tests
that need a real HTTP server (the browser tests, the live feed's end)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import uvicorn

import corral
from corral.web import WebSettings, create_app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    base: str
    server: uvicorn.Server

    def open_requests(self) -> int:
        """Requests the server is still answering (a live feed among them)."""
        return len(self.server.server_state.tasks)


@contextlib.contextmanager
def serve(app: corral.App, settings: WebSettings | None = None) -> Iterator[Served]:
    port = free_port()
    config = uvicorn.Config(
        create_app(app, settings or WebSettings(sse_poll=0.1)), host="127.0.0.1", port=port,
        log_level="warning", timeout_graceful_shutdown=2, lifespan="off",
    )  # fmt: skip
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, name="test-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not running.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield Served(f"http://127.0.0.1:{port}", running)
    finally:
        running.should_exit = True
        thread.join(10)
