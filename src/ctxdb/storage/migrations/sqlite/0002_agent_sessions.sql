-- ctxdb schema version 2 for SQLite: what agent-client hooks and transcript ingestion record.
-- injections: every text a hook put into an agent's context (audit: which items, which
-- instance, which generation); transcripts: how far each transcript file has been read;
-- api_usage: token usage per API response (one row per message id); compactions: the
-- compaction boundaries of a session, with their summary.

-- migrate:up
CREATE TABLE injections (
    injection_id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id TEXT NOT NULL REFERENCES projects(project_id) ON DELETE CASCADE,
    instance_id TEXT REFERENCES instances(instance_id) ON DELETE SET NULL,
    session_id TEXT,
    generation INTEGER NOT NULL CHECK (generation >= 0),
    hook_event TEXT NOT NULL,
    source TEXT,
    item_ids TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(item_ids)),
    handoff_id INTEGER REFERENCES handoffs(handoff_id) ON DELETE SET NULL,
    characters INTEGER NOT NULL CHECK (characters >= 0),
    tokens INTEGER NOT NULL CHECK (tokens >= 0),
    injected_text TEXT NOT NULL DEFAULT '',
    idempotency_key TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);
CREATE INDEX idx_injections_instance ON injections(instance_id, injection_id);
CREATE INDEX idx_injections_project ON injections(project_id, injection_id);

CREATE TABLE transcripts (
    transcript_id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL UNIQUE,
    session_id TEXT,
    agent_id TEXT,
    project_id TEXT REFERENCES projects(project_id) ON DELETE CASCADE,
    instance_id TEXT REFERENCES instances(instance_id) ON DELETE SET NULL,
    byte_offset INTEGER NOT NULL DEFAULT 0 CHECK (byte_offset >= 0),
    records INTEGER NOT NULL DEFAULT 0 CHECK (records >= 0),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX idx_transcripts_session ON transcripts(session_id);

CREATE TABLE api_usage (
    usage_id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    project_id TEXT REFERENCES projects(project_id) ON DELETE CASCADE,
    instance_id TEXT REFERENCES instances(instance_id) ON DELETE SET NULL,
    agent_id TEXT,
    model TEXT,
    input_tokens INTEGER NOT NULL DEFAULT 0 CHECK (input_tokens >= 0),
    output_tokens INTEGER NOT NULL DEFAULT 0 CHECK (output_tokens >= 0),
    cache_creation_tokens INTEGER NOT NULL DEFAULT 0 CHECK (cache_creation_tokens >= 0),
    cache_read_tokens INTEGER NOT NULL DEFAULT 0 CHECK (cache_read_tokens >= 0),
    sidechain INTEGER NOT NULL DEFAULT 0 CHECK (sidechain IN (0, 1)),
    occurred_at TEXT,
    updated_at TEXT NOT NULL,
    UNIQUE (session_id, message_id)
);
CREATE INDEX idx_api_usage_project ON api_usage(project_id, occurred_at);

CREATE TABLE compactions (
    compaction_id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL,
    boundary_uuid TEXT NOT NULL UNIQUE,
    project_id TEXT REFERENCES projects(project_id) ON DELETE CASCADE,
    instance_id TEXT REFERENCES instances(instance_id) ON DELETE SET NULL,
    trigger_type TEXT,
    pre_tokens INTEGER CHECK (pre_tokens >= 0),
    occurred_at TEXT,
    summary TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX idx_compactions_session ON compactions(session_id, compaction_id);

-- migrate:down
DROP TABLE compactions;
DROP TABLE api_usage;
DROP TABLE transcripts;
DROP TABLE injections;
