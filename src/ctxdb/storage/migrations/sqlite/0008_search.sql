-- ctxdb schema version 8 for SQLite: full-text search over context items, memories and
-- conversation events (see docs/search.md).
--
-- search_documents holds one row per searchable record: each live context item, each live
-- (not deleted) memory at its latest version, and every session event, with the columns a
-- search filters on and the record's text. Three views say what that row is for each kind
-- of record (written once, used by the triggers, the backfill below and a rebuild).
-- Triggers on the source tables keep the documents current, so a document is written,
-- replaced or removed in the very transaction that writes its record, and a rolled-back
-- write leaves none; deleting a record removes its document through the foreign key.
--
-- search_fts is an FTS5 index over search_documents.body (external content: the text is
-- stored once), kept in step by triggers on search_documents. The unicode61 tokenizer
-- (without folding diacritics) splits text into runs of letters and digits, as
-- PostgreSQL's index does after its normalization, so that a query finds the same records
-- on both backends.
--
-- The text of a JSON value is its keys and scalar values, one per line, in document order,
-- at most 200,000 characters (PostgreSQL cannot index much more text in one row; the rest
-- of a larger record is not searchable, on either backend).

-- migrate:up
CREATE TABLE search_documents (
    doc_id INTEGER PRIMARY KEY,
    project_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('context', 'memory', 'event')),
    item_id INTEGER REFERENCES context_items(item_id) ON DELETE CASCADE,
    memory_id TEXT REFERENCES memories(memory_id) ON DELETE CASCADE,
    event_id INTEGER REFERENCES session_events(event_id) ON DELETE CASCADE,
    content_type TEXT NOT NULL,
    priority TEXT,
    namespace TEXT,
    body TEXT NOT NULL,
    expires_at TEXT,
    occurred_at TEXT NOT NULL,
    CHECK ((kind = 'context') = (item_id IS NOT NULL)
           AND (kind = 'memory') = (memory_id IS NOT NULL)
           AND (kind = 'event') = (event_id IS NOT NULL))
);
-- One document per record. Partial indexes: each document is in one of them only, so a
-- write updates one index rather than three (two of them with a NULL entry).
CREATE UNIQUE INDEX idx_search_documents_item ON search_documents(item_id)
    WHERE item_id IS NOT NULL;
CREATE UNIQUE INDEX idx_search_documents_memory ON search_documents(memory_id)
    WHERE memory_id IS NOT NULL;
CREATE UNIQUE INDEX idx_search_documents_event ON search_documents(event_id)
    WHERE event_id IS NOT NULL;

CREATE VIEW search_context_source AS
SELECT c.project_id, c.item_id, c.content_type, c.priority,
       substr((SELECT coalesce(group_concat(part, char(10)), '') FROM (
           SELECT CASE WHEN typeof(key) = 'text' THEN key || coalesce(char(10) || CASE
                      WHEN type IN ('object', 'array', 'null') THEN NULL
                      WHEN type IN ('true', 'false') THEN type ELSE atom END, '')
                  ELSE CASE WHEN type IN ('object', 'array', 'null') THEN NULL
                      WHEN type IN ('true', 'false') THEN type ELSE atom END END AS part
           FROM json_tree(c.content))), 1, 200000) AS body,
       c.created_at AS occurred_at
FROM context_items c WHERE c.state = 'active';

CREATE VIEW search_memory_source AS
SELECT m.project_id, m.memory_id, m.memory_type AS content_type, m.namespace,
       substr(replace(m.namespace, ':', ' ') || char(10) || m.key || char(10) || (
           SELECT coalesce(group_concat(part, char(10)), '') FROM (
           SELECT CASE WHEN typeof(key) = 'text' THEN key || coalesce(char(10) || CASE
                      WHEN type IN ('object', 'array', 'null') THEN NULL
                      WHEN type IN ('true', 'false') THEN type ELSE atom END, '')
                  ELSE CASE WHEN type IN ('object', 'array', 'null') THEN NULL
                      WHEN type IN ('true', 'false') THEN type ELSE atom END END AS part
           FROM json_tree(m.value))), 1, 200000) AS body,
       m.expires_at, m.updated_at AS occurred_at
FROM memories m WHERE m.deleted_at IS NULL;

CREATE VIEW search_event_source AS
SELECT s.project_id, e.event_id, e.role AS content_type,
       substr((SELECT coalesce(group_concat(part, char(10)), '') FROM (
           SELECT CASE WHEN typeof(key) = 'text' THEN key || coalesce(char(10) || CASE
                      WHEN type IN ('object', 'array', 'null') THEN NULL
                      WHEN type IN ('true', 'false') THEN type ELSE atom END, '')
                  ELSE CASE WHEN type IN ('object', 'array', 'null') THEN NULL
                      WHEN type IN ('true', 'false') THEN type ELSE atom END END AS part
           FROM json_tree(e.content))), 1, 200000) AS body,
       e.created_at AS occurred_at
FROM session_events e JOIN sessions s ON s.session_id = e.session_id;

-- The records written before this migration.
INSERT INTO search_documents (project_id, kind, item_id, content_type, priority, body,
                              occurred_at)
