-- name: insert_instance
INSERT INTO instances (instance_id, project_id, phase_id, hostname, process_id, client,
                       session_id, worktree, branch, model, context_window, metadata,
                       started_at, last_heartbeat)
VALUES (:instance_id, :project_id, :phase_id, :hostname, :process_id, :client, :session_id,
        :worktree, :branch, :model, :context_window, :metadata, $NOW, $NOW)
-- The row as get_instance reads it: a registration needs no second statement to see it.
RETURNING instance_id, project_id, phase_id, hostname, process_id, client, session_id, worktree,
          branch, model, context_window, current_token_usage, generation, status, started_at,
          last_heartbeat, ended_at, metadata;

-- name: insert_instance_audited
-- insert_instance with its audit row (instance.launch, :details as session_start.register
-- writes them on SQLite), in one statement where one statement may write several tables
-- (PostgreSQL; Tx.chains_writes).
WITH registered AS (
$QUERY(insert_instance)
)
INSERT INTO audit_log (occurred_at, actor, action, entity_type, entity_id, project_id, details)
SELECT $NOW, :actor, 'instance.launch', 'instance', instance_id, project_id,
       CAST(:details AS JSONB)
FROM registered;

-- name: get_instance
SELECT instance_id, project_id, phase_id, hostname, process_id, client, session_id, worktree,
       branch, model, context_window, current_token_usage, generation, status, started_at,
       last_heartbeat, ended_at, metadata
FROM instances WHERE instance_id = :instance_id;

-- name: lock_instance
SELECT instance_id, project_id, phase_id, context_window, current_token_usage, generation,
       status
FROM instances WHERE instance_id = :instance_id $FOR_UPDATE;

-- name: list_instances
-- silent: a live instance that has not beaten for :stale_after seconds, which crash
-- detection will mark crashed at its next run (until then its status still says live).
SELECT instance_id, project_id, phase_id, hostname, process_id, client, session_id, worktree,
       branch, model, context_window, current_token_usage, generation, status, started_at,
       last_heartbeat, ended_at, metadata,
       CASE WHEN status IN ('active', 'idle') AND last_heartbeat < $AGO(:stale_after)
            THEN 1 ELSE 0 END AS silent
FROM instances
WHERE (project_id = :project_id OR :project_id = '')
  AND (status = :status OR :status = '')
ORDER BY started_at, instance_id;

-- name: list_live_instances
SELECT instance_id, project_id, phase_id, hostname, process_id, client, session_id, worktree,
       branch, model, context_window, current_token_usage, generation, status, started_at,
       last_heartbeat, ended_at, metadata
FROM instances
WHERE status IN ('active', 'idle') AND (project_id = :project_id OR :project_id = '')
ORDER BY started_at, instance_id;

-- name: lock_project_instances
-- Serializes what counts a project's live instances (InstanceService.make_room), until COMMIT.
-- Not a lock on the project's row: FOR UPDATE would hold back every insert that refers to
-- the project (its foreign key check), and even FOR NO KEY UPDATE every store's sequence draw.
SELECT $PROJECT_LOCK(:project_id) AS locked;

-- name: count_live_instances
SELECT count(*) AS n FROM instances
WHERE project_id = :project_id AND status IN ('active', 'idle');

-- name: reap_stale_and_count_live
-- reap_stale_instances of the project :project_id, then count_live_instances, in one
-- statement where one statement may write several tables (PostgreSQL; Tx.chains_writes;
-- InstanceService.make_room): the count sees the rows as they were before the update (one
-- snapshot), so the ones it marks crashed are taken off. One row per instance marked (its
-- columns as reap_stale_instances returns them), each with n; none marked: one, NULLs and n.
WITH reaped AS (
$QUERY(reap_stale_instances)
), live AS (
$QUERY(count_live_instances)
)
SELECT live.n - (SELECT count(*) FROM reaped) AS n, reaped.instance_id, reaped.project_id,
       reaped.last_heartbeat
FROM live LEFT JOIN reaped ON TRUE;

-- name: heartbeat_instance
UPDATE instances
SET last_heartbeat = $NOW,
    status = 'active',
    phase_id = coalesce(:phase_id, phase_id),
    ended_at = NULL
WHERE instance_id = :instance_id AND status <> 'completed';

-- name: revive_instance
-- Re-registering an id brings the instance back whatever its status, ended ones included
-- (a resumed session); heartbeat_instance deliberately leaves ended instances alone.
UPDATE instances
SET last_heartbeat = $NOW,
    status = 'active',
    phase_id = coalesce(:phase_id, phase_id),
    ended_at = NULL
WHERE instance_id = :instance_id
-- The row as get_instance reads it.
RETURNING instance_id, project_id, phase_id, hostname, process_id, client, session_id, worktree,
          branch, model, context_window, current_token_usage, generation, status, started_at,
          last_heartbeat, ended_at, metadata;

-- name: revive_for_prompt
-- A prompt: revive_instance and, when the transcript told it (:tokens, already capped to the
-- context window), the context in use, in one statement; the row as get_instance reads it.
UPDATE instances
SET last_heartbeat = $NOW,
    status = 'active',
    ended_at = NULL,
    current_token_usage = coalesce(:tokens, current_token_usage)
WHERE instance_id = :instance_id
RETURNING instance_id, project_id, phase_id, hostname, process_id, client, session_id, worktree,
          branch, model, context_window, current_token_usage, generation, status, started_at,
          last_heartbeat, ended_at, metadata;

-- name: set_instance_status
UPDATE instances
SET status = :status,
    ended_at = CASE WHEN :status IN ('crashed', 'completed') THEN $NOW ELSE NULL END
WHERE instance_id = :instance_id;

-- name: reap_stale_instances
UPDATE instances SET status = 'crashed', ended_at = $NOW
WHERE status IN ('active', 'idle') AND last_heartbeat < $AGO(:stale_after)
  AND (project_id = :project_id OR :project_id = '')
RETURNING instance_id, project_id, last_heartbeat;

-- name: set_token_usage
UPDATE instances SET current_token_usage = :tokens, last_heartbeat = $NOW
WHERE instance_id = :instance_id;

-- name: clear_token_usage
UPDATE instances
SET current_token_usage = 0, generation = generation + 1, last_heartbeat = $NOW,
    status = 'active'
WHERE instance_id = :instance_id
RETURNING generation;
