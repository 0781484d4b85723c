-- Versioned memories (see service/memories.py). A memory is "live" when it is neither
-- deleted (a tombstone) nor expired; expiry is judged by the database clock, and an expired
-- row is as good as gone (the sweep, or the next put of its key, removes it).

-- name: lock_memory
-- The current row of one memory, locked until the transaction ends (compare-and-set).
SELECT memory_id, project_id, namespace, key, memory_type, version, value, created_by,
       updated_by, created_at, updated_at, expires_at, deleted_at,
       CASE WHEN expires_at <= $NOW THEN 1 ELSE 0 END AS expired
FROM memories
WHERE project_id = :project_id AND namespace = :namespace AND key = :key
$FOR_UPDATE;

-- name: get_memory
SELECT memory_id, project_id, namespace, key, memory_type, version, value, created_by,
       updated_by, created_at, updated_at, expires_at, deleted_at,
       CASE WHEN expires_at <= $NOW THEN 1 ELSE 0 END AS expired
FROM memories
WHERE project_id = :project_id AND namespace = :namespace AND key = :key;

-- name: insert_memory
-- Two first writers racing: the loser inserts nothing (no row returned) instead of failing
-- on the unique constraint, and then competes for the winner's row like any other writer.
INSERT INTO memories (memory_id, project_id, namespace, key, memory_type, version, value,
                      created_by, updated_by, created_at, updated_at, expires_at)
VALUES (:memory_id, :project_id, :namespace, :key, :memory_type, 1, :value, :actor, :actor,
        $NOW, $NOW, $IN(:ttl_seconds))
ON CONFLICT (project_id, namespace, key) DO NOTHING
RETURNING memory_id;

-- name: update_memory
-- Conditional on the version read under the row lock: a defence in depth, never 0 rows.
UPDATE memories
SET version = version + 1, memory_type = :memory_type, value = :value, updated_by = :actor,
    updated_at = $NOW, expires_at = $IN(:ttl_seconds), deleted_at = NULL
WHERE memory_id = :memory_id AND version = :version;

-- name: tombstone_memory
UPDATE memories
SET version = version + 1, updated_by = :actor, updated_at = $NOW, deleted_at = $NOW
WHERE memory_id = :memory_id AND version = :version;

-- name: insert_memory_version
INSERT INTO memory_versions (memory_id, version, op, memory_type, value, written_by,
                             written_at, expires_at)
SELECT memory_id, version, :op, memory_type, CASE WHEN :op = 'put' THEN value END,
       updated_by, updated_at, expires_at
FROM memories WHERE memory_id = :memory_id;

-- name: get_memory_version
SELECT memory_id, version, op, memory_type, value, written_by, written_at, expires_at
FROM memory_versions WHERE memory_id = :memory_id AND version = :version;

-- name: list_memory_versions
SELECT memory_id, version, op, memory_type, value, written_by, written_at, expires_at
FROM memory_versions WHERE memory_id = :memory_id ORDER BY version;

-- name: list_memories
-- One page in (namespace, key) order after the cursor. The prefix is a whole namespace
-- path or its start up to a ':' ("user" matches "user" and "user:prefs", not "username").
SELECT memory_id, project_id, namespace, key, memory_type, version, value, created_by,
       updated_by, created_at, updated_at, expires_at, deleted_at
FROM memories
WHERE project_id = :project_id
  AND (:prefix = '' OR namespace = :prefix
       OR substr(namespace, 1, length(CAST(:prefix AS TEXT)) + 1)
          = CAST(:prefix AS TEXT) || ':')
  AND (namespace > :after_namespace
       OR (namespace = :after_namespace AND key > :after_key))
  AND (:include_deleted = 1 OR deleted_at IS NULL)
  AND (:include_expired = 1 OR expires_at IS NULL OR expires_at > $NOW)
ORDER BY namespace, key
LIMIT :limit;

-- name: purge_memory
-- Its versions go with it (ON DELETE CASCADE).
DELETE FROM memories WHERE memory_id = :memory_id;

-- name: count_memory_versions
SELECT count(*) AS n FROM memory_versions WHERE memory_id = :memory_id;

-- name: expired_memories
SELECT memory_id, project_id, namespace, key, version, expires_at
FROM memories
WHERE expires_at IS NOT NULL AND expires_at <= $NOW
  AND (project_id = :project_id OR :project_id = '')
ORDER BY expires_at
LIMIT :limit
$FOR_UPDATE;
