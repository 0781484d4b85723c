-- ctxdb schema version 25 for SQLite: a store writes its item's search document once, with
-- its index terms (issue 14; see docs/architecture.md, "The search document written once",
-- and PostgreSQL's 0025, which changes nothing).
--
-- Before, the trigger on context_items wrote the document (its body, no terms) inside the
-- item's INSERT, and the store's look for documents without terms then wrote them: two
-- writes of the row, two statements more. A trigger cannot make the terms (they are made in
-- Python, storage/search_text.py) and fires inside the INSERT, before any later statement
-- could write the document: so ctxdb's store now writes the document first, with the id the
-- item is about to get (drawn with its sequence number, as AUTOINCREMENT would draw it) and
-- its terms, then the item, whose trigger finds the document and writes none. An item of
-- another writer (no document yet) gets its document from the trigger as before.
--
-- The document exists before its item for the length of one statement, so the key from
-- search_documents.item_id to context_items is checked at COMMIT (DEFERRABLE INITIALLY
-- DEFERRED): a store that did not insert its item (the idempotency key taken) rolls back,
-- and a transaction that left a document without its item could not commit. SQLite cannot
-- change a constraint in place, so the table is rebuilt as 0019 rebuilt it: the same rows,
-- doc_ids and terms (the FTS5 index, keyed by doc_id, stays valid), the same indexes, and
-- the triggers that name the table made again with the same text.

-- migrate:up
CREATE TABLE search_documents_new (
    doc_id INTEGER PRIMARY KEY,
    project_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('context', 'memory', 'event', 'observation')),
    item_id INTEGER REFERENCES context_items(item_id) ON DELETE CASCADE
        DEFERRABLE INITIALLY DEFERRED,
    memory_id TEXT REFERENCES memories(memory_id) ON DELETE CASCADE,
    event_id INTEGER REFERENCES session_events(event_id) ON DELETE CASCADE,
    content_type TEXT NOT NULL,
    priority TEXT,
    namespace TEXT,
    body TEXT NOT NULL,
    expires_at TEXT,
    occurred_at TEXT NOT NULL,
    terms TEXT,
    observation_id INTEGER REFERENCES observations(observation_id) ON DELETE CASCADE,
    project_key TEXT GENERATED ALWAYS AS ('p' || hex(project_id)) VIRTUAL,
    CHECK ((kind = 'context') = (item_id IS NOT NULL)
           AND (kind = 'memory') = (memory_id IS NOT NULL)
           AND (kind = 'event') = (event_id IS NOT NULL)
           AND (kind = 'observation') = (observation_id IS NOT NULL))
);
INSERT INTO search_documents_new (doc_id, project_id, kind, item_id, memory_id, event_id, content_type,
                                 priority, namespace, body, expires_at, occurred_at, terms,
                                 observation_id)
SELECT doc_id, project_id, kind, item_id, memory_id, event_id, content_type, priority,
       namespace, body, expires_at, occurred_at, terms, observation_id
FROM search_documents;
-- The triggers writing documents name the table: dropped before it, made again after.
DROP TRIGGER search_observation_insert;
DROP TRIGGER search_event_insert;
DROP TRIGGER search_memory_update;
DROP TRIGGER search_memory_insert;
DROP TRIGGER search_context_update;
DROP TRIGGER search_context_insert;
DROP TABLE search_documents;
ALTER TABLE search_documents_new RENAME TO search_documents;

CREATE UNIQUE INDEX idx_search_documents_item ON search_documents(item_id)
    WHERE item_id IS NOT NULL;
CREATE UNIQUE INDEX idx_search_documents_memory ON search_documents(memory_id)
    WHERE memory_id IS NOT NULL;
CREATE UNIQUE INDEX idx_search_documents_event ON search_documents(event_id)
    WHERE event_id IS NOT NULL;
CREATE UNIQUE INDEX idx_search_documents_observation ON search_documents(observation_id)
    WHERE observation_id IS NOT NULL;
CREATE INDEX idx_search_documents_pending ON search_documents(doc_id) WHERE terms IS NULL;

-- The full-text index's triggers, as migrations 0021 and 0024 made them (search_terms_stale
-- before search_fts_update, which must fire first: SQLite fires the newest first).
CREATE TRIGGER search_fts_insert AFTER INSERT ON search_documents
WHEN new.terms IS NOT NULL BEGIN
    INSERT INTO search_fts (rowid, terms, project_key)
    VALUES (new.doc_id, new.terms, new.project_key);
END;
CREATE TRIGGER search_fts_delete AFTER DELETE ON search_documents
WHEN old.terms IS NOT NULL BEGIN
    INSERT INTO search_fts (search_fts, rowid, terms, project_key)
    VALUES ('delete', old.doc_id, old.terms, old.project_key);
END;
CREATE TRIGGER search_terms_stale AFTER UPDATE OF body ON search_documents
WHEN new.body IS NOT old.body AND new.terms IS NOT NULL AND new.terms IS old.terms BEGIN
    UPDATE search_documents SET terms = NULL WHERE doc_id = new.doc_id;
