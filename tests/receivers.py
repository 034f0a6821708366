"""A real HTTP receiver on 127.0.0.1 for webhook tests: it records every request and what it
accepted, and refuses the first `fail` requests with a 503."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.accepted: list[dict[str, Any]] = []
        lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with lock:
                    receiver.requests.append((dict(self.headers), body))
                    refused = receiver.fail > 0
                    if refused:
                        receiver.fail -= 1
                    else:
                        accepted = {"headers": dict(self.headers), "body": json.loads(body)}
                        receiver.accepted.append(accepted)
                self.send_response(503 if refused else 200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
