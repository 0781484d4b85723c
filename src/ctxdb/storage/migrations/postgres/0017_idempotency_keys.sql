-- ctxdb schema version 17 for PostgreSQL: the idempotency keys of creates (service/idempotency.py).
-- A create given an idempotency key (the HTTP API's Idempotency-Key header) claims the key in
-- its own transaction: one row per (project, operation, key) holding the SHA-256 of the
-- request and the answer it got. A retry with the same request gets that answer and writes
-- nothing; another request under the key is refused. project_id is '' for creates that belong
-- to no project yet (a project itself), so it has no foreign key. The response is NULL only
-- inside the transaction that claims the key: that transaction writes it before it commits.

-- migrate:up
CREATE TABLE idempotency_keys (
    project_id TEXT NOT NULL,
    operation TEXT NOT NULL CHECK (length(operation) > 0),
    idempotency_key TEXT NOT NULL CHECK (length(idempotency_key) > 0),
    request_sha256 TEXT NOT NULL CHECK (length(request_sha256) = 64),
    response JSONB,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (project_id, operation, idempotency_key)
);

-- migrate:down
DROP TABLE idempotency_keys;