END;
CREATE TRIGGER search_fts_update AFTER UPDATE OF terms, project_id ON search_documents BEGIN
    INSERT INTO search_fts (search_fts, rowid, terms, project_key)
    SELECT 'delete', old.doc_id, old.terms, old.project_key WHERE old.terms IS NOT NULL;
    INSERT INTO search_fts (rowid, terms, project_key)
    SELECT new.doc_id, new.terms, new.project_key WHERE new.terms IS NOT NULL;
END;

-- The source tables' triggers, as migrations 0019 and 0024 made them, but for
-- search_context_insert, which leaves the document of an item that has one.
-- An item whose document its store wrote first (ctxdb's store: the document has the
-- item's id before the item exists, search_documents.item_id's key being deferred to the
-- commit) gets none from the trigger; any other insert gets its document as before.
CREATE TRIGGER search_context_insert AFTER INSERT ON context_items
WHEN new.state = 'active'
     AND NOT EXISTS (SELECT 1 FROM search_documents d WHERE d.item_id = new.item_id)
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
CREATE TRIGGER search_memory_insert AFTER INSERT ON memories WHEN new.deleted_at IS NULL
BEGIN
    INSERT INTO search_documents (project_id, kind, memory_id, content_type, namespace, body,
                                  expires_at, occurred_at)
    SELECT project_id, 'memory', memory_id, content_type, namespace, body, expires_at,
           occurred_at
    FROM search_memory_source WHERE memory_id = new.memory_id;
END;
CREATE TRIGGER search_memory_update AFTER UPDATE ON memories
WHEN new.deleted_at IS NOT NULL OR new.memory_id IS NOT old.memory_id
     OR new.document_version IS NOT new.version
     OR new.document_version IS old.document_version
BEGIN
    DELETE FROM search_documents
    WHERE memory_id = old.memory_id AND (new.deleted_at IS NOT NULL
                                         OR new.memory_id <> old.memory_id);
    -- NULL terms even where the body is unchanged: keeping them when it is (a CASE naming
    -- the document's old body) made a put of another connection a fifth dearer.
    UPDATE search_documents
    SET (project_id, content_type, namespace, body, expires_at, occurred_at, terms) = (
        SELECT project_id, content_type, namespace, body, expires_at, occurred_at, NULL
        FROM search_memory_source WHERE memory_id = new.memory_id)
    WHERE memory_id = new.memory_id AND new.deleted_at IS NULL;
    INSERT INTO search_documents (project_id, kind, memory_id, content_type, namespace, body,
                                  expires_at, occurred_at)
    SELECT project_id, 'memory', memory_id, content_type, namespace, body, expires_at,
           occurred_at
    FROM search_memory_source s WHERE memory_id = new.memory_id
      AND NOT EXISTS (SELECT 1 FROM search_documents d WHERE d.memory_id = s.memory_id);
END;
CREATE TRIGGER search_event_insert AFTER INSERT ON session_events BEGIN
    INSERT INTO search_documents (project_id, kind, event_id, content_type, body, occurred_at)
    SELECT project_id, 'event', event_id, content_type, body, occurred_at
    FROM search_event_source WHERE event_id = new.event_id;
END;
CREATE TRIGGER search_observation_insert AFTER INSERT ON observations BEGIN
    INSERT INTO search_documents (project_id, kind, observation_id, content_type, body,
                                  occurred_at)
    VALUES (new.project_id, 'observation', new.observation_id, new.kind, new.text,
            new.occurred_at);
END;

-- migrate:down
-- As before: search_documents.item_id's key checked at each statement, and every live
-- item's document written by the trigger.
CREATE TABLE search_documents_old (
    doc_id INTEGER PRIMARY KEY,
    project_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('context', 'memory', 'event', 'observation')),
    item_id INTEGER REFERENCES context_items(item_id) ON DELETE CASCADE,
    memory_id TEXT REFERENCES memories(memory_id) ON DELETE CASCADE,
    event_id INTEGER REFERENCES session_events(event_id) ON DELETE CASCADE,
    content_type TEXT NOT NULL,
    priority TEXT,
    namespace TEXT,
    body TEXT NOT NULL,
    expires_at TEXT,
    occurred_at TEXT NOT NULL,
    terms TEXT,
    observation_id INTEGER REFERENCES observations(observation_id) ON DELETE CASCADE,
    project_key TEXT GENERATED ALWAYS AS ('p' || hex(project_id)) VIRTUAL,
    CHECK ((kind = 'context') = (item_id IS NOT NULL)
           AND (kind = 'memory') = (memory_id IS NOT NULL)
           AND (kind = 'event') = (event_id IS NOT NULL)
           AND (kind = 'observation') = (observation_id IS NOT NULL))
);
INSERT INTO search_documents_old (doc_id, project_id, kind, item_id, memory_id, event_id, content_type,
                                 priority, namespace, body, expires_at, occurred_at, terms,
                                 observation_id)
SELECT doc_id, project_id, kind, item_id, memory_id, event_id, content_type, priority,
       namespace, body, expires_at, occurred_at, terms, observation_id
