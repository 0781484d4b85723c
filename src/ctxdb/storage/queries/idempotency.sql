-- The idempotency keys of creates (see service/idempotency.py).

-- name: claim_idempotency_key
-- Returns a row only to the transaction that claims the key. On PostgreSQL a concurrent claim
-- of the same key waits here until the first commits (then finds it taken) or rolls back
-- (then claims it): two requests with one key never both create.
INSERT INTO idempotency_keys (project_id, operation, idempotency_key, request_sha256,
                              created_at)
VALUES (:project_id, :operation, :idempotency_key, :request_sha256, $NOW)
ON CONFLICT (project_id, operation, idempotency_key) DO NOTHING
RETURNING request_sha256;

-- name: get_idempotency_key
SELECT request_sha256, response, created_at FROM idempotency_keys
WHERE project_id = :project_id AND operation = :operation
  AND idempotency_key = :idempotency_key;

-- name: record_idempotent_response
UPDATE idempotency_keys SET response = :response
WHERE project_id = :project_id AND operation = :operation
  AND idempotency_key = :idempotency_key;
