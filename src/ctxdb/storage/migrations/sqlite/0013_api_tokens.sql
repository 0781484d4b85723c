-- ctxdb schema version 13 for SQLite: the API tokens of `ctxdb serve` (docs/server.md).
-- A token is a random secret shown once when it is created; only the SHA-256 of the secret is
-- kept, so a copy of the database lets nobody call the server. A token belongs to one project
-- (project_id) or, with project_id NULL, is a fleet-wide token for operators. Its scope is
-- read, write (read and write) or admin (also manages projects). A revoked or expired token
-- is kept, not deleted: the audit log names it, and `ctxdb token list` shows why it stopped.

-- migrate:up
CREATE TABLE api_tokens (
    token_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    project_id TEXT REFERENCES projects(project_id),
    scope TEXT NOT NULL CHECK (scope IN ('read', 'write', 'admin')),
    secret_sha256 TEXT NOT NULL UNIQUE CHECK (length(secret_sha256) = 64),
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    revoked_at TEXT
);
CREATE INDEX idx_api_tokens_project ON api_tokens(project_id);

-- migrate:down
DROP INDEX idx_api_tokens_project;
DROP TABLE api_tokens;