SELECT project_id, 'context', item_id, content_type, priority, body, occurred_at
FROM search_context_source;
INSERT INTO search_documents (project_id, kind, memory_id, content_type, namespace, body,
                              expires_at, occurred_at)
SELECT project_id, 'memory', memory_id, content_type, namespace, body, expires_at,
       occurred_at
FROM search_memory_source;
INSERT INTO search_documents (project_id, kind, event_id, content_type, body, occurred_at)
SELECT project_id, 'event', event_id, content_type, body, occurred_at
FROM search_event_source;

CREATE VIRTUAL TABLE search_fts USING fts5(
    body, content = 'search_documents', content_rowid = 'doc_id',
    tokenize = 'unicode61 remove_diacritics 0'
);
INSERT INTO search_fts (search_fts) VALUES ('rebuild');

CREATE TRIGGER search_fts_insert AFTER INSERT ON search_documents BEGIN
    INSERT INTO search_fts (rowid, body) VALUES (new.doc_id, new.body);
END;
CREATE TRIGGER search_fts_delete AFTER DELETE ON search_documents BEGIN
    INSERT INTO search_fts (search_fts, rowid, body) VALUES ('delete', old.doc_id, old.body);
END;
CREATE TRIGGER search_fts_update AFTER UPDATE OF body ON search_documents BEGIN
    INSERT INTO search_fts (search_fts, rowid, body) VALUES ('delete', old.doc_id, old.body);
    INSERT INTO search_fts (rowid, body) VALUES (new.doc_id, new.body);
END;

-- Context items: a live item has a document; superseding or deleting it removes it.
CREATE TRIGGER search_context_insert AFTER INSERT ON context_items WHEN new.state = 'active'
BEGIN
    INSERT INTO search_documents (project_id, kind, item_id, content_type, priority, body,
                                  occurred_at)
    SELECT project_id, 'context', item_id, content_type, priority, body, occurred_at
    FROM search_context_source WHERE item_id = new.item_id;
END;
CREATE TRIGGER search_context_update
AFTER UPDATE OF state, content, content_type, priority, project_id ON context_items BEGIN
    DELETE FROM search_documents WHERE item_id = old.item_id;
    INSERT INTO search_documents (project_id, kind, item_id, content_type, priority, body,
                                  occurred_at)
    SELECT project_id, 'context', item_id, content_type, priority, body, occurred_at
    FROM search_context_source WHERE item_id = new.item_id;
END;

-- Memories: the document follows the current row (the latest version) while it is not a
-- tombstone; an expired memory keeps its document until it is swept, and searches skip it.
-- A put rewrites the document in place (its indexes unchanged); a delete removes it, and a
-- put after a delete adds it again.
CREATE TRIGGER search_memory_insert AFTER INSERT ON memories WHEN new.deleted_at IS NULL
BEGIN
    INSERT INTO search_documents (project_id, kind, memory_id, content_type, namespace, body,
                                  expires_at, occurred_at)
    SELECT project_id, 'memory', memory_id, content_type, namespace, body, expires_at,
           occurred_at
    FROM search_memory_source WHERE memory_id = new.memory_id;
END;
CREATE TRIGGER search_memory_update AFTER UPDATE ON memories BEGIN
    DELETE FROM search_documents
    WHERE memory_id = old.memory_id AND (new.deleted_at IS NOT NULL
                                         OR new.memory_id <> old.memory_id);
    UPDATE search_documents
    SET (project_id, content_type, namespace, body, expires_at, occurred_at) = (
        SELECT project_id, content_type, namespace, body, expires_at, occurred_at
        FROM search_memory_source WHERE memory_id = new.memory_id)
    WHERE memory_id = new.memory_id AND new.deleted_at IS NULL;
    INSERT INTO search_documents (project_id, kind, memory_id, content_type, namespace, body,
                                  expires_at, occurred_at)
    SELECT project_id, 'memory', memory_id, content_type, namespace, body, expires_at,
           occurred_at
    FROM search_memory_source s WHERE memory_id = new.memory_id
      AND NOT EXISTS (SELECT 1 FROM search_documents d WHERE d.memory_id = s.memory_id);
END;

-- Session events are appended once and never changed.
CREATE TRIGGER search_event_insert AFTER INSERT ON session_events BEGIN
    INSERT INTO search_documents (project_id, kind, event_id, content_type, body, occurred_at)
    SELECT project_id, 'event', event_id, content_type, body, occurred_at
    FROM search_event_source WHERE event_id = new.event_id;
END;

-- migrate:down
DROP TRIGGER search_event_insert;
DROP TRIGGER search_memory_update;
DROP TRIGGER search_memory_insert;
DROP TRIGGER search_context_update;
DROP TRIGGER search_context_insert;
DROP TRIGGER search_fts_update;
DROP TRIGGER search_fts_delete;
DROP TRIGGER search_fts_insert;
DROP TABLE search_fts;
DROP VIEW search_event_source;
DROP VIEW search_memory_source;
DROP VIEW search_context_source;
DROP TABLE search_documents;
