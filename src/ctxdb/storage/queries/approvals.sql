-- Approval gates: requests decided once (see service/usecases/approvals.py).

-- name: insert_approval_gate
INSERT INTO approval_gates (project_id, phase_id, instance_id, gate_type, title, request,
                            requested_by, idempotency_key, created_at)
VALUES (:project_id, :phase_id, :instance_id, :gate_type, :title, :request, :requested_by,
        :idempotency_key, $NOW)
RETURNING gate_id;

-- name: get_approval_gate
SELECT gate_id, project_id, phase_id, instance_id, gate_type, title, request, status,
       response, requested_by, decided_by, decided_at, idempotency_key, created_at
FROM approval_gates WHERE gate_id = :gate_id;

-- name: lock_approval_gate
-- Held until the transaction ends: two decisions on one gate are serialized, and the second
-- sees the first.
SELECT gate_id, project_id, phase_id, instance_id, gate_type, title, request, status,
       response, requested_by, decided_by, decided_at, idempotency_key, created_at
FROM approval_gates WHERE gate_id = :gate_id
$FOR_UPDATE;

-- name: approval_gate_by_key
SELECT gate_id FROM approval_gates
WHERE project_id = :project_id AND idempotency_key = :idempotency_key;

-- name: list_approval_gates
-- One page in gate_id order after the cursor; an empty filter means "any".
SELECT gate_id, project_id, phase_id, instance_id, gate_type, title, request, status,
       response, requested_by, decided_by, decided_at, idempotency_key, created_at
FROM approval_gates
WHERE project_id = :project_id
  AND (:status = '' OR status = :status)
  AND (:gate_type = '' OR gate_type = :gate_type)
  AND gate_id > :after_gate_id
ORDER BY gate_id
LIMIT :limit;

-- name: decide_approval_gate
-- Only a pending gate is decided: the WHERE keeps a decision from ever being overwritten.
UPDATE approval_gates
SET status = :status, response = :response, decided_by = :decided_by, decided_at = $NOW
WHERE gate_id = :gate_id AND status = 'pending';
