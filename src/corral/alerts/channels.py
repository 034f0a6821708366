"""Delivering a notice: email through smtplib (SSL or STARTTLS, auth), a generic webhook (JSON,
signed: `X-Corral-Signature: sha256=HMAC(secret, timestamp + "." + body)` beside
`X-Corral-Timestamp`), a Slack-compatible incoming webhook. A secret is read from its variable or
file at each send, never stored or logged. `deliver` raises DeliveryError on a refusal or a
timeout, with a message that names no secret."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import smtplib
import ssl
from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .rules import Channel, EmailChannel, WebhookChannel


class DeliveryError(Exception):
    """A channel refused a notice or could not be reached."""


def secret(env: str | None, file: str | None, what: str) -> str | None:
    if env is not None:
        value = os.environ.get(env)
        if value is None:
            raise ConfigError(f"{what}: environment variable {env} is not set")
        return value
    if file is not None:
        try:
            return Path(file).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{what}: can't read {file}: {exc.strerror}") from None
    return None


def render_text(notices: Sequence[Mapping[str, Any]]) -> tuple[str, str]:
    """A subject line and a plain-text body for a batch of notices of one rule."""
    first = notices[0]
    state = "RESOLVED" if all(n["transition"] == "resolved" for n in notices) else "FIRING"
    more = f" (+{len(notices) - 1} more)" if len(notices) > 1 else ""
    group = f" {{{first['group']}}}" if first.get("group") else ""
    subject = f"[corral {state}] {first['rule']}{group}: {first['summary']}{more}"
    lines: list[str] = []
    for n in notices:
        lines.append(f"{n['transition'].upper()} {n['rule']} · {n['subject']}: {n['summary']}")
        lines.extend(f"  {line}" for line in n.get("cause_lines", []))
        if n.get("link"):
            lines.append(f"  {n['link']}")
        lines.append(f"  (incident {n['incident_id']}, key {n['idempotency_key']})")
        lines.append("")
    return subject, "\n".join(lines)


def batch_key(notices: Sequence[Mapping[str, Any]]) -> str:
    """One key for a batch: its one notice's, or a digest of its notices' keys (stable across
    retries of the same batch)."""
    keys = sorted(str(n["idempotency_key"]) for n in notices)
    if len(keys) == 1:
        return keys[0]
    return "corral-batch-" + hashlib.sha256("\n".join(keys).encode()).hexdigest()[:32]


def deliver(channel: Channel, notices: Sequence[Mapping[str, Any]], now: float) -> None:
    """Send one batch of notices (of one rule) through `channel`."""
    if isinstance(channel, EmailChannel):
        _email(channel, notices)
    else:
        _webhook(channel, notices, now)


def _email(channel: EmailChannel, notices: Sequence[Mapping[str, Any]]) -> None:
    subject, body = render_text(notices)
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = channel.sender
    message["To"] = ", ".join(channel.to)
    message["X-Corral-Idempotency-Key"] = batch_key(notices)
    message.set_content(body)
    password = secret(channel.password_env, channel.password_file, f"channel {channel.name!r}")
    context = ssl.create_default_context(cafile=channel.cafile)
    if not channel.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        smtp: smtplib.SMTP
        if channel.security == "ssl":
            smtp = smtplib.SMTP_SSL(
                channel.host, channel.port, timeout=channel.timeout, context=context
            )
        else:
            smtp = smtplib.SMTP(channel.host, channel.port, timeout=channel.timeout)
        with smtp:
            if channel.security == "starttls":
                smtp.starttls(context=context)
            if channel.username is not None:
                smtp.login(channel.username, password or "")
            smtp.send_message(message)
    except smtplib.SMTPException as exc:
        raise DeliveryError(f"SMTP {channel.host}:{channel.port}: {type(exc).__name__}: "
                            f"{_no_secret(str(exc), password)}") from None  # fmt: skip
    except (OSError, ssl.SSLError) as exc:
        raise DeliveryError(f"SMTP {channel.host}:{channel.port}: {exc}") from None


def webhook_body(channel: WebhookChannel, notices: Sequence[Mapping[str, Any]]) -> bytes:
    """The JSON body: Slack's `{"text": ...}` for a Slack channel, else the notices."""
    subject, body = render_text(notices)
    if channel.slack:
        payload: dict[str, Any] = {"text": f"*{subject}*\n{body}"}
    else:
        payload = {"idempotency_key": batch_key(notices), "notices": list(notices)}
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def signature(key: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(key.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def _webhook(channel: WebhookChannel, notices: Sequence[Mapping[str, Any]], now: float) -> None:
    import httpx

    body = webhook_body(channel, notices)
    timestamp = str(int(now))
    headers = {
        **channel.headers,
        "Content-Type": "application/json",
        "X-Corral-Timestamp": timestamp,
        "X-Corral-Idempotency-Key": batch_key(notices),
    }
    key = secret(channel.secret_env, channel.secret_file, f"channel {channel.name!r}")
    if key is not None:
        headers["X-Corral-Signature"] = signature(key, timestamp, body)
    try:
        response = httpx.post(channel.url, content=body, headers=headers, timeout=channel.timeout)
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{channel.name}: {type(exc).__name__}: {exc}") from None
    if not 200 <= response.status_code < 300:
        raise DeliveryError(f"{channel.name}: HTTP {response.status_code}: "
                            f"{response.text[:200]}")  # fmt: skip


def _no_secret(text: str, password: str | None) -> str:
    return text.replace(password, "***") if password else text
