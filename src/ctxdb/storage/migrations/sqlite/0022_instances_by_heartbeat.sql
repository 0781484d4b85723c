-- ctxdb schema version 22 for SQLite: a project's live instances in heartbeat order (issue 12, the fleet
-- benchmark; docs/benchmarks.md).
-- Every prompt looks for the project's sessions that stopped without a handoff
-- (continuity.sql, sessions_needing_handoff): the live ones silent past the stale limit, and
-- the recently ended ones. On (project_id, status) the first half read every live instance of
-- the project (a thousand rows per prompt for a fleet of a thousand agents, and every older
-- version of their rows, updated at each heartbeat) to keep none of them. With the heartbeat
-- in the index it reads only the silent ones: an index range, whatever the fleet's size, and
-- the planner takes it without statistics (there is no other index with the project first).
-- The count of a project's live instances and the reaping of its silent ones (instances.sql)
-- read the same index.

-- migrate:up
DROP INDEX idx_instances_project;
CREATE INDEX idx_instances_project ON instances(project_id, status, last_heartbeat);

-- migrate:down
DROP INDEX idx_instances_project;
CREATE INDEX idx_instances_project ON instances(project_id, status);
