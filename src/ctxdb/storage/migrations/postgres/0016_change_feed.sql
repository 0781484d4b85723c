-- ctxdb schema version 16 for PostgreSQL: the live change feed (GET /v1/events, docs/server.md).
-- The feed reads the audit log, which every mutation already writes in its own transaction.
-- An audit_id is drawn when the row is inserted, not when its transaction commits, so a
-- transaction holding a smaller id may commit after one holding a larger id: a reader that
-- advanced by audit_id alone would pass the smaller one before it was visible and skip it.
-- So each row also records its writing transaction's id (xact_id, pg_current_xact_id() as
-- a 64-bit number, which never wraps) and the feed reads in (xact_id, audit_id) order only the
-- rows of transactions below the oldest one still running (pg_snapshot_xmin of the current
-- snapshot): every transaction under that line has ended, so no row can appear behind the
-- reader any more. Rows from before this migration keep xact_id 0 and come first, by id.
-- The column belongs to this database (its transaction numbers): bundles and db copy leave
-- it out, and rows they insert take the inserting transaction's number.
-- A statement trigger NOTIFYs ctxdb_changes on inserts into the log; the payload is empty (one
-- notification per transaction whatever it wrote): it only wakes the servers' listeners,
-- which read the rows from the table. PostgreSQL makes notifying transactions commit one at a
-- time (a lock held through the commit's flush), which cost a third of the commit throughput
-- of 8 concurrent writers; so only one transaction at a time notifies (the advisory lock
-- 4242004, LOCK_CHANGE_NOTIFY in dialect.py, held to its end), and those that find it taken
-- commit as before: the notifying one, or the next, or the listeners' one-second fallback
-- read wakes the readers for them.
-- The feed's event ids are positions sealed with a key of this database's own
-- (change_feed_keys, made here from the engine's random source; domain/event_ids.py), so that
-- an id tells a project's reader nothing of the changes of other projects between its own.

-- migrate:up
ALTER TABLE audit_log ADD COLUMN xact_id BIGINT NOT NULL DEFAULT 0;
ALTER TABLE audit_log ALTER COLUMN xact_id SET DEFAULT (pg_current_xact_id()::text::bigint);
CREATE INDEX idx_audit_change_order ON audit_log(xact_id, audit_id);
CREATE FUNCTION ctxdb_notify_change() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    IF pg_try_advisory_xact_lock(4242004) THEN
        PERFORM pg_notify('ctxdb_changes', '');
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER audit_log_notify AFTER INSERT ON audit_log
FOR EACH STATEMENT EXECUTE FUNCTION ctxdb_notify_change();

CREATE TABLE change_feed_keys (
    key_id INTEGER PRIMARY KEY,
    secret TEXT NOT NULL
);
INSERT INTO change_feed_keys (key_id, secret)
VALUES (1, replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''));

-- migrate:down
DROP TABLE change_feed_keys;
DROP TRIGGER audit_log_notify ON audit_log;
DROP FUNCTION ctxdb_notify_change();
DROP INDEX idx_audit_change_order;
ALTER TABLE audit_log DROP COLUMN xact_id;
