-- name: insert_phase
INSERT INTO phases (project_id, phase_number, name, description, story_points, metadata,
                    created_at)
VALUES (:project_id, :phase_number, :name, :description, :story_points, :metadata, $NOW)
RETURNING phase_id;

-- name: phase_by_number
SELECT phase_id FROM phases WHERE project_id = :project_id AND phase_number = :phase_number;

-- name: get_phase
SELECT phase_id, project_id, phase_number, name, description, story_points, status,
       started_at, completed_at, blocked_reason, metadata, created_at
FROM phases WHERE phase_id = :phase_id;

-- name: list_phases
SELECT phase_id, project_id, phase_number, name, description, story_points, status,
       started_at, completed_at, blocked_reason, metadata, created_at
FROM phases WHERE project_id = :project_id ORDER BY phase_number;

-- name: set_phase_status
UPDATE phases
SET status = :status,
    started_at = CASE WHEN :status = 'active' THEN coalesce(started_at, $NOW) ELSE started_at END,
    completed_at = CASE WHEN :status = 'completed' THEN $NOW ELSE completed_at END,
    blocked_reason = :blocked_reason
WHERE phase_id = :phase_id;

-- name: current_phase
-- The active phase with the highest number: the one the project is working on now.
SELECT phase_id, project_id, phase_number, name, description, story_points, status,
       started_at, completed_at, blocked_reason, metadata, created_at
FROM phases WHERE project_id = :project_id AND status = 'active'
ORDER BY phase_number DESC LIMIT 1;
