-- ctxdb schema version 9 for PostgreSQL: retention (`ctxdb gc`, see docs/retention.md).
-- archived_context_items: context items that gc moved out of context_items because they are
-- old (the age and priorities are settings). A row keeps every column of the item as it was,
-- with its item id, so that `ctxdb context unarchive` can put it back unchanged; it no longer
-- points at instances or phases (those may be removed meanwhile), only at its project.
-- Moving items out, rather than flagging them, leaves every query of live context (the pack,
-- search and its triggers) untouched.

-- migrate:up
CREATE TABLE archived_context_items (
    item_id BIGINT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects(project_id) ON DELETE CASCADE,
    phase_id BIGINT,
    sequence_number BIGINT NOT NULL,
    content_type TEXT NOT NULL,
    priority TEXT NOT NULL CHECK (priority IN ('CRITICAL', 'HIGH', 'MEDIUM', 'LOW')),
    token_count INTEGER NOT NULL CHECK (token_count >= 0),
    content JSONB NOT NULL,
    metadata JSONB NOT NULL DEFAULT '{}',
    created_by TEXT,
    idempotency_key TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('active', 'superseded', 'deleted')),
    superseded_by BIGINT,
    deleted_at TIMESTAMPTZ,
    deleted_by TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    archived_at TIMESTAMPTZ NOT NULL,
    archived_by TEXT NOT NULL,
    UNIQUE (project_id, sequence_number)
);
CREATE INDEX idx_archived_items_project ON archived_context_items(project_id, item_id);

-- gc finds closed sessions by when they were closed.
CREATE INDEX idx_sessions_closed ON sessions(closed_at) WHERE status = 'closed';

-- migrate:down
DROP INDEX idx_sessions_closed;
DROP TABLE archived_context_items;
