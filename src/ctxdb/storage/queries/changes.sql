-- The change feed (GET /v1/events; service/usecases/changes.py) reads the audit log in the
-- order of its positions, (xact_id, audit_id): see the migration 0016. Only rows below
-- $SETTLED_XACT are read, those of transactions that have all ended, so that a row can never
-- appear before a position a reader has passed. One statement each: its one snapshot is the
-- one the settled line is taken from.

-- name: changes_after
-- $AFTER_POSITION: the rows after (:xact_id, :audit_id); $POSITION_ORDER: (xact_id, audit_id)
-- order; each as its engine walks it by an index (see dialect.py).
SELECT xact_id, audit_id, occurred_at, actor, action, entity_type, entity_id, project_id
FROM audit_log
WHERE $AFTER_POSITION AND xact_id < $SETTLED_XACT
ORDER BY $POSITION_ORDER
LIMIT :limit;

-- name: changes_tip
-- The position of the last settled row: where a reader that asks for no history starts.
SELECT xact_id, audit_id
FROM audit_log
WHERE xact_id < $SETTLED_XACT
ORDER BY $POSITION_ORDER_DESC
LIMIT 1;

-- name: change_feed_key
-- The key that seals the feed's positions into event ids (domain/event_ids.py).
SELECT secret FROM change_feed_keys WHERE key_id = 1;
