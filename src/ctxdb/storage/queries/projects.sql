-- name: insert_project
INSERT INTO projects (project_id, name, description, total_story_points, repo_key, metadata,
                      created_at, updated_at)
VALUES (:project_id, :name, :description, :total_story_points, :repo_key, :metadata, $NOW, $NOW)
ON CONFLICT (project_id) DO NOTHING;

-- name: get_project
SELECT p.project_id, p.name, p.description, p.total_story_points, p.completed_story_points,
       (SELECT count(*) FROM phases ph WHERE ph.project_id = p.project_id) AS total_phases,
       p.status, p.repo_key, p.metadata, p.created_at, p.updated_at, p.archived_at
FROM projects p
WHERE p.project_id = :project_id;

-- name: count_active_projects
SELECT count(*) AS n FROM projects WHERE status = 'active';

-- name: list_projects
SELECT p.project_id, p.name, p.description, p.total_story_points, p.completed_story_points,
       (SELECT count(*) FROM phases ph WHERE ph.project_id = p.project_id) AS total_phases,
       p.status, p.repo_key, p.metadata, p.created_at, p.updated_at, p.archived_at
FROM projects p
WHERE p.status = 'active' OR :include_archived = 1
ORDER BY p.created_at, p.project_id;

-- name: update_project
UPDATE projects
SET name = coalesce(:name, name),
    description = coalesce(:description, description),
    total_story_points = coalesce(:total_story_points, total_story_points),
    completed_story_points = coalesce(:completed_story_points, completed_story_points),
    metadata = coalesce(:metadata, metadata),
    updated_at = $NOW
WHERE project_id = :project_id;

-- name: archive_project
-- The row locked FOR UPDATE first ($FOR_UPDATE): on PostgreSQL stores read it under FOR KEY
-- SHARE only (context.sql's store_drawn_item), which the UPDATE's own lock would not wait
-- for; FOR UPDATE waits for every store in flight, and a store after it finds the project
-- archived and writes nothing.
UPDATE projects SET status = 'archived', archived_at = $NOW, updated_at = $NOW
WHERE project_id IN (SELECT project_id FROM projects
                     WHERE project_id = :project_id AND (status = 'active') IS TRUE $FOR_UPDATE)
  AND (status = 'active') IS TRUE;

-- name: next_sequence
-- Past the counter and past every number the project's items hold (see context.sql's
-- draw_item).
UPDATE projects SET next_sequence = 1 + (SELECT max(n) FROM (
           SELECT next_sequence AS n FROM projects WHERE project_id = :project_id
           UNION ALL SELECT max(sequence_number) FROM context_items
                     WHERE project_id = :project_id
           UNION ALL SELECT max(sequence_number) FROM archived_context_items
                     WHERE project_id = :project_id) numbers),
       updated_at = $NOW
WHERE project_id = :project_id AND (status = 'active') IS TRUE
RETURNING next_sequence;

-- name: draw_sequence
-- next_sequence, for a statement that reads the number itself (context.sql's insert_next_item).
UPDATE projects SET next_sequence = next_sequence + 1, updated_at = $NOW
WHERE project_id = :project_id AND (status = 'active') IS TRUE;

-- name: project_summary
-- The seed's v_project_summary (migration 0015), for the projects that are not archived.
-- total_snapshots is the seed's name for the live context items; context_items says so.
SELECT v.project_id, v.name, v.total_story_points, v.completed_story_points,
       v.active_instances, v.total_snapshots AS context_items, v.total_snapshots,
       v.total_tokens, v.created_at, v.updated_at
FROM v_project_summary v
JOIN projects p ON p.project_id = v.project_id
WHERE p.status = 'active'
ORDER BY v.created_at, v.project_id;
