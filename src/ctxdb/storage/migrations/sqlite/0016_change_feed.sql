-- ctxdb schema version 16 for SQLite: the live change feed (GET /v1/events, docs/server.md).
-- The feed reads the audit log in (xact_id, audit_id) order, the order PostgreSQL needs (see
-- its migration of the same number). SQLite has one writer at a time, which holds the write
-- lock from the id it draws to its COMMIT, so rows commit in audit_id order and xact_id stays
-- 0: the order is the id's, which the table's own key (the rowid) already keeps, so SQLite
-- gets no index on the column (one more page written by every commit). The column exists here
-- too so that the feed's queries are written once for both backends (dialect.py's
-- $AFTER_POSITION and $POSITION_ORDER say how each engine walks it).
-- The feed's event ids are positions sealed with a key of this database's own
-- (change_feed_keys, made here from the engine's random source; domain/event_ids.py), so that
-- an id tells a project's reader nothing of the changes of other projects between its own.

-- migrate:up
ALTER TABLE audit_log ADD COLUMN xact_id INTEGER NOT NULL DEFAULT 0;

CREATE TABLE change_feed_keys (
    key_id INTEGER PRIMARY KEY,
    secret TEXT NOT NULL
);
INSERT INTO change_feed_keys (key_id, secret) VALUES (1, lower(hex(randomblob(32))));

-- migrate:down
DROP TABLE change_feed_keys;
ALTER TABLE audit_log DROP COLUMN xact_id;
