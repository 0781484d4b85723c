-- ctxdb schema version 28: reserved. Another branch adds the migration of this number; this
-- no-op only keeps the versions of this branch numbered 1..n (migrate.migration_files) until
-- the two are merged, when that branch's file takes this one's place (delete this file).
-- Migration 0029 does not depend on what 0028 does.

-- migrate:up
SELECT 1;

-- migrate:down
SELECT 1;
