-- Command runs: queued -> running -> success | failed | cancelled (see service/usecases/commands.py).

-- name: insert_command_run
-- A run recorded after it finished (:status success, failed or cancelled) started
-- :duration_seconds before now when that is known.
INSERT INTO command_runs (project_id, instance_id, command, arguments, cwd, status, exit_code,
                          output, error, duration_ms, created_by, idempotency_key, queued_at,
                          started_at, finished_at)
VALUES (:project_id, :instance_id, :command, :arguments, :cwd, :status, :exit_code, :output,
        :error, :duration_ms, :created_by, :idempotency_key,
        COALESCE($AGO(:duration_seconds), $NOW),
        CASE WHEN :status = 'queued' THEN NULL
             WHEN :status = 'running' THEN $NOW
             ELSE $AGO(:duration_seconds) END,
        CASE WHEN :status IN ('queued', 'running') THEN NULL ELSE $NOW END)
RETURNING run_id;

-- name: get_command_run
SELECT run_id, project_id, instance_id, command, arguments, cwd, status, exit_code, output,
       error, duration_ms, created_by, idempotency_key, queued_at, started_at, finished_at
FROM command_runs WHERE run_id = :run_id;

-- name: lock_command_run
-- Held until the transaction ends: transitions of one run are serialized.
SELECT run_id, project_id, instance_id, command, arguments, cwd, status, exit_code, output,
       error, duration_ms, created_by, idempotency_key, queued_at, started_at, finished_at
FROM command_runs WHERE run_id = :run_id
$FOR_UPDATE;

-- name: command_run_by_key
SELECT run_id FROM command_runs
WHERE project_id = :project_id AND idempotency_key = :idempotency_key;

-- name: list_command_runs
-- One page in run_id order after the cursor; an empty filter means "any". The output is left
-- out of listings (it can be large): get one run to read it.
SELECT run_id, project_id, instance_id, command, arguments, cwd, status, exit_code,
       error, duration_ms, created_by, idempotency_key, queued_at, started_at, finished_at
FROM command_runs
WHERE project_id = :project_id
  AND (:status = '' OR status = :status)
  AND (:command = '' OR command = :command)
  AND (:instance_id = '' OR instance_id = :instance_id)
  AND run_id > :after_run_id
ORDER BY run_id
LIMIT :limit;

-- name: start_command_run
UPDATE command_runs SET status = 'running', started_at = $NOW
WHERE run_id = :run_id AND status = 'queued';

-- name: finish_command_run
-- The only way out of queued and running; the WHERE keeps a finished run from changing.
UPDATE command_runs
SET status = :status, exit_code = :exit_code, output = :output, error = :error,
    finished_at = $NOW
WHERE run_id = :run_id AND status IN ('queued', 'running');

-- name: set_command_run_duration
UPDATE command_runs SET duration_ms = :duration_ms WHERE run_id = :run_id;
