-- ctxdb import (see service/operations/imports.py): the rows an import writes keep the times and
-- numbers of their source, so these inserts take them as parameters ($NOW when absent).

-- name: imported_items
-- The live items earlier file imports wrote into a project (their keys start with "import:").
SELECT item_id, idempotency_key FROM context_items
WHERE project_id = :project_id AND state = 'active' AND idempotency_key LIKE 'import:%'
ORDER BY item_id;

-- name: insert_legacy_project
INSERT INTO projects (project_id, name, description, total_story_points,
                      completed_story_points, metadata, created_at, updated_at)
VALUES (:project_id, :name, :description, :total_story_points, :completed_story_points,
        :metadata, coalesce(:created_at, $NOW), coalesce(:updated_at, :created_at, $NOW))
ON CONFLICT (project_id) DO NOTHING;

-- name: insert_legacy_phase
INSERT INTO phases (project_id, phase_number, name, description, story_points, status,
                    started_at, completed_at, metadata, created_at)
VALUES (:project_id, :phase_number, :name, :description, :story_points, :status,
        :started_at, :completed_at, :metadata, coalesce(:created_at, $NOW))
RETURNING phase_id;

-- name: insert_legacy_instance
INSERT INTO instances (instance_id, project_id, phase_id, hostname, process_id, client,
                       context_window, current_token_usage, status, metadata, started_at,
                       last_heartbeat, ended_at)
VALUES (:instance_id, :project_id, :phase_id, :hostname, :process_id, :client,
        :context_window, :current_token_usage, :status, :metadata,
        coalesce(:started_at, $NOW), coalesce(:last_heartbeat, :started_at, $NOW), :ended_at);

-- name: insert_legacy_item
INSERT INTO context_items (project_id, phase_id, sequence_number, content_type, priority,
                           token_count, content, metadata, idempotency_key, created_at)
VALUES (:project_id, :phase_id, :sequence_number, :content_type, :priority, :token_count,
        :content, :metadata, :idempotency_key, coalesce(:created_at, $NOW))
ON CONFLICT (project_id, idempotency_key) DO NOTHING
RETURNING item_id;

-- name: project_next_sequence
SELECT next_sequence FROM projects WHERE project_id = :project_id $FOR_UPDATE;

-- name: raise_next_sequence
-- After items were written with their own sequence numbers: later stores go after them.
UPDATE projects
SET next_sequence = CASE WHEN next_sequence < :sequence_number THEN :sequence_number
                         ELSE next_sequence END
WHERE project_id = :project_id;
