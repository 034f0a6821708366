"""Who may use corral web, in the store contract: API tokens (kept as a visible prefix and the
hash of the secret, never the secret), the install's own secrets (made on first use), and the
audit log of every action taken through the web (corral.web, docs/web-security.md).

The store decides nothing here: which role may do what, whether a token has expired, what a
scope lets through, all come from corral.web.auth."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class NewToken:
    prefix: str
    secret_hash: str
    name: str
    role: str
    scope: tuple[str, ...]
    created_at: float
    expires_at: float | None


@dataclass(frozen=True, slots=True)
class TokenRow:
    id: int
    prefix: str
    secret_hash: str
    name: str
    role: str
    scope: tuple[str, ...]
    """Group names, or prefixes ending in '*'; () sees every group."""
    created_at: float
    expires_at: float | None
    revoked_at: float | None
    last_used_at: float | None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: float
    actor: str
    role: str
    action: str
    target: str | None = None
    filter: str | None = None
    """JSON: the filter of a bulk action."""
    changed: int = 0
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class AuditRow:
    id: int
    entry: AuditEntry


class AccessStore(Protocol):
    def token_insert(self, token: NewToken) -> int:
        """Store a new token; its id. The prefix is unique (a clash raises)."""
        ...

    def token_by_prefix(self, prefix: str) -> TokenRow | None: ...

    def token_list(self) -> list[TokenRow]:
        """Every token, revoked and expired ones too, newest first."""
        ...

    def token_revoke(self, token_id: int, now: float) -> bool:
        """Revoke the token (once: a second revoke keeps the first time); False: no such token."""
        ...

    def token_touch(self, token_id: int, now: float) -> None:
        """Record that the token was used at `now`."""
        ...

    def install_secret(self, name: str, candidate: str, now: float) -> str:
        """The install's secret of this name: `candidate` if none was made yet (it is stored),
        else the one stored first. Two processes asking at once get the same one."""
        ...

    def audit_append(self, entries: Sequence[AuditEntry]) -> None: ...

    def audit_page(self, before_id: int | None, limit: int) -> list[AuditRow]:
        """The audit log newest first, from before `before_id`."""
        ...