FROM search_documents;
-- The triggers writing documents name the table: dropped before it, made again after.
DROP TRIGGER search_observation_insert;
DROP TRIGGER search_event_insert;
DROP TRIGGER search_memory_update;
DROP TRIGGER search_memory_insert;
DROP TRIGGER search_context_update;
DROP TRIGGER search_context_insert;
DROP TABLE search_documents;
ALTER TABLE search_documents_old RENAME TO search_documents;

CREATE UNIQUE INDEX idx_search_documents_item ON search_documents(item_id)
    WHERE item_id IS NOT NULL;
CREATE UNIQUE INDEX idx_search_documents_memory ON search_documents(memory_id)
    WHERE memory_id IS NOT NULL;
CREATE UNIQUE INDEX idx_search_documents_event ON search_documents(event_id)
    WHERE event_id IS NOT NULL;
CREATE UNIQUE INDEX idx_search_documents_observation ON search_documents(observation_id)
    WHERE observation_id IS NOT NULL;
CREATE INDEX idx_search_documents_pending ON search_documents(doc_id) WHERE terms IS NULL;

-- The full-text index's triggers, as migrations 0021 and 0024 made them (search_terms_stale
-- before search_fts_update, which must fire first: SQLite fires the newest first).
CREATE TRIGGER search_fts_insert AFTER INSERT ON search_documents
WHEN new.terms IS NOT NULL BEGIN
    INSERT INTO search_fts (rowid, terms, project_key)
    VALUES (new.doc_id, new.terms, new.project_key);
END;
CREATE TRIGGER search_fts_delete AFTER DELETE ON search_documents
WHEN old.terms IS NOT NULL BEGIN
    INSERT INTO search_fts (search_fts, rowid, terms, project_key)
    VALUES ('delete', old.doc_id, old.terms, old.project_key);
END;
CREATE TRIGGER search_terms_stale AFTER UPDATE OF body ON search_documents
WHEN new.body IS NOT old.body AND new.terms IS NOT NULL AND new.terms IS old.terms BEGIN
    UPDATE search_documents SET terms = NULL WHERE doc_id = new.doc_id;
END;
CREATE TRIGGER search_fts_update AFTER UPDATE OF terms, project_id ON search_documents BEGIN
    INSERT INTO search_fts (search_fts, rowid, terms, project_key)
    SELECT 'delete', old.doc_id, old.terms, old.project_key WHERE old.terms IS NOT NULL;
    INSERT INTO search_fts (rowid, terms, project_key)
    SELECT new.doc_id, new.terms, new.project_key WHERE new.terms IS NOT NULL;
END;

-- The source tables' triggers, as migrations 0019 and 0024 made them.
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
CREATE TRIGGER search_memory_insert AFTER INSERT ON memories WHEN new.deleted_at IS NULL
BEGIN
    INSERT INTO search_documents (project_id, kind, memory_id, content_type, namespace, body,
                                  expires_at, occurred_at)
    SELECT project_id, 'memory', memory_id, content_type, namespace, body, expires_at,
           occurred_at
    FROM search_memory_source WHERE memory_id = new.memory_id;
END;
CREATE TRIGGER search_memory_update AFTER UPDATE ON memories
WHEN new.deleted_at IS NOT NULL OR new.memory_id IS NOT old.memory_id
     OR new.document_version IS NOT new.version
     OR new.document_version IS old.document_version
BEGIN
    DELETE FROM search_documents
    WHERE memory_id = old.memory_id AND (new.deleted_at IS NOT NULL
                                         OR new.memory_id <> old.memory_id);
    -- NULL terms even where the body is unchanged: keeping them when it is (a CASE naming
    -- the document's old body) made a put of another connection a fifth dearer.
    UPDATE search_documents
    SET (project_id, content_type, namespace, body, expires_at, occurred_at, terms) = (
        SELECT project_id, content_type, namespace, body, expires_at, occurred_at, NULL
        FROM search_memory_source WHERE memory_id = new.memory_id)
    WHERE memory_id = new.memory_id AND new.deleted_at IS NULL;
    INSERT INTO search_documents (project_id, kind, memory_id, content_type, namespace, body,
                                  expires_at, occurred_at)
    SELECT project_id, 'memory', memory_id, content_type, namespace, body, expires_at,
           occurred_at
    FROM search_memory_source s WHERE memory_id = new.memory_id
      AND NOT EXISTS (SELECT 1 FROM search_documents d WHERE d.memory_id = s.memory_id);
END;
CREATE TRIGGER search_event_insert AFTER INSERT ON session_events BEGIN
    INSERT INTO search_documents (project_id, kind, event_id, content_type, body, occurred_at)
    SELECT project_id, 'event', event_id, content_type, body, occurred_at
    FROM search_event_source WHERE event_id = new.event_id;
END;
CREATE TRIGGER search_observation_insert AFTER INSERT ON observations BEGIN
    INSERT INTO search_documents (project_id, kind, observation_id, content_type, body,
                                  occurred_at)
    VALUES (new.project_id, 'observation', new.observation_id, new.kind, new.text,
            new.occurred_at);
END;
