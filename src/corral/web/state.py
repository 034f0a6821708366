"""What one web process holds: the corral App it serves, its settings, and the helpers every
request uses (tokens, signing, the read side). One instance per FastAPI app (`app.state.web`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import App
from ..readside import ReadSide
from ..store import Store
from .auth import Tokens
from .sessions import Signing


@dataclass(frozen=True)
class WebSettings:
    """How `corral web` serves.

    `public_origin`: the origin browsers reach it at (e.g. https://corral.example.com behind a
    proxy); unsafe requests must come from it (or `allowed_origins`). Left out, the origin is the
    request's own scheme and host. `secure_cookies`: mark cookies Secure; None: when the origin
    is https. `bulk_max`: the most tasks one bulk action changes without `allow_large`."""

    public_origin: str | None = None
    allowed_origins: tuple[str, ...] = ()
    secure_cookies: bool | None = None
    bulk_max: int = 100_000
    bulk_batch: int = 500
    sse_poll: float = 1.0
    """How often the live feed looks for new events, in seconds."""


@dataclass
class WebState:
    corral: App
    settings: WebSettings
    tokens: Tokens = field(init=False)
    signing: Signing = field(init=False)
    reads: ReadSide = field(init=False)
    metrics_registry: Any = None
    """The /metrics registry, made at the first scrape (corral.web.metrics)."""

    def __post_init__(self) -> None:
        self.tokens = Tokens(self.store, self.corral.clock)
        self.signing = Signing(self.store, self.corral.clock)
        self.reads = ReadSide(self.store, self.corral.clock)

    @property
    def store(self) -> Store:
        return self.corral.store
