"""The access store's methods (the contract: store/contract/access.py), once for both backends:
each runs its backend's named statement (`access_queries.X`). A backend gives its write
transaction (durable on PostgreSQL: a revoked token stays revoked after a crash)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import AbstractContextManager
from types import ModuleType
from typing import Any

from ..limits import ID_MAX
from .contract.access import AuditEntry, AuditRow, NewToken, TokenRow


class NamedAccess:
    """The AccessStore methods, mixed into each backend's store."""

    access_queries: ModuleType

    def _read(self, query: str, params: Any = None) -> list[Any]:
        raise NotImplementedError

    def _access_tx(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def token_insert(self, token: NewToken) -> int:
        values = {
            "prefix": token.prefix,
            "secret_hash": token.secret_hash,
            "name": token.name,
            "role": token.role,
            "scope": json.dumps(list(token.scope)),
            "created_at": token.created_at,
            "expires_at": token.expires_at,
        }
        with self._access_tx() as tx:
            return int(tx.execute(self.access_queries.INSERT_TOKEN, values).fetchone()[0])

    def token_by_prefix(self, prefix: str) -> TokenRow | None:
        rows = self._read(self.access_queries.TOKEN_BY_PREFIX, {"prefix": prefix})
        return _token(rows[0]) if rows else None

    def token_list(self) -> list[TokenRow]:
        return [_token(row) for row in self._read(self.access_queries.TOKENS)]

    def token_revoke(self, token_id: int, now: float) -> bool:
        with self._access_tx() as tx:
            params = {"id": token_id, "now": now}
            return tx.execute(self.access_queries.REVOKE_TOKEN, params).fetchone() is not None

    def token_touch(self, token_id: int, now: float) -> None:
        with self._access_tx() as tx:
            tx.execute(self.access_queries.TOUCH_TOKEN, {"id": token_id, "now": now})

    def install_secret(self, name: str, candidate: str, now: float) -> str:
        aq = self.access_queries
        with self._access_tx() as tx:
            tx.execute(aq.INSERT_SECRET, {"name": name, "value": candidate, "now": now})
            return str(tx.execute(aq.SECRET, {"name": name}).fetchone()[0])

    def audit_append(self, entries: Sequence[AuditEntry]) -> None:
        if not entries:
            return
        with self._access_tx() as tx:
            for e in entries:
                values = {
                    "at": e.at,
                    "actor": e.actor,
                    "role": e.role,
                    "action": e.action,
                    "target": e.target,
                    "filter": e.filter,
                    "changed": e.changed,
                    "detail": e.detail,
                }
                tx.execute(self.access_queries.INSERT_AUDIT, values)

    def audit_page(self, before_id: int | None, limit: int) -> list[AuditRow]:
        params = {"before": ID_MAX if before_id is None else before_id, "limit": limit}
        rows = self._read(self.access_queries.AUDIT_PAGE, params)
        return [
            AuditRow(
                int(r[0]), AuditEntry(float(r[1]), r[2], r[3], r[4], r[5], r[6], int(r[7]), r[8])
            )
            for r in rows
        ]


def _audit(r: Sequence[Any]) -> AuditEntry:
    return AuditEntry(float(r[1]), r[2], r[3], r[4], r[5], r[6], int(r[7]), r[8])


def _token(row: Sequence[Any]) -> TokenRow:
    ident, prefix, secret_hash, name, role, scope, created, expires, revoked, used = row
    return TokenRow(
        int(ident),
        str(prefix),
        str(secret_hash),
        str(name),
        str(role),
        tuple(str(s) for s in json.loads(scope)),
        float(created),
        None if expires is None else float(expires),
        None if revoked is None else float(revoked),
        None if used is None else float(used),
    )
