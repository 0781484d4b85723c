-- Checkpoints of an instance's state (see service/usecases/checkpoints.py).

-- name: insert_checkpoint
INSERT INTO checkpoints (project_id, instance_id, phase_id, generation, label, state,
                         created_by, idempotency_key, created_at)
VALUES (:project_id, :instance_id, :phase_id, :generation, :label, :state, :created_by,
        :idempotency_key, $NOW)
RETURNING checkpoint_id;

-- name: get_checkpoint
SELECT checkpoint_id, project_id, instance_id, phase_id, generation, label, state,
       created_by, idempotency_key, created_at
FROM checkpoints WHERE checkpoint_id = :checkpoint_id;

-- name: checkpoint_by_key
SELECT checkpoint_id FROM checkpoints
WHERE project_id = :project_id AND idempotency_key = :idempotency_key;

-- name: list_checkpoints
-- One page in checkpoint_id (creation) order after the cursor; an empty filter means "any".
SELECT checkpoint_id, project_id, instance_id, phase_id, generation, label, state,
       created_by, idempotency_key, created_at
FROM checkpoints
WHERE project_id = :project_id
  AND (:instance_id = '' OR instance_id = :instance_id)
  AND (:label = '' OR label = :label)
  AND checkpoint_id > :after_checkpoint_id
ORDER BY checkpoint_id
LIMIT :limit;

-- name: latest_checkpoint
-- The newest checkpoint of the project, of one instance, and/or with one label.
SELECT checkpoint_id, project_id, instance_id, phase_id, generation, label, state,
       created_by, idempotency_key, created_at
FROM checkpoints
WHERE project_id = :project_id
  AND (:instance_id = '' OR instance_id = :instance_id)
  AND (:label = '' OR label = :label)
ORDER BY checkpoint_id DESC
LIMIT 1;
