-- ctxdb schema version 15 for SQLite: the live change feed (GET /v1/events, docs/server.md).
-- The feed reads the audit log in (xact_id, audit_id) order, the order PostgreSQL needs (see
-- its migration of the same number). SQLite has one writer at a time, which holds the write
-- lock from the id it draws to its COMMIT, so rows commit in audit_id order and xact_id stays
-- 0: the order is the id's. The column and its index exist here too so that the feed's query
-- is written once for both backends; the index holds two integers per row.

-- migrate:up
ALTER TABLE audit_log ADD COLUMN xact_id INTEGER NOT NULL DEFAULT 0;
CREATE INDEX idx_audit_change_order ON audit_log(xact_id, audit_id);

-- migrate:down
DROP INDEX idx_audit_change_order;
ALTER TABLE audit_log DROP COLUMN xact_id;
