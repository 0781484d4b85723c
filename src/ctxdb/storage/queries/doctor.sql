-- Read-only probes of ctxdb doctor (see service/operations/doctor.py).

-- name: stale_instances
-- The live instances reap_stale_instances would mark crashed: no heartbeat for :stale_after
-- seconds. Listed first, so that doctor reports them and changes nothing without --fix.
SELECT instance_id, project_id, last_heartbeat FROM instances
WHERE status IN ('active', 'idle') AND last_heartbeat < $AGO(:stale_after)
ORDER BY last_heartbeat, instance_id;

-- name: critical_context_per_project
-- Live CRITICAL context of each active project, and the smallest context window of its live
-- instances (NULL when none): the reload_budget check compares it with the reload budget.
SELECT p.project_id, p.name, count(*) AS items, sum(c.token_count) AS tokens,
       (SELECT min(i.context_window) FROM instances i
        WHERE i.project_id = p.project_id AND i.status IN ('active', 'idle')) AS smallest_window
FROM projects p JOIN context_items c ON c.project_id = p.project_id
WHERE p.status = 'active' AND c.priority = 'CRITICAL' AND c.state = 'active'
GROUP BY p.project_id, p.name
ORDER BY p.project_id;

-- name: write_probe
-- The newest migration's row rewritten as it is, in a transaction the doctor rolls back: a
-- real write (it takes SQLite's write lock and changes a page; on PostgreSQL it needs a
-- read-write transaction and the privilege) that leaves nothing behind.
UPDATE schema_migrations SET version = version
WHERE version = (SELECT max(version) FROM schema_migrations);

-- name: change_feed_key_present
-- The secret that seals the change feed's event ids (migration 0016): there must be one.
SELECT count(*) AS n FROM change_feed_keys WHERE key_id = 1 AND length(secret) >= 32;
