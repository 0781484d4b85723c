-- Versioned memories (see service/usecases/memories.py). A memory is "live" when it is neither
-- deleted (a tombstone) nor expired; expiry is judged by the database clock, and an expired
-- row is as good as gone (the sweep, or the next put of its key, removes it).

-- name: lock_memory
-- The current row of one memory, locked until the transaction ends (compare-and-set), with
-- its project's status (read, not locked: a put needs no other statement to check it).
SELECT memory_id, project_id, namespace, key, memory_type, version, value, created_by,
       updated_by, created_at, updated_at, expires_at, deleted_at,
       CASE WHEN expires_at <= $NOW THEN 1 ELSE 0 END AS expired,
       (SELECT p.status FROM projects p WHERE p.project_id = memories.project_id)
           AS project_status
FROM memories
WHERE project_id = :project_id AND namespace = :namespace AND key = :key
$FOR_UPDATE;

-- name: get_memory
SELECT memory_id, project_id, namespace, key, memory_type, version, value, created_by,
       updated_by, created_at, updated_at, expires_at, deleted_at,
       CASE WHEN expires_at <= $NOW THEN 1 ELSE 0 END AS expired
FROM memories
WHERE project_id = :project_id AND namespace = :namespace AND key = :key;

-- name: get_live_memory
-- A memory of a project in one statement, for a read that needs no other: no row when the
-- project does not exist, a row without memory_id when the memory does not.
SELECT m.memory_id, m.project_id, m.namespace, m.key, m.memory_type, m.version, m.value,
       m.created_by, m.updated_by, m.created_at, m.updated_at, m.expires_at, m.deleted_at,
       CASE WHEN m.expires_at <= $NOW THEN 1 ELSE 0 END AS expired
FROM projects p
LEFT JOIN memories m
       ON m.project_id = p.project_id AND m.namespace = :namespace AND m.key = :key
WHERE p.project_id = :project_id;

-- name: insert_memory
-- Two first writers racing: the loser inserts nothing (no row returned) instead of failing
-- on the unique constraint, and then competes for the winner's row like any other writer.
-- The row written comes back whole, so a put needs no statement to read it.
INSERT INTO memories (memory_id, project_id, namespace, key, memory_type, version, value,
                      created_by, updated_by, created_at, updated_at, expires_at)
VALUES (:memory_id, :project_id, :namespace, :key, :memory_type, 1, :value, :actor, :actor,
        $NOW, $NOW, $IN(:ttl_seconds))
ON CONFLICT (project_id, namespace, key) DO NOTHING
RETURNING memory_id, project_id, namespace, key, memory_type, version, value, created_by,
          updated_by, created_at, updated_at, expires_at, deleted_at;

-- name: update_memory
-- Conditional on the version read under the row lock: a defence in depth, never 0 rows.
UPDATE memories
SET version = version + 1, memory_type = :memory_type, value = :value, updated_by = :actor,
    updated_at = $NOW, expires_at = $IN(:ttl_seconds), deleted_at = NULL
WHERE memory_id = :memory_id AND version = :version
RETURNING memory_id, project_id, namespace, key, memory_type, version, value, created_by,
          updated_by, created_at, updated_at, expires_at, deleted_at;

-- name: update_live_memory
-- A put in one statement, in the common case: the live memory (neither deleted nor expired)
-- of an active project, at the expected version (any version when :any_version is 1); the
-- type stays unless one is given, and the expiry follows the resulting type's policy unless
-- a TTL is given (the caller passes each type's). No row: the caller takes the general path,
-- which says why (a conflict, an expired or missing memory, an archived project).
-- Where the schema has memories.document_version (SQLite's 0024, PostgreSQL's 0026) the put
-- claims the memory's search document (dialect.py's claim), for it writes the document
-- itself, once with its terms: on SQLite by write_memory_document, the body coming back with
-- the row; on PostgreSQL by put_live_memory_recorded, of which this is a part and alone
-- never sent (see dialect.py). Below that schema the put takes the general path.
UPDATE memories
SET version = version + 1, memory_type = coalesce(:memory_type, memory_type), value = :value,
    updated_by = :actor, updated_at = $NOW,
    expires_at = CASE coalesce(:memory_type, memory_type)
                     WHEN 'episodic' THEN $IN(:ttl_episodic)
                     WHEN 'procedural' THEN $IN(:ttl_procedural)
                     ELSE $IN(:ttl_semantic) END$CLAIM_MEMORY_DOCUMENT
