-- Retention (service/operations/retention.py, `ctxdb gc`). Ages are seconds before the database clock;
-- :project_id '' means every project. Each batch runs in its own transaction.

-- name: count_expired_memories
SELECT count(*) AS n FROM memories
WHERE expires_at IS NOT NULL AND expires_at <= $NOW
  AND (project_id = :project_id OR :project_id = '');

-- name: ended_instances
-- Completed or crashed instances that ended before the cutoff and hold no live task lease.
-- Locked on PostgreSQL: an instance revived meanwhile waits until gc's transaction is done
-- (SQLite's write lock already keeps it out).
SELECT instance_id, project_id, status, coalesce(ended_at, last_heartbeat) AS ended_at
FROM instances i
WHERE i.status IN ('completed', 'crashed')
  AND coalesce(i.ended_at, i.last_heartbeat) < $AGO(:age_seconds)
  AND (i.project_id = :project_id OR :project_id = '')
  AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.lease_owner = i.instance_id
                  AND t.status IN ('claimed', 'running'))
ORDER BY i.instance_id
LIMIT :limit
$FOR_UPDATE;

-- Forgetting an ended instance, a bounded number of rows at a time (each up to :limit rows):
-- what the foreign keys' ON DELETE actions would do all at once when the instance is deleted
-- (SET NULL; message deliveries CASCADE), split so that no transaction of gc grows with the
-- number of rows that name the instance. The instance is deleted once none is left.

-- name: forget_instance_in_context_items
UPDATE context_items SET created_by = NULL
WHERE item_id IN (SELECT item_id FROM context_items
                  WHERE created_by = :instance_id LIMIT :limit);

-- name: forget_instance_in_handoffs
UPDATE handoffs SET instance_id = NULL
WHERE handoff_id IN (SELECT handoff_id FROM handoffs
                     WHERE instance_id = :instance_id LIMIT :limit);

-- name: forget_instance_in_injections
UPDATE injections SET instance_id = NULL
WHERE injection_id IN (SELECT injection_id FROM injections
                       WHERE instance_id = :instance_id LIMIT :limit);

-- name: forget_instance_in_transcripts
UPDATE transcripts SET instance_id = NULL
WHERE transcript_id IN (SELECT transcript_id FROM transcripts
                        WHERE instance_id = :instance_id LIMIT :limit);

-- name: forget_instance_in_api_usage
UPDATE api_usage SET instance_id = NULL
WHERE usage_id IN (SELECT usage_id FROM api_usage
                   WHERE instance_id = :instance_id LIMIT :limit);

-- name: forget_instance_in_compactions
UPDATE compactions SET instance_id = NULL
WHERE compaction_id IN (SELECT compaction_id FROM compactions
                        WHERE instance_id = :instance_id LIMIT :limit);

-- name: forget_instance_in_sessions
UPDATE sessions SET instance_id = NULL
WHERE session_id IN (SELECT session_id FROM sessions
                     WHERE instance_id = :instance_id LIMIT :limit);

-- name: forget_instance_in_tasks
UPDATE tasks SET lease_owner = NULL
WHERE task_id IN (SELECT task_id FROM tasks
                  WHERE lease_owner = :instance_id LIMIT :limit);

-- name: forget_instance_in_approval_gates
UPDATE approval_gates SET instance_id = NULL
WHERE gate_id IN (SELECT gate_id FROM approval_gates
                  WHERE instance_id = :instance_id LIMIT :limit);

-- name: forget_instance_in_command_runs
UPDATE command_runs SET instance_id = NULL
WHERE run_id IN (SELECT run_id FROM command_runs
                 WHERE instance_id = :instance_id LIMIT :limit);

-- name: forget_instance_in_checkpoints
UPDATE checkpoints SET instance_id = NULL
WHERE checkpoint_id IN (SELECT checkpoint_id FROM checkpoints
                        WHERE instance_id = :instance_id LIMIT :limit);

-- name: forget_instance_in_message_deliveries
DELETE FROM message_deliveries
WHERE instance_id = :instance_id
  AND message_id IN (SELECT message_id FROM message_deliveries
                     WHERE instance_id = :instance_id LIMIT :limit);

-- name: delete_ended_instance
-- The conditions again, so that an instance revived meanwhile is kept (PostgreSQL re-checks
-- them on the row it locks). Rows that point at it keep their history: ON DELETE SET NULL.
DELETE FROM instances
WHERE instance_id = :instance_id AND status IN ('completed', 'crashed')
  AND coalesce(ended_at, last_heartbeat) < $AGO(:age_seconds);

-- name: closed_sessions_with_events
-- Sessions closed before the cutoff that still have events, with how many.
SELECT s.session_id, s.project_id, count(*) AS events
FROM sessions s JOIN session_events e ON e.session_id = s.session_id
WHERE s.status = 'closed' AND s.closed_at < $AGO(:age_seconds)
  AND (s.project_id = :project_id OR :project_id = '')
GROUP BY s.session_id, s.project_id
ORDER BY s.session_id
LIMIT :limit;

