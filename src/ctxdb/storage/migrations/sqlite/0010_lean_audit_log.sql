-- ctxdb schema version 10 for SQLite: an audit log that costs its writers less.
-- Every write transaction adds one audit row, so whatever that row costs, every write pays.
-- 0001 gave audit_log two secondary indexes and AUTOINCREMENT; with synchronous=FULL a commit
-- costs in proportion to the pages it writes, and those were three more pages per write (the
-- two index leaves and the sqlite_sequence row), about a tenth of a memory put's throughput
-- (docs/benchmarks.md). No query used the indexes: the log is read newest first (`ctxdb
-- audit`), a backward walk of the table itself that stops at its limit.
-- audit_id stays the INTEGER PRIMARY KEY (the rowid): a new row gets the largest id + 1, so
-- ids keep increasing as long as no row is deleted, and nothing in ctxdb deletes audit rows.
-- The rows are copied unchanged, ids included.

-- migrate:up
CREATE TABLE audit_log_lean (
    audit_id INTEGER PRIMARY KEY,
    occurred_at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    project_id TEXT,
    details TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(details))
);
INSERT INTO audit_log_lean (audit_id, occurred_at, actor, action, entity_type, entity_id,
                            project_id, details)
SELECT audit_id, occurred_at, actor, action, entity_type, entity_id, project_id, details
FROM audit_log ORDER BY audit_id;
DROP TABLE audit_log;
ALTER TABLE audit_log_lean RENAME TO audit_log;

-- migrate:down
CREATE TABLE audit_log_indexed (
    audit_id INTEGER PRIMARY KEY AUTOINCREMENT,
    occurred_at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    project_id TEXT,
    details TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(details))
);
INSERT INTO audit_log_indexed (audit_id, occurred_at, actor, action, entity_type, entity_id,
                               project_id, details)
SELECT audit_id, occurred_at, actor, action, entity_type, entity_id, project_id, details
FROM audit_log ORDER BY audit_id;
DROP TABLE audit_log;
ALTER TABLE audit_log_indexed RENAME TO audit_log;
CREATE INDEX idx_audit_entity ON audit_log(entity_type, entity_id);
CREATE INDEX idx_audit_project ON audit_log(project_id, audit_id);
