-- The work queue: tasks with leases and dependencies (see service/usecases/tasks.py).

-- name: insert_task
INSERT INTO tasks (project_id, parent_task_id, title, description, priority, status,
                   created_by, created_at, updated_at)
VALUES (:project_id, :parent_task_id, :title, :description, :priority, :status, :created_by,
        $NOW, $NOW)
RETURNING task_id;

-- name: insert_task_dependency
INSERT INTO task_dependencies (task_id, depends_on_task_id)
VALUES (:task_id, :depends_on_task_id);

-- name: get_task
-- lease_live: 1 while the lease has not expired by the database clock.
SELECT task_id, project_id, parent_task_id, title, description, priority, status, result,
       error, lease_owner, lease_expires_at, epoch, attempts, created_by, created_at,
       updated_at, completed_at,
       CASE WHEN lease_expires_at > $NOW THEN 1 ELSE 0 END AS lease_live
FROM tasks WHERE task_id = :task_id;

-- name: lock_task
-- Held until the transaction ends: fenced writes to one task are serialized.
SELECT task_id, project_id, parent_task_id, title, description, priority, status, result,
       error, lease_owner, lease_expires_at, epoch, attempts, created_by, created_at,
       updated_at, completed_at,
       CASE WHEN lease_expires_at > $NOW THEN 1 ELSE 0 END AS lease_live
FROM tasks WHERE task_id = :task_id
$FOR_UPDATE;

-- name: task_dependency_ids
SELECT depends_on_task_id FROM task_dependencies WHERE task_id = :task_id
ORDER BY depends_on_task_id;

-- name: list_tasks
-- One page in task_id order after the cursor; an empty filter means "any".
SELECT task_id, project_id, parent_task_id, title, description, priority, status, result,
       error, lease_owner, lease_expires_at, epoch, attempts, created_by, created_at,
       updated_at, completed_at,
       CASE WHEN lease_expires_at > $NOW THEN 1 ELSE 0 END AS lease_live
FROM tasks
WHERE project_id = :project_id
  AND (:status = '' OR status = :status)
  AND (:lease_owner = '' OR lease_owner = :lease_owner)
  AND (:parent_task_id < 0 OR parent_task_id = :parent_task_id)
  AND task_id > :after_task_id
ORDER BY task_id
LIMIT :limit;

-- name: next_claimable_task
-- The highest-priority task that is ready, or whose holder's lease ran out (the reclaim).
-- SKIP LOCKED: PostgreSQL workers pass over a task another claim is taking instead of
-- waiting for it; on SQLite the write lock already serializes claims.
SELECT task_id FROM tasks
WHERE project_id = :project_id
  AND (status = 'ready'
       OR (status IN ('claimed', 'running') AND lease_expires_at <= $NOW))
ORDER BY priority DESC, task_id
LIMIT 1
$SKIP_LOCKED;

-- name: claim_task
UPDATE tasks
SET status = 'claimed', lease_owner = :instance_id, lease_expires_at = $IN(:lease_seconds),
    epoch = epoch + 1, attempts = attempts + 1, updated_at = $NOW
WHERE task_id = :task_id;

-- name: start_task
UPDATE tasks SET status = 'running', updated_at = $NOW WHERE task_id = :task_id;

-- name: renew_task_lease
UPDATE tasks SET lease_expires_at = $IN(:lease_seconds), updated_at = $NOW
WHERE task_id = :task_id;

-- name: finish_task
-- done or failed: the lease ends with the task.
UPDATE tasks
SET status = :status, result = :result, error = :error, lease_expires_at = NULL,
    completed_at = $NOW, updated_at = $NOW
WHERE task_id = :task_id;

-- name: requeue_task
-- Back to the queue; the epoch moves on so that the former holder's writes are stale.
UPDATE tasks
SET status = 'ready', lease_owner = NULL, lease_expires_at = NULL, epoch = epoch + 1,
    updated_at = $NOW
WHERE task_id = :task_id;

-- name: cancel_task
UPDATE tasks
SET status = 'cancelled', lease_owner = NULL, lease_expires_at = NULL, epoch = epoch + 1,
    completed_at = $NOW, updated_at = $NOW
WHERE task_id = :task_id;

-- name: unblock_dependants
-- Pending tasks that depend on :task_id and on nothing that is not done become ready.
UPDATE tasks SET status = 'ready', updated_at = $NOW
WHERE status = 'pending'
  AND task_id IN (SELECT d.task_id FROM task_dependencies d
                  WHERE d.depends_on_task_id = :task_id)
  AND NOT EXISTS (SELECT 1 FROM task_dependencies d
                  JOIN tasks t ON t.task_id = d.depends_on_task_id
                  WHERE d.task_id = tasks.task_id AND t.status <> 'done')
RETURNING task_id;

-- name: block_dependants
-- Pending tasks that depend on :task_id, which failed or was cancelled, can never run.
UPDATE tasks SET status = 'blocked', updated_at = $NOW
WHERE status = 'pending'
  AND task_id IN (SELECT d.task_id FROM task_dependencies d
                  WHERE d.depends_on_task_id = :task_id)
RETURNING task_id;

-- name: release_tasks_of_instance
-- The leases of a crashed instance: its claimed and running tasks go back to the queue.
UPDATE tasks
SET status = 'ready', lease_owner = NULL, lease_expires_at = NULL, epoch = epoch + 1,
    updated_at = $NOW
WHERE lease_owner = :instance_id AND status IN ('claimed', 'running')
RETURNING task_id, project_id, epoch;
