-- ctxdb schema version 12 for PostgreSQL: an index leading with the column of every foreign key
-- that had none. Deleting a parent row looks up its children by the key (to refuse, cascade
-- or set NULL): without an index each delete scans the whole child table. `ctxdb gc`
-- removing 300 ended instances over 200,000 context items held the SQLite write lock for
-- 15 s, most of it scanning context_items for created_by (docs/retention.md).
-- tests/test_foreign_key_indexes.py reads the schema and fails on a foreign key without one.
-- superseded_by and parent_task_id are NULL on most rows: their indexes leave those out
-- (every lookup by the key implies the column IS NOT NULL, so the partial index serves it).

-- migrate:up
CREATE INDEX idx_instances_phase ON instances(phase_id);
CREATE INDEX idx_items_created_by ON context_items(created_by);
CREATE INDEX idx_items_phase ON context_items(phase_id);
CREATE INDEX idx_items_superseded_by ON context_items(superseded_by)
    WHERE superseded_by IS NOT NULL;
CREATE INDEX idx_injections_handoff ON injections(handoff_id);
CREATE INDEX idx_transcripts_project ON transcripts(project_id);
CREATE INDEX idx_transcripts_instance ON transcripts(instance_id);
CREATE INDEX idx_api_usage_instance ON api_usage(instance_id);
CREATE INDEX idx_compactions_project ON compactions(project_id);
CREATE INDEX idx_compactions_instance ON compactions(instance_id);
CREATE INDEX idx_sessions_instance ON sessions(instance_id);
CREATE INDEX idx_tasks_parent ON tasks(parent_task_id) WHERE parent_task_id IS NOT NULL;
CREATE INDEX idx_approval_gates_instance ON approval_gates(instance_id);
CREATE INDEX idx_approval_gates_phase ON approval_gates(phase_id);
CREATE INDEX idx_checkpoints_phase ON checkpoints(phase_id);

-- migrate:down
DROP INDEX idx_checkpoints_phase;
DROP INDEX idx_approval_gates_phase;
DROP INDEX idx_approval_gates_instance;
DROP INDEX idx_tasks_parent;
DROP INDEX idx_sessions_instance;
DROP INDEX idx_compactions_instance;
DROP INDEX idx_compactions_project;
DROP INDEX idx_api_usage_instance;
DROP INDEX idx_transcripts_instance;
DROP INDEX idx_transcripts_project;
DROP INDEX idx_injections_handoff;
DROP INDEX idx_items_superseded_by;
DROP INDEX idx_items_phase;
DROP INDEX idx_items_created_by;
DROP INDEX idx_instances_phase;
