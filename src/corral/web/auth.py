"""Who a request is: API tokens and the principal a valid one makes (docs/web-security.md).

A token is `crl_<8 characters>_<43 characters>`: the first part (its prefix) is public, shown in
lists and the audit log, and finds the token's row; the whole token's SHA-256 is all the store
keeps, so a leaked database gives no usable token. A token's secret is shown once, when made.
The role decides what a token may do (viewer reads; operator also acts on tasks, schedules and
backfills; admin also configures); a scope (corral.scopes) bounds the groups it sees."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass
from typing import Literal, get_args

from .. import limits, scopes
from ..clock import Clock
from ..durations import seconds
from ..errors import ConfigError
from ..store import Store
from ..store.contract.access import AuditEntry, NewToken, TokenRow

Role = Literal["viewer", "operator", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
_RANK = {role: rank for rank, role in enumerate(ROLES)}
PREFIX = "crl_"
_ALPHABET = string.ascii_lowercase + string.digits
MAX_EXPIRY = 10 * 365 * 86400.0
TOUCH_EVERY = 60.0
"""How stale a token's last use may be shown (its store statement checks the same)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who made a request: a token, presented as a bearer or through a session cookie."""

    token_id: int
    prefix: str
    name: str
    role: Role
    scope: tuple[str, ...]
    """The groups it sees (corral.scopes); () every group."""
    via: Literal["token", "session"] = "token"

    def allows(self, role: Role) -> bool:
        """Whether this principal's role includes `role`'s rights."""
        return _RANK[self.role] >= _RANK[role]

    def sees(self, group: str) -> bool:
        return scopes.sees(self.scope, group)

    @property
    def actor(self) -> str:
        """How the audit log names it: prefix and name, never the secret."""
        return f"{self.prefix} ({self.name})"


def check_role(role: str) -> Role:
    if role not in ROLES:
        raise ConfigError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    return role


def hash_secret(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def split(token: str) -> str | None:
    """The token's prefix if it has a token's shape, else None."""
    if not token.startswith(PREFIX) or len(token) > 200:
        return None
    head, sep, rest = token[len(PREFIX) :].partition("_")
    if not sep or len(head) != 8 or not rest or any(c not in _ALPHABET for c in head):
        return None
    return PREFIX + head


@dataclass(frozen=True, slots=True)
class MadeToken:
    row: TokenRow
    secret: str
    """The whole token: shown once, never stored."""


class Tokens:
    """Make, list, revoke and check API tokens in one store; `clock` says when."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def create(
        self,
        role: str,
        *,
        name: str | None = None,
        scope: tuple[str, ...] = (),
        expires: str | float | None = None,
        actor: str = "cli",
    ) -> MadeToken:
        """A new token. `expires`: a duration from now ('30d', '12h', seconds), or None."""
        checked = check_role(role)
        scope = scopes.check(scope)
        now = self.clock.now()
        expires_at = None
        if expires is not None:
            after = seconds(expires, name="expires")
            if not 0 < after <= MAX_EXPIRY:
                raise ConfigError(f"expires must be from 1s to 3650d, got {expires!r}")
            expires_at = now + after
        for _ in range(5):
            prefix = PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(8))
            if self.store.token_by_prefix(prefix) is None:
                break
        else:  # pragma: no cover - 36**8 prefixes
            raise ConfigError("could not find a free token prefix")
        secret = f"{prefix}_{secrets.token_urlsafe(32)}"
        label = limits.text("name", name) if name is not None else f"{checked} token"
        new = NewToken(prefix, hash_secret(secret), label, checked, scope, now, expires_at)
        token_id = self.store.token_insert(new)
        self.store.audit_append(
            [AuditEntry(now, actor, "admin", "token.create", f"token:{prefix}",
                        detail=f"role={checked} scope={list(scope)}")]
        )  # fmt: skip
        row = TokenRow(token_id, prefix, new.secret_hash, label, checked, scope, now,
                       expires_at, None, None)  # fmt: skip
        return MadeToken(row, secret)

    def list(self) -> list[TokenRow]:
        return self.store.token_list()

    def revoke(self, prefix: str, *, actor: str = "cli") -> TokenRow:
        """Revoke the token of this prefix (or whole token); ConfigError if there is none."""
        found = self.store.token_by_prefix(split(prefix) or prefix)
        if found is None:
            raise ConfigError(f"token: no token has the prefix {prefix!r}")
        now = self.clock.now()
        self.store.token_revoke(found.id, now)
        self.store.audit_append(
            [AuditEntry(now, actor, "admin", "token.revoke", f"token:{found.prefix}", changed=1)]
        )
        return self.store.token_by_prefix(found.prefix) or found

    def authenticate(self, token: str) -> Principal | None:
        """The principal of a valid token (known, unrevoked, unexpired), else None."""
        row = self.by_prefix(split(token))
        if row is None or not hmac.compare_digest(row.secret_hash, hash_secret(token)):
            return None
        return self.principal(row)

    def by_prefix(self, prefix: str | None) -> TokenRow | None:
        return None if prefix is None else self.store.token_by_prefix(prefix)

    def principal(self, row: TokenRow, via: Literal["token", "session"] = "token"
                  ) -> Principal | None:  # fmt: skip
        """The row's principal if it is still valid now (and its use recorded), else None."""
        now = self.clock.now()
        if row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now):
            return None
        if row.last_used_at is None or row.last_used_at < now - TOUCH_EVERY:
            self.store.token_touch(row.id, now)  # a write at most once a minute, not a request
        return Principal(row.id, row.prefix, row.name, check_role(row.role), row.scope, via)


def status(row: TokenRow, now: float) -> str:
    """'active', 'revoked' or 'expired'."""
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None and row.expires_at <= now:
        return "expired"
    return "active"
