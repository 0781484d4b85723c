-- Full-text search (see service/usecases/search.py and docs/search.md). The documents are kept by
-- triggers (migration 0008) and given their index terms by Storage.write (the search_terms
-- migration, storage/search_engine.py); these queries read them, index them, or repair them
-- on request.

-- name: search_pending_documents
-- Documents without their index terms yet, in batches (a partial index holds exactly them).
SELECT doc_id, body FROM search_documents
WHERE terms IS NULL AND doc_id > :after
ORDER BY doc_id
LIMIT :limit;

-- name: search_pending_count
-- How many documents wait for their index terms, counted up to :limit (a write compares it
-- with Tx.pending_limit): the first entries of the partial index that holds exactly them. A
-- count, not a span of ids: a memory put leaves its document waiting under the id it has had
-- since the memory was made, however old (a stale document: migration 0028).
SELECT count(*) AS n FROM (SELECT 1 FROM search_documents WHERE terms IS NULL LIMIT :limit);

-- name: search_any_pending
-- Whether any document waits for its index terms: a search on SQLite asks first, in its own
-- snapshot, and brings the index current when one does (SQLiteTx).
SELECT EXISTS (SELECT 1 FROM search_documents WHERE terms IS NULL) AS pending;

-- name: search_set_terms
UPDATE search_documents SET terms = :terms WHERE doc_id = :doc_id;

-- name: search_set_terms_together
-- search_set_terms for many documents in one statement (SQLite: SQLiteTx.set_terms): :batch
-- is a JSON array of [doc_id, terms] pairs, in increasing doc_id order.
UPDATE search_documents SET terms = b.value ->> 1
FROM json_each(:batch) AS b
WHERE search_documents.doc_id = b.value ->> 0;

-- name: search_indexed_documents
-- Documents with their index terms, in batches (a rebuild checks them against the rules).
SELECT doc_id, body, terms FROM search_documents
WHERE terms IS NOT NULL AND doc_id > :after
ORDER BY doc_id
LIMIT :limit;

-- name: search_hits
-- The best matches of one project, by relevance, then newest first. The inner query ranks
-- and filters (an empty string means "any"; the namespace is a whole path or its start up
-- to a ':'; :rank is the query without its exclusions); the outer one adds each hit's text
-- (and its index words, which prompt-time recall counts) and where it lives, for the few kept.
SELECT d.doc_id, d.kind, d.item_id, d.memory_id, d.event_id, d.observation_id,
       d.content_type, d.priority, d.namespace, d.body, d.terms, d.occurred_at, h.score,
       c.sequence_number, m.key, m.version, coalesce(e.session_id, o.session_id) AS session_id,
       e.sequence
FROM (
    SELECT d.doc_id, d.occurred_at, $SEARCH_SCORE(:rank) AS score
    FROM $SEARCH_FROM
    WHERE $SEARCH_MATCH(:match) AND $SEARCH_PROJECT(:project_id)
      AND d.project_id = :project_id
      AND d.kind IN (:kind_1, :kind_2, :kind_3, :kind_4)
      AND (:content_type = '' OR d.content_type = :content_type)
      AND (:priority = '' OR d.priority = :priority)
      AND (:namespace = '' OR d.namespace = :namespace
           OR substr(d.namespace, 1, length(CAST(:namespace AS TEXT)) + 1)
              = CAST(:namespace AS TEXT) || ':')
      AND (d.expires_at IS NULL OR d.expires_at > $NOW)
      AND d.occurred_at >= :since AND d.occurred_at < :until
    ORDER BY score DESC, d.occurred_at DESC, d.doc_id DESC
    LIMIT :limit
) h
JOIN search_documents d ON d.doc_id = h.doc_id
LEFT JOIN context_items c ON c.item_id = d.item_id
LEFT JOIN memories m ON m.memory_id = d.memory_id
LEFT JOIN session_events e ON e.event_id = d.event_id
LEFT JOIN observations o ON o.observation_id = d.observation_id
ORDER BY h.score DESC, h.occurred_at DESC, h.doc_id DESC;

-- name: search_matching_items
-- The live context items of a project whose document matches, newest first, with the
-- structured filters of ContextService.search (an empty string or NULL means "any").
SELECT item_id, project_id, phase_id, sequence_number, content_type, priority, token_count,
       content, metadata, created_by, created_at
FROM context_items
WHERE item_id IN (SELECT d.item_id FROM $SEARCH_FROM
                  WHERE $SEARCH_MATCH(:match) AND $SEARCH_PROJECT(:project_id)
                    AND d.project_id = :project_id AND d.kind = 'context')
  AND project_id = :project_id AND state = 'active'
  AND (priority = :priority OR :priority = '')
  AND (content_type = :content_type OR :content_type = '')
  AND (CAST(:phase_id AS BIGINT) IS NULL OR phase_id = :phase_id)
ORDER BY sequence_number DESC
LIMIT :limit;

-- name: search_context_matches_upto
-- How many of the project's context documents match, counted up to :cap (a word is common
-- enough for search_matching_newest_items when it reaches it).
SELECT count(*) FROM (SELECT 1 FROM $SEARCH_FROM
                      WHERE $SEARCH_MATCH(:match) AND $SEARCH_PROJECT(:project_id)
                        AND d.project_id = :project_id AND d.kind = 'context'
                      LIMIT :cap) found;

