-- ctxdb schema version 15 for PostgreSQL:
-- read-only views with the names and columns of the original specification's schema
-- (context_snapshots, active_instances, schema_version and v_project_summary), so that its
-- troubleshooting and reporting SQL runs unchanged against a ctxdb database. They are views
-- over ctxdb's own tables: nothing is stored twice, and changes go through ctxdb (an UPDATE of
-- a view is refused by the database). context_snapshots holds the live items only (superseded
-- and deleted ones are history), as the specification has no such states. v_project_summary
-- counts each figure in its own subquery: the specification's joins would multiply instances by
-- items.
-- security_invoker: a view reads with the rights of whoever queries it, so row-level security
-- (ctxdb db secure) applies to these views as it does to the tables under them. PostgreSQL
-- would let an UPDATE through a simple view write the table under it, past ctxdb's rules and
-- audit log: a trigger refuses every change with a message saying where changes go.

-- migrate:up
CREATE VIEW context_snapshots WITH (security_invoker = true) AS
SELECT item_id AS snapshot_id, project_id, phase_id, sequence_number, content_type, priority,
       token_count, content, metadata, created_at
FROM context_items
WHERE state = 'active';

CREATE VIEW active_instances WITH (security_invoker = true) AS
SELECT instance_id, project_id, phase_id, hostname, process_id, started_at, last_heartbeat,
       status, current_token_usage, metadata
FROM instances;

CREATE VIEW schema_version WITH (security_invoker = true) AS
SELECT version, applied_at, name AS description
FROM schema_migrations;

CREATE VIEW v_project_summary WITH (security_invoker = true) AS
SELECT p.project_id, p.name, p.total_story_points, p.completed_story_points,
       (SELECT count(*) FROM instances i
        WHERE i.project_id = p.project_id AND i.status = 'active') AS active_instances,
       (SELECT count(*) FROM context_items c
        WHERE c.project_id = p.project_id AND c.state = 'active') AS total_snapshots,
       (SELECT coalesce(sum(i.current_token_usage), 0) FROM instances i
        WHERE i.project_id = p.project_id AND i.status = 'active') AS total_tokens,
       p.created_at, p.updated_at
FROM projects p;

CREATE FUNCTION ctxdb_read_only_view() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'cannot modify %: it is a read-only view of ctxdb''s tables (make changes '
        'with ctxdb: the CLI, the API or the hooks)', TG_TABLE_NAME
        USING ERRCODE = 'feature_not_supported';
END
$$;

CREATE TRIGGER context_snapshots_read_only INSTEAD OF INSERT OR UPDATE OR DELETE
    ON context_snapshots FOR EACH ROW EXECUTE FUNCTION ctxdb_read_only_view();
CREATE TRIGGER active_instances_read_only INSTEAD OF INSERT OR UPDATE OR DELETE
    ON active_instances FOR EACH ROW EXECUTE FUNCTION ctxdb_read_only_view();
CREATE TRIGGER schema_version_read_only INSTEAD OF INSERT OR UPDATE OR DELETE
    ON schema_version FOR EACH ROW EXECUTE FUNCTION ctxdb_read_only_view();
CREATE TRIGGER v_project_summary_read_only INSTEAD OF INSERT OR UPDATE OR DELETE
    ON v_project_summary FOR EACH ROW EXECUTE FUNCTION ctxdb_read_only_view();

-- migrate:down
DROP VIEW v_project_summary;
DROP VIEW schema_version;
DROP VIEW active_instances;
DROP VIEW context_snapshots;
DROP FUNCTION ctxdb_read_only_view();
