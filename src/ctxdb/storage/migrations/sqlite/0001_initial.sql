-- ctxdb schema version 1 for SQLite: projects, phases, instances, context items, handoffs,
-- audit log. Timestamps are UTC ISO-8601 text with milliseconds (YYYY-MM-DDTHH:MM:SS.mmmZ),
-- which sorts and compares correctly as text.

-- migrate:up
CREATE TABLE projects (
    project_id TEXT PRIMARY KEY,
    name TEXT NOT NULL CHECK (length(name) > 0),
    description TEXT NOT NULL DEFAULT '',
    total_story_points INTEGER NOT NULL DEFAULT 0 CHECK (total_story_points >= 0),
    completed_story_points INTEGER NOT NULL DEFAULT 0 CHECK (completed_story_points >= 0),
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'archived')),
    repo_key TEXT UNIQUE,
    next_sequence INTEGER NOT NULL DEFAULT 0,
    metadata TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata)),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    archived_at TEXT
);
CREATE INDEX idx_projects_status ON projects(status, created_at);

CREATE TABLE phases (
    phase_id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id TEXT NOT NULL REFERENCES projects(project_id) ON DELETE CASCADE,
    phase_number INTEGER NOT NULL CHECK (phase_number >= 0),
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    story_points INTEGER NOT NULL DEFAULT 0 CHECK (story_points >= 0),
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'active', 'completed', 'blocked')),
    started_at TEXT,
    completed_at TEXT,
    blocked_reason TEXT,
    metadata TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata)),
    created_at TEXT NOT NULL,
    UNIQUE (project_id, phase_number)
);
CREATE INDEX idx_phases_status ON phases(project_id, status, phase_number);

CREATE TABLE instances (
    instance_id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects(project_id) ON DELETE CASCADE,
    phase_id INTEGER REFERENCES phases(phase_id) ON DELETE SET NULL,
    hostname TEXT NOT NULL DEFAULT '',
    process_id INTEGER,
    client TEXT NOT NULL DEFAULT 'api',
    session_id TEXT,
    worktree TEXT,
    branch TEXT,
    model TEXT,
    context_window INTEGER NOT NULL CHECK (context_window > 0),
    current_token_usage INTEGER NOT NULL DEFAULT 0
        CHECK (current_token_usage >= 0 AND current_token_usage <= context_window),
    generation INTEGER NOT NULL DEFAULT 0 CHECK (generation >= 0),
    status TEXT NOT NULL DEFAULT 'active'
        CHECK (status IN ('active', 'idle', 'crashed', 'completed')),
    started_at TEXT NOT NULL,
    last_heartbeat TEXT NOT NULL,
    ended_at TEXT,
    metadata TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata))
);
CREATE INDEX idx_instances_project ON instances(project_id, status);
CREATE INDEX idx_instances_heartbeat ON instances(status, last_heartbeat);
CREATE INDEX idx_instances_session ON instances(session_id);

CREATE TABLE context_items (
    item_id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id TEXT NOT NULL REFERENCES projects(project_id) ON DELETE CASCADE,
    phase_id INTEGER REFERENCES phases(phase_id) ON DELETE SET NULL,
    sequence_number INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    priority TEXT NOT NULL CHECK (priority IN ('CRITICAL', 'HIGH', 'MEDIUM', 'LOW')),
    token_count INTEGER NOT NULL CHECK (token_count >= 0),
    content TEXT NOT NULL CHECK (json_valid(content)),
    metadata TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata)),
    created_by TEXT REFERENCES instances(instance_id) ON DELETE SET NULL,
    idempotency_key TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'superseded', 'deleted')),
    superseded_by INTEGER REFERENCES context_items(item_id),
    deleted_at TEXT,
    deleted_by TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (project_id, sequence_number),
    UNIQUE (project_id, idempotency_key)
);
-- The hot path: live items of a project by priority, in sequence order (and reversed).
CREATE INDEX idx_items_live ON context_items(project_id, priority, sequence_number)
    WHERE state = 'active';
CREATE INDEX idx_items_live_phase ON context_items(project_id, phase_id, priority, sequence_number)
    WHERE state = 'active';
CREATE INDEX idx_items_created ON context_items(created_at);

CREATE TABLE handoffs (
    handoff_id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id TEXT NOT NULL REFERENCES projects(project_id) ON DELETE CASCADE,
    instance_id TEXT REFERENCES instances(instance_id) ON DELETE SET NULL,
    generation INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('clear', 'compact', 'manual', 'end')),
    summary TEXT NOT NULL DEFAULT '',
    next_steps TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(next_steps)),
    working_set TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(working_set)),
    tokens_before INTEGER NOT NULL DEFAULT 0,
    idempotency_key TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);
CREATE INDEX idx_handoffs_instance ON handoffs(instance_id, handoff_id);
CREATE INDEX idx_handoffs_project ON handoffs(project_id, handoff_id);

CREATE TABLE audit_log (
    audit_id INTEGER PRIMARY KEY AUTOINCREMENT,
    occurred_at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    project_id TEXT,
    details TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(details))
);
CREATE INDEX idx_audit_entity ON audit_log(entity_type, entity_id);
CREATE INDEX idx_audit_project ON audit_log(project_id, audit_id);

-- migrate:down
DROP TABLE audit_log;
DROP TABLE handoffs;
DROP TABLE context_items;
DROP TABLE instances;
DROP TABLE phases;
DROP TABLE projects;