WHERE project_id = :project_id AND namespace = :namespace AND key = :key
  AND (version = :expected_version OR :any_version = 1)
  AND deleted_at IS NULL AND (expires_at IS NULL OR expires_at > $NOW)
  AND EXISTS (SELECT 1 FROM projects p
              WHERE p.project_id = memories.project_id AND (p.status = 'active') IS TRUE)
RETURNING memory_id, project_id, namespace, key, memory_type, version, value, created_by,
          updated_by, created_at, updated_at, expires_at, deleted_at$MEMORY_DOCUMENT_BODY;

-- name: write_memory_document
-- The search document of a put that claimed it (update_live_memory on SQLite), written once
-- with its index terms: the memory's values as the put wrote them. No row: the memory had
-- no document (insert_memory_document writes it).
UPDATE search_documents
SET project_id = :project_id, content_type = :memory_type, namespace = :namespace,
    body = :body, terms = :terms, expires_at = :expires_at, occurred_at = :updated_at
WHERE memory_id = :memory_id;

-- name: insert_memory_document
INSERT INTO search_documents (project_id, kind, memory_id, content_type, namespace, body,
                              terms, expires_at, occurred_at)
VALUES (:project_id, 'memory', :memory_id, :memory_type, :namespace, :body, :terms,
        :expires_at, :updated_at);

-- name: put_live_memory_recorded
-- update_live_memory with the put's history row, audit row (details as
-- MemoryService._record_put writes them on SQLite) and search document, in one statement where
-- one statement may write several tables (PostgreSQL; Tx.chains_writes) and the schema has
-- memories.document_version (0026; Tx.memory_documents_once): each is written only when the
-- update wrote a row. The update is update_live_memory itself: the same conditions, the same
-- answer, and the claim by which search_memory_update leaves the row to this statement.
WITH written AS (
$QUERY(update_live_memory)
), history AS (
    INSERT INTO memory_versions (memory_id, version, op, memory_type, value, written_by,
                                 written_at, expires_at)
    SELECT memory_id, version, 'put', memory_type, value, updated_by, updated_at, expires_at
    FROM written
), logged AS (
    INSERT INTO audit_log (occurred_at, actor, action, entity_type, entity_id, project_id,
                           details)
    SELECT $NOW, :actor, 'memory.put', 'memory', memory_id, project_id,
           jsonb_build_object('namespace', namespace, 'key', key, 'version', version,
                              'expected_version', CAST(:expected_version AS BIGINT),
                              'memory_type', memory_type)
    FROM written
), document AS (
    -- The memory's search document, written once with its index terms (its body made in
    -- Python as search_memory_source makes it: storage/search_body.py), where the trigger
    -- wrote the body and the look then the terms: one version of the row instead of two.
    -- A memory without its document (a repair removed it, say) gets it here. The look for
    -- documents without terms still travels with this statement, for those of other
    -- writers (and this one's, should its terms be its old body's: search_terms_stale).
    INSERT INTO search_documents (project_id, kind, memory_id, content_type, namespace, body,
                                  terms, expires_at, occurred_at)
    SELECT project_id, 'memory', memory_id, memory_type, namespace, :search_body,
           :search_terms, expires_at, updated_at
    FROM written
    ON CONFLICT (memory_id) WHERE memory_id IS NOT NULL DO UPDATE
    SET project_id = excluded.project_id, content_type = excluded.content_type,
        namespace = excluded.namespace, body = excluded.body, terms = excluded.terms,
        expires_at = excluded.expires_at, occurred_at = excluded.occurred_at
)
-- The transaction's id comes back with the memory: no statement of its own (pg_tx.py).
SELECT memory_id, project_id, namespace, key, memory_type, version, value, created_by,
       updated_by, created_at, updated_at, expires_at, deleted_at,
       txid_current() AS transaction_id
FROM written;

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
