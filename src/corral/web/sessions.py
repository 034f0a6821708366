"""Signed session cookies, CSRF tokens and other signed values, under the install's own secret.

The secret is made on first use, one per install (a database holds one), never shipped: the
first web process to need it stores it and every other process, on any host, reads the same
(store.install_secret). A session cookie holds the token's id and prefix and a random session
id, signed and time-stamped (itsdangerous); each request checks the token again, so revoking a
token ends its sessions at once. The CSRF token is an HMAC of the session id: a page gets it
from its session and sends it back as the X-CSRF-Token header (or a csrf_token form field)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

from ..clock import Clock
from ..store import Store

COOKIE = "corral_session"
SESSION_AGE = 12 * 3600.0
"""How long a sign-in lasts."""


@dataclass(frozen=True, slots=True)
class Session:
    token_id: int
    prefix: str
    session_id: str


class Signing:
    """Signs and checks values with the install's secret (fetched from the store once)."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._secret: str | None = None

    @property
    def secret(self) -> str:
        if self._secret is None:
            candidate = secrets.token_urlsafe(48)
            self._secret = self._store.install_secret("web", candidate, self._clock.now())
        return self._secret

    def dumps(self, purpose: str, value: Any) -> str:
        """`value` (JSON), signed and time-stamped for one purpose."""
        return URLSafeTimedSerializer(self.secret, salt=f"corral.{purpose}").dumps(value)

    def loads(self, purpose: str, signed: str, max_age: float) -> Any | None:
        """The value signed for `purpose` within `max_age` seconds, else None."""
        serializer = URLSafeTimedSerializer(self.secret, salt=f"corral.{purpose}")
        try:
            return serializer.loads(signed, max_age=int(max_age))
        except (BadSignature, ValueError, TypeError):
            return None

    def mac(self, purpose: str, text: str) -> str:
        key = hashlib.sha256(f"corral.{purpose}:{self.secret}".encode()).digest()
        return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()

    # -- sessions -------------------------------------------------------------------------------
    def new_session(self, token_id: int, prefix: str) -> tuple[str, Session]:
        session = Session(token_id, prefix, secrets.token_urlsafe(18))
        value = {"t": token_id, "p": prefix, "s": session.session_id}
        return self.dumps("session", value), session

    def session(self, cookie: str | None) -> Session | None:
        if not cookie:
            return None
        value = self.loads("session", cookie, SESSION_AGE)
        if not isinstance(value, dict):
            return None
        token_id, prefix, sid = value.get("t"), value.get("p"), value.get("s")
        if not isinstance(token_id, int) or not isinstance(prefix, str) or not isinstance(sid, str):
            return None
        return Session(token_id, prefix, sid)

    def csrf_token(self, session: Session) -> str:
        return self.mac("csrf", session.session_id)

    def csrf_ok(self, session: Session, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(self.csrf_token(session), presented)
