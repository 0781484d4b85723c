-- name: insert_handoff
INSERT INTO handoffs (project_id, instance_id, generation, kind, summary, next_steps,
                      working_set, tokens_before, idempotency_key, created_at)
VALUES (:project_id, :instance_id, :generation, :kind, :summary, :next_steps, :working_set,
        :tokens_before, :idempotency_key, $NOW)
ON CONFLICT (idempotency_key) DO NOTHING
RETURNING handoff_id;

-- name: handoff_by_key
SELECT handoff_id FROM handoffs WHERE idempotency_key = :idempotency_key;

-- name: get_handoff
SELECT handoff_id, project_id, instance_id, generation, kind, summary, next_steps,
       working_set, tokens_before, created_at
FROM handoffs WHERE handoff_id = :handoff_id;

-- name: latest_handoff_of_instance
SELECT handoff_id, project_id, instance_id, generation, kind, summary, next_steps,
       working_set, tokens_before, created_at
FROM handoffs WHERE instance_id = :instance_id
ORDER BY handoff_id DESC LIMIT 1;

-- name: recent_handoffs_of_project
SELECT handoff_id, project_id, instance_id, generation, kind, summary, next_steps,
       working_set, tokens_before, created_at
FROM handoffs WHERE project_id = :project_id
ORDER BY handoff_id DESC LIMIT :limit;

-- name: handoffs_of_instance
-- An instance's handoffs, newest first, a page at a time (those before :before_id, if any).
SELECT handoff_id, project_id, instance_id, generation, kind, summary, next_steps,
       working_set, tokens_before, created_at
FROM handoffs
WHERE instance_id = :instance_id
  AND (CAST(:before_id AS BIGINT) IS NULL OR handoff_id < :before_id)
ORDER BY handoff_id DESC LIMIT :limit;
