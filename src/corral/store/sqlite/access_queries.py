"""The named SQL of corral web's access store on SQLite (store/contract/access.py).
PostgreSQL's (postgres/access_queries.py) are these, with its parameter style."""

from __future__ import annotations

TOKEN_FIELDS = (
    "id, prefix, secret_hash, name, role, scope, created_at, expires_at, revoked_at, last_used_at"
)

INSERT_TOKEN = """
INSERT INTO corral_api_tokens (prefix, secret_hash, name, role, scope, created_at, expires_at)
VALUES (:prefix, :secret_hash, :name, :role, :scope, :created_at, :expires_at)
RETURNING id
"""
# One token by its prefix: the unique index corral_api_tokens_prefix.
TOKEN_BY_PREFIX = f"SELECT {TOKEN_FIELDS} FROM corral_api_tokens WHERE prefix = :prefix"
# Every token (a handful per install), newest first.
TOKENS = f"SELECT {TOKEN_FIELDS} FROM corral_api_tokens ORDER BY id DESC"
REVOKE_TOKEN = """
UPDATE corral_api_tokens SET revoked_at = COALESCE(revoked_at, :now) WHERE id = :id RETURNING id
"""
# At most one write a minute per token: the WHERE skips a touch within the minute.
TOUCH_TOKEN = """
UPDATE corral_api_tokens SET last_used_at = :now
WHERE id = :id AND (last_used_at IS NULL OR last_used_at < :now - 60)
"""
INSERT_SECRET = """
INSERT INTO corral_install_secrets (name, value, created_at) VALUES (:name, :value, :now)
ON CONFLICT (name) DO NOTHING
"""
SECRET = "SELECT value FROM corral_install_secrets WHERE name = :name"
INSERT_AUDIT = """
INSERT INTO corral_audit_log (at, actor, role, action, target, filter, changed, detail)
VALUES (:at, :actor, :role, :action, :target, :filter, :changed, :detail)
"""
# A page of the audit log, newest first: the primary key, walked backward from `before`.
AUDIT_PAGE = """
SELECT id, at, actor, role, action, target, filter, changed, detail FROM corral_audit_log
WHERE id < :before ORDER BY id DESC LIMIT :limit
"""