-- name: search_matching_newest_items
-- search_matching_items among the project's :window newest live items that pass the filters:
-- the items are walked newest first, each looked up in the index, until :limit match. A word
-- found in many items is answered after a few lookups, without reading its every match.
-- Fewer than :limit found means the matches are rarer (or older), and the search
-- (service/usecases/search.py, newest_matching_items) asks search_matching_items instead.
SELECT item_id, project_id, phase_id, sequence_number, content_type, priority, token_count,
       content, metadata, created_by, created_at
FROM context_items c
WHERE project_id = :project_id AND state = 'active'
  AND (priority = :priority OR :priority = '')
  AND (content_type = :content_type OR :content_type = '')
  AND (CAST(:phase_id AS BIGINT) IS NULL OR phase_id = :phase_id)
  AND sequence_number >= (
      SELECT min(sequence_number) FROM (
          SELECT sequence_number FROM context_items
          WHERE project_id = :project_id AND state = 'active'
            AND (priority = :priority OR :priority = '')
            AND (content_type = :content_type OR :content_type = '')
            AND (CAST(:phase_id AS BIGINT) IS NULL OR phase_id = :phase_id)
          ORDER BY sequence_number DESC
          LIMIT :window) newest)
  AND EXISTS (SELECT 1 FROM $SEARCH_FROM
              WHERE $SEARCH_MATCH(:match) AND d.item_id = c.item_id AND d.kind = 'context')
ORDER BY sequence_number DESC
LIMIT :limit;

-- name: search_source_counts
-- How many records should have a document, per kind.
SELECT 'context' AS kind, count(*) AS n FROM context_items WHERE state = 'active'
UNION ALL
SELECT 'memory', count(*) FROM memories WHERE deleted_at IS NULL
UNION ALL
SELECT 'event', count(*) FROM session_events
UNION ALL
SELECT 'observation', count(*) FROM observations;

-- name: search_index_counts
-- How many documents are in the full-text index, per kind.
SELECT d.kind, count(*) AS n FROM search_documents d WHERE $SEARCH_INDEXED GROUP BY d.kind;

-- Repairs: remove the documents that do not match their record as the triggers would have
-- written it (a record gone or no longer live, a changed text), then add the missing ones.

-- name: search_remove_stale_context
DELETE FROM search_documents
WHERE kind = 'context' AND NOT EXISTS (
    SELECT 1 FROM search_context_source s
    WHERE s.item_id = search_documents.item_id AND s.project_id = search_documents.project_id
      AND s.content_type = search_documents.content_type
      AND s.priority = search_documents.priority AND s.body = search_documents.body
      AND s.occurred_at = search_documents.occurred_at);

-- name: search_add_missing_context
INSERT INTO search_documents (project_id, kind, item_id, content_type, priority, body,
                              occurred_at)
SELECT s.project_id, 'context', s.item_id, s.content_type, s.priority, s.body, s.occurred_at
FROM search_context_source s
WHERE NOT EXISTS (SELECT 1 FROM search_documents d WHERE d.item_id = s.item_id);

-- name: search_remove_stale_memories
DELETE FROM search_documents
WHERE kind = 'memory' AND NOT EXISTS (
    SELECT 1 FROM search_memory_source s
    WHERE s.memory_id = search_documents.memory_id
      AND s.project_id = search_documents.project_id
      AND s.content_type = search_documents.content_type
      AND s.namespace = search_documents.namespace AND s.body = search_documents.body
      AND (s.expires_at = search_documents.expires_at
           OR (s.expires_at IS NULL AND search_documents.expires_at IS NULL))
      AND s.occurred_at = search_documents.occurred_at);

-- name: search_add_missing_memories
INSERT INTO search_documents (project_id, kind, memory_id, content_type, namespace, body,
                              expires_at, occurred_at)
SELECT s.project_id, 'memory', s.memory_id, s.content_type, s.namespace, s.body,
       s.expires_at, s.occurred_at
FROM search_memory_source s
WHERE NOT EXISTS (SELECT 1 FROM search_documents d WHERE d.memory_id = s.memory_id);

-- name: search_remove_stale_events
DELETE FROM search_documents
WHERE kind = 'event' AND NOT EXISTS (
    SELECT 1 FROM search_event_source s
    WHERE s.event_id = search_documents.event_id AND s.project_id = search_documents.project_id
      AND s.content_type = search_documents.content_type AND s.body = search_documents.body
      AND s.occurred_at = search_documents.occurred_at);

-- name: search_add_missing_events
INSERT INTO search_documents (project_id, kind, event_id, content_type, body, occurred_at)
SELECT s.project_id, 'event', s.event_id, s.content_type, s.body, s.occurred_at
FROM search_event_source s
WHERE NOT EXISTS (SELECT 1 FROM search_documents d WHERE d.event_id = s.event_id);

-- name: search_remove_stale_observations
DELETE FROM search_documents
WHERE kind = 'observation' AND NOT EXISTS (
    SELECT 1 FROM search_observation_source s
    WHERE s.observation_id = search_documents.observation_id
      AND s.project_id = search_documents.project_id
      AND s.content_type = search_documents.content_type AND s.body = search_documents.body
      AND s.occurred_at = search_documents.occurred_at);

-- name: search_add_missing_observations
INSERT INTO search_documents (project_id, kind, observation_id, content_type, body,
                              occurred_at)
SELECT s.project_id, 'observation', s.observation_id, s.content_type, s.body, s.occurred_at
FROM search_observation_source s
WHERE NOT EXISTS (SELECT 1 FROM search_documents d WHERE d.observation_id = s.observation_id);