-- name: closed_sessions_holding_events
-- The same sessions, without counting their events (that is work proportional to them), in
-- id order from :from_session_id on (a session whose events take more than one batch is
-- visited again).
SELECT s.session_id
FROM sessions s
WHERE s.status = 'closed' AND s.closed_at < $AGO(:age_seconds)
  AND (s.project_id = :project_id OR :project_id = '')
  AND s.session_id >= :from_session_id
  AND EXISTS (SELECT 1 FROM session_events e WHERE e.session_id = s.session_id)
ORDER BY s.session_id
LIMIT :limit;

-- name: delete_session_events
-- Up to :limit of the session's events, the oldest first.
DELETE FROM session_events
WHERE event_id IN (SELECT event_id FROM session_events WHERE session_id = :session_id
                   ORDER BY sequence LIMIT :limit)
  AND EXISTS (SELECT 1 FROM sessions s WHERE s.session_id = :session_id
              AND s.status = 'closed' AND s.closed_at < $AGO(:age_seconds));

-- name: archive_candidates
-- Items created before the cutoff with an archivable priority (:p1 … :p4, unused ones ''),
-- in id order after a cursor; superseded_by to keep supersede chains whole.
SELECT item_id, project_id, priority, superseded_by
FROM context_items
WHERE created_at < $AGO(:age_seconds)
  AND priority IN (:p1, :p2, :p3, :p4)
  AND (project_id = :project_id OR :project_id = '')
  AND item_id > :after_item_id
ORDER BY item_id
LIMIT :limit
$FOR_UPDATE;

-- name: archive_candidate_referrers
-- Items that point (superseded_by) at a candidate in the id range of one batch.
SELECT r.item_id, r.superseded_by
FROM context_items r JOIN context_items c ON r.superseded_by = c.item_id
WHERE c.item_id > :after_item_id AND c.item_id <= :last_item_id;

-- name: copy_item_to_archive
INSERT INTO archived_context_items (
    item_id, project_id, phase_id, sequence_number, content_type, priority, token_count,
    content, metadata, created_by, idempotency_key, state, superseded_by, deleted_at,
    deleted_by, created_at, archived_at, archived_by)
SELECT item_id, project_id, phase_id, sequence_number, content_type, priority, token_count,
       content, metadata, created_by, idempotency_key, state, superseded_by, deleted_at,
       deleted_by, created_at, $NOW, :actor
FROM context_items WHERE item_id = :item_id;

-- name: delete_archived_item
DELETE FROM context_items WHERE item_id = :item_id;

-- name: get_archived_item
SELECT item_id, project_id, phase_id, sequence_number, content_type, priority, token_count,
       content, metadata, created_by, idempotency_key, state, superseded_by, deleted_at,
       deleted_by, created_at, archived_at, archived_by
FROM archived_context_items WHERE item_id = :item_id
$FOR_UPDATE;

-- name: list_archived_items
SELECT item_id, project_id, phase_id, sequence_number, content_type, priority, token_count,
       content, metadata, created_by, state, superseded_by, created_at, archived_at,
       archived_by
FROM archived_context_items
WHERE project_id = :project_id AND item_id > :after_item_id
ORDER BY item_id
LIMIT :limit;

-- name: live_item_with_key
SELECT item_id FROM context_items
WHERE project_id = :project_id AND idempotency_key = :idempotency_key;

-- name: restore_archived_item
-- Back into context_items unchanged, except for references to a phase or an instance that
-- has been removed meanwhile (NULL, as ON DELETE SET NULL would have made them).
INSERT INTO context_items (
    item_id, project_id, phase_id, sequence_number, content_type, priority, token_count,
    content, metadata, created_by, idempotency_key, state, superseded_by, deleted_at,
    deleted_by, created_at)
SELECT a.item_id, a.project_id,
       (SELECT p.phase_id FROM phases p WHERE p.phase_id = a.phase_id),
       a.sequence_number, a.content_type, a.priority, a.token_count, a.content, a.metadata,
       (SELECT i.instance_id FROM instances i WHERE i.instance_id = a.created_by),
       a.idempotency_key, a.state, a.superseded_by, a.deleted_at, a.deleted_by, a.created_at
FROM archived_context_items a WHERE a.item_id = :item_id;

-- name: forget_archived_item
DELETE FROM archived_context_items WHERE item_id = :item_id;

-- name: forget_instance_in_observations
UPDATE observations SET instance_id = NULL
WHERE observation_id IN (SELECT observation_id FROM observations
                         WHERE instance_id = :instance_id LIMIT :limit);

-- name: count_old_idempotency_keys
-- Keys claimed before the cutoff (of one project, or of all and the fleet-wide ones).
SELECT count(*) AS n FROM idempotency_keys
WHERE created_at < $AGO(:age_seconds) AND (project_id = :project_id OR :project_id = '');

-- name: delete_old_idempotency_keys
-- Up to :limit of those keys, the oldest first. A retry under a removed key creates anew.
DELETE FROM idempotency_keys
WHERE (project_id, operation, idempotency_key) IN (
    SELECT project_id, operation, idempotency_key FROM idempotency_keys
    WHERE created_at < $AGO(:age_seconds) AND (project_id = :project_id OR :project_id = '')
    ORDER BY created_at LIMIT :limit);
