"""The alert channels against real servers on 127.0.0.1: email through aiosmtpd with STARTTLS
(a self-signed certificate made by the openssl CLI) and AUTH, the password from a file and
never in the error; a Slack-compatible payload; `test` saying whether a channel accepted."""

from __future__ import annotations

import email
import json
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import finish, register_worker, start, submit

import corral
from corral.lifecycle import State

aiosmtpd = pytest.importorskip("aiosmtpd")
from aiosmtpd.controller import Controller  # noqa: E402
from aiosmtpd.smtp import AuthResult, LoginPassword  # noqa: E402

PASSWORD = "pa55-word-never-logged"


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    ok = (
        isinstance(data, LoginPassword)
        and data.login == b"alerts"
        and (data.password == PASSWORD.encode())
    )
    return AuthResult(success=ok)


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[tuple[int, Inbox, Path]]:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl CLI is needed to make the test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))
    inbox = Inbox()
    with socket.socket() as probe:  # a free port (aiosmtpd's start-up check can't use 0)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(
        inbox, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True,
        auth_required=True, authenticator=_authenticate,
    )  # fmt: skip
    controller.start()
    try:
        yield port, inbox, cert
    finally:
        controller.stop()


def test_email_over_starttls_with_auth(smtp: tuple[int, Inbox, Path], tmp_path: Path) -> None:
    port, inbox, cert = smtp
    secret = tmp_path / "smtp-password"
    secret.write_text(PASSWORD + "\n")
    app = corral.App(f"sqlite:///{tmp_path}/a.db")
    app.alerts.email("mail", f"smtp://alerts@127.0.0.1:{port}", to=["oncall@example.com"],
                     sender="corral@example.com", password_file=str(secret),
                     cafile=str(cert), timeout=3)  # fmt: skip
    assert app.alerts.test("mail") is None
    (message,) = inbox.messages
    assert message["To"] == "oncall@example.com"
    assert message["Subject"].startswith("[corral FIRING] test")
    assert message["X-Corral-Idempotency-Key"].startswith("corral-test-")
    # a wrong password: not accepted, and the error does not show it
    secret.write_text("wrong-" + PASSWORD)
    error = app.alerts.test("mail")
    assert error is not None and "wrong-" not in error and len(inbox.messages) == 1
    app.close()


def test_email_refuses_a_server_that_does_not_verify(
    smtp: tuple[int, Inbox, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port, inbox, _ = smtp
    monkeypatch.setenv("CORRAL_TEST_SMTP_PASSWORD", PASSWORD)
    app = corral.App(f"sqlite:///{tmp_path}/a.db")
    app.alerts.email(
        "mail", f"smtp://alerts@127.0.0.1:{port}", to="oncall@example.com",
        sender="corral@example.com", password_env="CORRAL_TEST_SMTP_PASSWORD", timeout=3,
    )  # fmt: skip
    error = app.alerts.test("mail")  # self-signed, no cafile: certificate verify failed
    assert error is not None and "certificate" in error.lower()
    assert inbox.messages == []
    app.close()


def test_slack_payload_shape(tmp_path: Path) -> None:
    got: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        app = corral.App(f"sqlite:///{tmp_path}/a.db")
        app.alerts.slack("chat", f"http://127.0.0.1:{server.server_address[1]}/services/T/B/X")
        assert app.alerts.test("chat") is None
        (payload,) = got
        assert set(payload) == {"text"} and payload["text"].startswith("*[corral FIRING] test")
        app.close()
    finally:
        server.shutdown()
        server.server_close()


def test_unreachable_webhook_is_an_error_not_a_crash(tmp_path: Path) -> None:
    app = corral.App(f"sqlite:///{tmp_path}/a.db")
    app.alerts.webhook("hook", "http://127.0.0.1:9/nothing", timeout=2)
    error = app.alerts.test("hook")
    assert error is not None and "hook" in error
    app.close()


def test_a_dead_task_is_mailed_with_its_error(
    smtp: tuple[int, Inbox, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port, inbox, cert = smtp
    monkeypatch.setenv("CORRAL_TEST_SMTP_PASSWORD", PASSWORD)
    app = corral.App(f"sqlite:///{tmp_path}/a.db")
    app.alerts.dashboard_url = "http://127.0.0.1:8000/"
    app.alerts.email(
        "mail", f"smtp://alerts@127.0.0.1:{port}", to="oncall@example.com",
        sender="corral@example.com", password_env="CORRAL_TEST_SMTP_PASSWORD", cafile=str(cert),
    )  # fmt: skip
    app.alerts.rule("dead", "dead", channels="mail", group_wait=0)
    now = app.clock.now()
    register_worker(app.store, now=now)
    task_id = submit(app.store, now)
    finish(app.store, start(app.store, task_id, now), State.DEAD, now)
    app.alerts.evaluator().run(app.clock.now())
    assert app.alerts.sender().deliver_due(app.clock.now()) == 1
    (message,) = inbox.messages
    body = message.get_payload(decode=True).decode()
    assert f"task {task_id}" in message["Subject"]
    assert "error:" in body and f"http://127.0.0.1:8000/tasks/{task_id}" in body
    (row,) = app.store.alert_notifications(None, 5)
    assert row.state == "sent" and message["X-Corral-Idempotency-Key"] == row.idempotency_key
    app.close()
