-- Messages between agent instances and their per-consumer deliveries (see service/usecases/messages.py).

-- name: insert_message
INSERT INTO messages (project_id, sender, recipient_kind, recipient, subject, body, created_at)
VALUES (:project_id, :sender, :recipient_kind, :recipient, :subject, :body, $NOW)
RETURNING message_id;

-- name: get_message
SELECT message_id, project_id, sender, recipient_kind, recipient, subject, body, created_at
FROM messages WHERE message_id = :message_id;

-- name: visible_messages
-- The messages addressed to :instance_id (directly, by its :role, or broadcast; not its own
-- role or broadcast messages) that it has not acknowledged and that are not hidden from it by
-- an earlier delivery. An empty :role matches no role message (their recipient is never empty).
SELECT m.message_id
FROM messages m
LEFT JOIN message_deliveries d
  ON d.message_id = m.message_id AND d.instance_id = :instance_id
WHERE m.project_id = :project_id
  AND ((m.recipient_kind = 'instance' AND m.recipient = :instance_id)
       OR (m.recipient_kind = 'role' AND m.recipient = :role AND m.sender <> :instance_id)
       OR (m.recipient_kind = 'broadcast' AND m.sender <> :instance_id))
  AND (d.message_id IS NULL OR (d.acked_at IS NULL AND d.visible_after <= $NOW))
ORDER BY m.message_id
LIMIT :limit;

-- name: deliver_message
-- Hide the message from the consumer for :visibility_seconds. The WHERE of the update makes
-- the delivery conditional: a concurrent inbox of the same consumer that delivered it first
-- wins, and this statement then returns no row (the message is not handed out twice).
INSERT INTO message_deliveries (message_id, instance_id, delivered_count, visible_after)
VALUES (:message_id, :instance_id, 1, $IN(:visibility_seconds))
ON CONFLICT (message_id, instance_id) DO UPDATE
SET delivered_count = message_deliveries.delivered_count + 1,
    visible_after = excluded.visible_after
WHERE message_deliveries.acked_at IS NULL AND message_deliveries.visible_after <= $NOW
RETURNING delivered_count;

-- name: ack_message
-- Idempotent: a second acknowledgement keeps the first time.
INSERT INTO message_deliveries (message_id, instance_id, delivered_count, acked_at)
VALUES (:message_id, :instance_id, 0, $NOW)
ON CONFLICT (message_id, instance_id) DO UPDATE
SET acked_at = COALESCE(message_deliveries.acked_at, excluded.acked_at)
RETURNING delivered_count, acked_at;

-- name: get_delivery
SELECT message_id, instance_id, delivered_count, visible_after, acked_at
FROM message_deliveries WHERE message_id = :message_id AND instance_id = :instance_id;

-- name: list_messages
-- A page of a project's messages, newest first, before the cursor (0: from the newest), with
-- how many consumers acknowledged each (the dashboard's view of what went between agents).
SELECT m.message_id, m.project_id, m.sender, m.recipient_kind, m.recipient, m.subject, m.body,
       m.created_at,
       (SELECT count(*) FROM message_deliveries d
        WHERE d.message_id = m.message_id AND d.acked_at IS NOT NULL) AS acked
FROM messages m
WHERE m.project_id = :project_id AND (:before_message_id = 0 OR m.message_id < :before_message_id)
ORDER BY m.message_id DESC
LIMIT :limit;
