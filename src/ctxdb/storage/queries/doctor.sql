-- Read-only probes of ctxdb doctor (see service/doctor.py).

-- name: stale_instances
-- The live instances reap_stale_instances would mark crashed: no heartbeat for :stale_after
-- seconds. Listed first, so that doctor reports them and changes nothing without --fix.
SELECT instance_id, project_id, last_heartbeat FROM instances
WHERE status IN ('active', 'idle') AND last_heartbeat < $AGO(:stale_after)
ORDER BY last_heartbeat, instance_id;

-- name: write_probe
-- The newest migration's row rewritten as it is, in a transaction the doctor rolls back: a
-- real write (it takes SQLite's write lock and changes a page; on PostgreSQL it needs a
-- read-write transaction and the privilege) that leaves nothing behind.
UPDATE schema_migrations SET version = version
WHERE version = (SELECT max(version) FROM schema_migrations);
