-- ctxdb schema version 10 for PostgreSQL: an audit log that costs its writers less.
-- Every write transaction adds one audit row, so whatever that row costs, every write pays:
-- here the two secondary indexes of 0001, which no query used (the log is read newest first,
-- `ctxdb audit`, a backward walk of the primary key that stops at its limit). The SQLite
-- migration of the same number also drops AUTOINCREMENT; an identity column costs no more
-- than a sequence, which PostgreSQL needs anyway.

-- migrate:up
DROP INDEX idx_audit_entity;
DROP INDEX idx_audit_project;

-- migrate:down
CREATE INDEX idx_audit_entity ON audit_log(entity_type, entity_id);
CREATE INDEX idx_audit_project ON audit_log(project_id, audit_id);
