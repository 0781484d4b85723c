-- ctxdb schema version 5 for SQLite: a work queue of tasks with leases.
-- tasks: one unit of work of a project (optionally a subtask of a parent), claimed by one
-- agent instance at a time under a lease that expires; epoch counts the hands the lease went
-- through, and a write carrying an older epoch is refused (fencing). task_dependencies: a task
-- becomes ready once every task it depends on is done. JSON is text checked by json_valid;
-- timestamps as in 0001.

-- migrate:up
CREATE TABLE tasks (
    task_id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id TEXT NOT NULL REFERENCES projects(project_id) ON DELETE CASCADE,
    parent_task_id INTEGER REFERENCES tasks(task_id) ON DELETE SET NULL,
    title TEXT NOT NULL CHECK (length(title) > 0),
    description TEXT NOT NULL DEFAULT '',
    priority INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'ready'
        CHECK (status IN ('pending', 'ready', 'claimed', 'running', 'done', 'failed',
                          'blocked', 'cancelled')),
    result TEXT CHECK (result IS NULL OR json_valid(result)),
    error TEXT,
    lease_owner TEXT REFERENCES instances(instance_id) ON DELETE SET NULL,
    lease_expires_at TEXT,
    epoch INTEGER NOT NULL DEFAULT 0 CHECK (epoch >= 0),
    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    completed_at TEXT
);
CREATE INDEX idx_tasks_claim ON tasks(project_id, status, priority DESC, task_id);
CREATE INDEX idx_tasks_lease_owner ON tasks(lease_owner);

CREATE TABLE task_dependencies (
    task_id INTEGER NOT NULL REFERENCES tasks(task_id) ON DELETE CASCADE,
    depends_on_task_id INTEGER NOT NULL REFERENCES tasks(task_id) ON DELETE CASCADE,
    PRIMARY KEY (task_id, depends_on_task_id),
    CHECK (task_id <> depends_on_task_id)
);
CREATE INDEX idx_task_dependencies_on ON task_dependencies(depends_on_task_id);

-- migrate:down
DROP TABLE task_dependencies;
DROP TABLE tasks;
