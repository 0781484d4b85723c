-- Conversation sessions and their ordered event logs (see service/usecases/conversations.py).

-- name: insert_session
INSERT INTO sessions (session_id, project_id, app_name, user_id, instance_id, state,
                      created_at, updated_at)
VALUES (:session_id, :project_id, :app_name, :user_id, :instance_id, :state, $NOW, $NOW);

-- name: get_session
SELECT session_id, project_id, app_name, user_id, instance_id, state, status, next_event_seq,
       created_at, updated_at, closed_at
FROM sessions WHERE session_id = :session_id;

-- name: lock_session
-- Held until the transaction ends: appends to one session are serialized, so the sequence
-- numbers they draw are gapless and an idempotency key is looked up after the last writer.
SELECT session_id, project_id, app_name, user_id, instance_id, state, status, next_event_seq,
       created_at, updated_at, closed_at
FROM sessions WHERE session_id = :session_id
$FOR_UPDATE;

-- name: list_sessions
-- One page in session_id order (ids start with their creation time) after the cursor; an
-- empty filter means "any".
SELECT session_id, project_id, app_name, user_id, instance_id, state, status, next_event_seq,
       created_at, updated_at, closed_at
FROM sessions
WHERE project_id = :project_id
  AND (:app_name = '' OR app_name = :app_name)
  AND (:user_id = '' OR user_id = :user_id)
  AND (:status = '' OR status = :status)
  AND session_id > :after_session_id
ORDER BY session_id
LIMIT :limit;

-- name: update_session_state
UPDATE sessions SET state = :state, updated_at = $NOW WHERE session_id = :session_id;

-- name: next_event_sequence
UPDATE sessions SET next_event_seq = next_event_seq + 1, updated_at = $NOW
WHERE session_id = :session_id
RETURNING next_event_seq;

-- name: close_session
UPDATE sessions SET status = 'closed', closed_at = $NOW, updated_at = $NOW
WHERE session_id = :session_id AND status = 'open';

-- name: insert_session_event
INSERT INTO session_events (session_id, sequence, role, content, metadata, idempotency_key,
                            created_at)
VALUES (:session_id, :sequence, :role, :content, :metadata, :idempotency_key, $NOW)
RETURNING event_id;

-- name: get_session_event
SELECT event_id, session_id, sequence, role, content, metadata, idempotency_key, created_at
FROM session_events WHERE event_id = :event_id;

-- name: session_event_by_key
SELECT event_id, session_id, sequence, role, content, metadata, idempotency_key, created_at
FROM session_events WHERE session_id = :session_id AND idempotency_key = :idempotency_key;

-- name: list_session_events
SELECT event_id, session_id, sequence, role, content, metadata, idempotency_key, created_at
FROM session_events
WHERE session_id = :session_id AND sequence > :after_sequence
ORDER BY sequence
LIMIT :limit;
