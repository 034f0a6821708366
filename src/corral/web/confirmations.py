"""The confirmation of a bulk action: what a dry run hands back and the real request must carry.

A token binds what the preview counted (the action, the filter as the preview narrowed it, the
principal who asked, the newest task id it matched and how many) to an expiry, signed with the
install's secret (HMAC-SHA256). The real request is refused unless it carries a token that is
genuine, unexpired, for the same action, filter and principal: so a script or a page can't
skip the count-first step, a token can't be replayed by someone else or for another filter, and
a task submitted after the preview is not part of the bulk (the high-water id). Nothing secret
is inside (the payload is readable JSON); the secret only signs."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import asdict, dataclass
from typing import Any

from ..read_model import TaskFilter

TTL = 600.0
"""Seconds a confirmation stays good: long enough to read the count, short enough to go stale."""


class ConfirmationRefused(ValueError):
    """The token is not one this install signed for this request, or it expired."""


@dataclass(frozen=True)
class Confirmed:
    """What a genuine token says the preview saw."""

    high_water: int
    count: int


def canonical(filter: TaskFilter) -> dict[str, Any]:
    """The filter as JSON-ready data in a stable shape (states as strings, in their order)."""
    data = asdict(filter)
    data["states"] = [str(s) for s in filter.states]
    data["scope"] = list(data.get("scope", ()))
    return data


def issue(
    secret: bytes,
    *,
    action: str,
    filter: TaskFilter,
    principal: str,
    high_water: int,
    count: int,
    now: float,
    ttl: float = TTL,
) -> str:
    """A token for this preview, good until `now + ttl`."""
    body = {"a": action, "f": canonical(filter), "p": principal, "h": high_water, "n": count,
            "x": round(now + ttl, 3)}  # fmt: skip
    raw = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    return f"{_b64(raw)}.{_b64(_mac(secret, raw))}"


def check(
    secret: bytes, token: str, *, action: str, filter: TaskFilter, principal: str, now: float
) -> Confirmed:
    """What the preview behind `token` saw; ConfirmationRefused (saying why) unless the token
    is this install's, unexpired, and for this action, filter and principal."""
    body_text, _, mac_text = token.partition(".")
    try:
        raw, mac = _unb64(body_text), _unb64(mac_text)
    except (ValueError, binascii.Error):
        raise ConfirmationRefused("confirmation: not a token a dry run gave") from None
    if not mac_text or not hmac.compare_digest(mac, _mac(secret, raw)):
        raise ConfirmationRefused("confirmation: not a token a dry run gave")
    body = json.loads(raw)
    if body["x"] < now:
        raise ConfirmationRefused("confirmation: expired; run the dry run again")
    if body["a"] != action or body["p"] != principal:
        raise ConfirmationRefused("confirmation: given for another action or another token")
    if body["f"] != canonical(filter):
        raise ConfirmationRefused("confirmation: given for another filter; run the dry run again")
    return Confirmed(int(body["h"]), int(body["n"]))


def _mac(secret: bytes, raw: bytes) -> bytes:
    return hmac.new(secret, b"corral-bulk-confirmation\0" + raw, hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    if len(text) > 8192:
        raise ValueError("too long")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
