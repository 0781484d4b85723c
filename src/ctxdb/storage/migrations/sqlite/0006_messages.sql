-- ctxdb schema version 6 for SQLite: messages between agent instances.
-- messages: one message of a project, addressed to one instance, to every instance of a role
-- (the "role" key of an instance's metadata) or broadcast to the whole project; the body is
-- JSON. message_deliveries: one row per (message, consuming instance), so that a role or
-- broadcast message is delivered and acknowledged by each consumer on its own; the message is
-- invisible to that consumer until visible_after, and never shown again once acked_at is set.
-- JSON is text checked by json_valid; timestamps as in 0001.

-- migrate:up
CREATE TABLE messages (
    message_id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id TEXT NOT NULL REFERENCES projects(project_id) ON DELETE CASCADE,
    sender TEXT NOT NULL CHECK (length(sender) > 0),
    recipient_kind TEXT NOT NULL CHECK (recipient_kind IN ('instance', 'role', 'broadcast')),
    recipient TEXT,
    subject TEXT NOT NULL DEFAULT '',
    body TEXT NOT NULL CHECK (json_valid(body)),
    created_at TEXT NOT NULL,
    CHECK ((recipient_kind = 'broadcast') = (recipient IS NULL))
);
CREATE INDEX idx_messages_inbox ON messages(project_id, recipient_kind, recipient, message_id);

CREATE TABLE message_deliveries (
    message_id INTEGER NOT NULL REFERENCES messages(message_id) ON DELETE CASCADE,
    instance_id TEXT NOT NULL REFERENCES instances(instance_id) ON DELETE CASCADE,
    delivered_count INTEGER NOT NULL DEFAULT 0 CHECK (delivered_count >= 0),
    visible_after TEXT,
    acked_at TEXT,
    PRIMARY KEY (message_id, instance_id)
);
CREATE INDEX idx_message_deliveries_instance ON message_deliveries(instance_id);

-- migrate:down
DROP TABLE message_deliveries;
DROP TABLE messages;
