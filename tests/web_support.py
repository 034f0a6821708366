"""The web app under test: a TestClient on a corral App, tokens of each role made on demand,
and a dashboard sign-in (the session cookie kept by the client)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import corral
from corral.web import WebSettings, create_app
from corral.web.auth import Tokens

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from fastapi.testclient import TestClient

BASE = "http://testserver"
"""The TestClient's origin: what a same-origin browser request sends as Origin."""


@dataclass
class WebHarness:
    app: corral.App
    client: TestClient
    tokens: Tokens
    _made: dict[tuple[str, tuple[str, ...]], str] = field(default_factory=dict)

    def token(self, role: str, scope: tuple[str, ...] = ()) -> str:
        """A bearer secret of this role and scope (one per pair, made once)."""
        key = (role, scope)
        if key not in self._made:
            self._made[key] = self.tokens.create(role, scope=scope).secret
        return self._made[key]

    def headers(self, role: str, scope: tuple[str, ...] = ()) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(role, scope)}"}

    def login(self, role: str, scope: tuple[str, ...] = ()) -> str:
        """Sign the client in with a session cookie; the session's CSRF token."""
        response = self.client.post(
            "/api/v1/session", json={"token": self.token(role, scope)}, headers={"Origin": BASE}
        )
        assert response.status_code == 200, response.text
        return str(response.json()["csrf_token"])


def web(app: corral.App, settings: WebSettings | None = None) -> WebHarness:
    client = TestClient(create_app(app, settings), base_url=BASE)
    return WebHarness(app, client, Tokens(app.store, app.clock))
