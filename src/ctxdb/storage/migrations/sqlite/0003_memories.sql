-- ctxdb schema version 3 for SQLite: versioned memories.
-- memories: the current row of each (project, namespace, key), with its version counter;
-- memory_versions: every version ever written (puts and delete tombstones), until purged.
-- Values are JSON text checked by json_valid; timestamps as in 0001.

-- migrate:up
CREATE TABLE memories (
    memory_id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects(project_id) ON DELETE CASCADE,
    namespace TEXT NOT NULL CHECK (length(namespace) > 0),
    key TEXT NOT NULL CHECK (length(key) > 0),
    memory_type TEXT NOT NULL CHECK (memory_type IN ('semantic', 'episodic', 'procedural')),
    version INTEGER NOT NULL CHECK (version >= 1),
    value TEXT NOT NULL CHECK (json_valid(value)),
    created_by TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    expires_at TEXT,
    deleted_at TEXT,
    UNIQUE (project_id, namespace, key)
);
CREATE INDEX idx_memories_expiry ON memories(expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE memory_versions (
    memory_id TEXT NOT NULL REFERENCES memories(memory_id) ON DELETE CASCADE,
    version INTEGER NOT NULL CHECK (version >= 1),
    op TEXT NOT NULL CHECK (op IN ('put', 'delete')),
    memory_type TEXT NOT NULL CHECK (memory_type IN ('semantic', 'episodic', 'procedural')),
    value TEXT CHECK (value IS NULL OR json_valid(value)),
    written_by TEXT NOT NULL,
    written_at TEXT NOT NULL,
    expires_at TEXT,
    PRIMARY KEY (memory_id, version)
);

-- migrate:down
DROP TABLE memory_versions;
DROP TABLE memories;
