-- corral schema, version 19 (PostgreSQL): who may use corral web (corral.web, docs/web-security.md). An API
-- token is stored as its visible prefix and the SHA-256 of its whole secret, never the secret:
-- a request's token is found by its prefix (unique) and compared by hash. A token has one role
-- and, if scoped, the groups it sees (JSON: names, or prefixes ending in '*'). The install's
-- secrets (the key that signs session cookies, CSRF tokens and bulk confirmations) are made on
-- first use, one per install, never shipped: the first web process to need one inserts it and
-- every other reads the row that won. The audit log is append-only: who did what, to what,
-- under which filter, and how many changed.

CREATE TABLE corral_api_tokens (
    id           BIGINT GENERATED ALWAYS AS IDENTITY,
    prefix       TEXT NOT NULL,            -- shown in lists and logs: 'crl_' + 8 characters
    secret_hash  TEXT NOT NULL,            -- hex SHA-256 of the whole token
    name         TEXT NOT NULL,
    role         TEXT NOT NULL,            -- viewer | operator | admin
    scope        TEXT NOT NULL DEFAULT '[]', -- JSON: group names or prefixes; [] every group
    created_at   DOUBLE PRECISION NOT NULL,
    expires_at   DOUBLE PRECISION,
    revoked_at   DOUBLE PRECISION,
    last_used_at DOUBLE PRECISION,
    PRIMARY KEY (id)
);
CREATE UNIQUE INDEX corral_api_tokens_prefix ON corral_api_tokens (prefix);

CREATE TABLE corral_install_secrets (
    name       TEXT NOT NULL,
    value      TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (name)
);

CREATE TABLE corral_audit_log (
    id      BIGINT GENERATED ALWAYS AS IDENTITY,
    at      DOUBLE PRECISION NOT NULL,
    actor   TEXT NOT NULL,                 -- the token's prefix and name
    role    TEXT NOT NULL,
    action  TEXT NOT NULL,                 -- e.g. task.cancel, tasks.bulk_retry, token.create
    target  TEXT,                          -- e.g. task:42, schedule:nightly
    filter  TEXT,                          -- JSON: the filter of a bulk action
    changed BIGINT NOT NULL DEFAULT 0,
    detail  TEXT,
    PRIMARY KEY (id)
);
CREATE INDEX corral_audit_log_at ON corral_audit_log (at);
