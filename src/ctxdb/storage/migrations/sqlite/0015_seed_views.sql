-- ctxdb schema version 15 for SQLite:
-- read-only views with the names and columns of the original specification's schema
-- (context_snapshots, active_instances, schema_version and v_project_summary), so that its
-- troubleshooting and reporting SQL runs unchanged against a ctxdb database. They are views
-- over ctxdb's own tables: nothing is stored twice, and changes go through ctxdb (an UPDATE of
-- a view is refused by the database). context_snapshots holds the live items only (superseded
-- and deleted ones are history), as the specification has no such states. v_project_summary
-- counts each figure in its own subquery: the specification's joins would multiply instances by
-- items.

-- migrate:up
CREATE VIEW context_snapshots AS
SELECT item_id AS snapshot_id, project_id, phase_id, sequence_number, content_type, priority,
       token_count, content, metadata, created_at
FROM context_items
WHERE state = 'active';

CREATE VIEW active_instances AS
SELECT instance_id, project_id, phase_id, hostname, process_id, started_at, last_heartbeat,
       status, current_token_usage, metadata
FROM instances;

CREATE VIEW schema_version AS
SELECT version, applied_at, name AS description
FROM schema_migrations;

CREATE VIEW v_project_summary AS
SELECT p.project_id, p.name, p.total_story_points, p.completed_story_points,
       (SELECT count(*) FROM instances i
        WHERE i.project_id = p.project_id AND i.status = 'active') AS active_instances,
       (SELECT count(*) FROM context_items c
        WHERE c.project_id = p.project_id AND c.state = 'active') AS total_snapshots,
       (SELECT coalesce(sum(i.current_token_usage), 0) FROM instances i
        WHERE i.project_id = p.project_id AND i.status = 'active') AS total_tokens,
       p.created_at, p.updated_at
FROM projects p;

-- migrate:down
DROP VIEW v_project_summary;
DROP VIEW schema_version;
DROP VIEW active_instances;
DROP VIEW context_snapshots;
