-- ctxdb schema version 7 for SQLite: the seeds' workflow records.
-- approval_gates: a point where an agent asks a person (or another agent) to approve something
-- (a plan, a deploy) with a JSON request; it is decided once, approved or rejected with a JSON
-- response and who decided, or cancelled by the requester while still pending.
-- command_runs: a command an agent ran or will run (program, JSON array of arguments), moving
-- only forward queued -> running -> success | failed | cancelled, with exit code, output, error
-- and timings. checkpoints: snapshots of an instance's JSON state, newest last.
-- Each insert carries an idempotency key unique in its project, so a retried write finds its
-- row instead of adding another. JSON is text checked by json_valid; timestamps as in 0001.

-- migrate:up
CREATE TABLE approval_gates (
    gate_id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id TEXT NOT NULL REFERENCES projects(project_id) ON DELETE CASCADE,
    phase_id INTEGER REFERENCES phases(phase_id) ON DELETE SET NULL,
    instance_id TEXT REFERENCES instances(instance_id) ON DELETE SET NULL,
    gate_type TEXT NOT NULL CHECK (length(gate_type) > 0),
    title TEXT NOT NULL DEFAULT '',
    request TEXT NOT NULL CHECK (json_valid(request)),
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'approved', 'rejected', 'cancelled')),
    response TEXT CHECK (response IS NULL OR json_valid(response)),
    requested_by TEXT NOT NULL,
    decided_by TEXT,
    decided_at TEXT,
    idempotency_key TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (project_id, idempotency_key),
    CHECK ((status = 'pending') = (decided_at IS NULL))
);
CREATE INDEX idx_approval_gates_status ON approval_gates(project_id, status, gate_id);

CREATE TABLE command_runs (
    run_id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id TEXT NOT NULL REFERENCES projects(project_id) ON DELETE CASCADE,
    instance_id TEXT REFERENCES instances(instance_id) ON DELETE SET NULL,
    command TEXT NOT NULL CHECK (length(command) > 0),
    arguments TEXT NOT NULL DEFAULT '[]'
        CHECK (json_valid(arguments) AND json_type(arguments) = 'array'),
    cwd TEXT,
    status TEXT NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'running', 'success', 'failed', 'cancelled')),
    exit_code INTEGER,
    output TEXT NOT NULL DEFAULT '',
    error TEXT,
    duration_ms INTEGER CHECK (duration_ms IS NULL OR duration_ms >= 0),
    created_by TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    queued_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    UNIQUE (project_id, idempotency_key),
    CHECK ((status IN ('queued', 'running')) = (finished_at IS NULL))
);
CREATE INDEX idx_command_runs_status ON command_runs(project_id, status, run_id);
CREATE INDEX idx_command_runs_command ON command_runs(project_id, command, run_id);
CREATE INDEX idx_command_runs_instance ON command_runs(instance_id, run_id);

CREATE TABLE checkpoints (
    checkpoint_id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id TEXT NOT NULL REFERENCES projects(project_id) ON DELETE CASCADE,
    instance_id TEXT REFERENCES instances(instance_id) ON DELETE SET NULL,
    phase_id INTEGER REFERENCES phases(phase_id) ON DELETE SET NULL,
    generation INTEGER NOT NULL CHECK (generation >= 0),
    label TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL CHECK (json_valid(state)),
    created_by TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (project_id, idempotency_key)
);
CREATE INDEX idx_checkpoints_project ON checkpoints(project_id, checkpoint_id);
CREATE INDEX idx_checkpoints_instance ON checkpoints(instance_id, checkpoint_id);

-- migrate:down
DROP TABLE checkpoints;
DROP TABLE command_runs;
DROP TABLE approval_gates;
