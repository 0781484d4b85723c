-- ctxdb schema version 4 for SQLite: conversation sessions and their ordered event logs.
-- sessions: one conversation of an app with a user (optionally run by an agent instance), with
-- a JSON state object and the counter its events draw their sequence numbers from;
-- session_events: the events in order (gapless sequence per session), each appended once per
-- idempotency key. JSON is text checked by json_valid; timestamps as in 0001.

-- migrate:up
CREATE TABLE sessions (
    session_id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects(project_id) ON DELETE CASCADE,
    app_name TEXT NOT NULL CHECK (length(app_name) > 0),
    user_id TEXT NOT NULL CHECK (length(user_id) > 0),
    instance_id TEXT REFERENCES instances(instance_id) ON DELETE SET NULL,
    state TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(state)),
    status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    next_event_seq INTEGER NOT NULL DEFAULT 0 CHECK (next_event_seq >= 0),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    closed_at TEXT
);
CREATE INDEX idx_sessions_project ON sessions(project_id, app_name, user_id, created_at);

CREATE TABLE session_events (
    event_id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL REFERENCES sessions(session_id) ON DELETE CASCADE,
    sequence INTEGER NOT NULL CHECK (sequence >= 1),
    role TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'system', 'tool')),
    content TEXT NOT NULL CHECK (json_valid(content)),
    metadata TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata)),
    idempotency_key TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (session_id, sequence),
    UNIQUE (session_id, idempotency_key)
);

-- migrate:down
DROP TABLE session_events;
DROP TABLE sessions;
