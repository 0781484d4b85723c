-- ctxdb schema version 19 for SQLite: observations, the timeline of what agent sessions did
-- (see docs/timeline.md), and their full-text search.
--
-- An observation is one thing an agent-client session did, extracted deterministically from
-- its transcript (a prompt, a file read or edited, a command and its exit code, an error, a
-- todo list, a decision, a compaction and its summary) or recorded by ctxdb itself (a
-- handoff). It is its own table rather than an event of a conversation session
-- (session_events): those are messages an application appends to a session it opened, with
-- gapless numbers, while observations are derived from an agent's own records, keyed by
-- them, and re-ingesting a transcript must add nothing. source_key is that natural key (the
-- record's uuid or the tool call's id, with the kind); every insert is ON CONFLICT DO NOTHING.
--
-- search_documents gains observation_id and the kind 'observation': SQLite cannot change a
-- CHECK constraint in place, so the table is rebuilt (same doc_ids and terms: the FTS5 index,
-- keyed by doc_id, stays valid), and the triggers that write into it are made again.

-- migrate:up
CREATE TABLE observations (
    observation_id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id TEXT NOT NULL REFERENCES projects(project_id) ON DELETE CASCADE,
    instance_id TEXT REFERENCES instances(instance_id) ON DELETE SET NULL,
    session_id TEXT NOT NULL,
    generation INTEGER CHECK (generation >= 0),
    kind TEXT NOT NULL CHECK (kind IN ('prompt', 'read', 'edit', 'command', 'error', 'todo',
                                       'decision', 'compaction', 'summary', 'handoff')),
    tool TEXT,
    text TEXT NOT NULL,
    exit_code INTEGER,
    source_key TEXT NOT NULL UNIQUE,
    occurred_at TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX idx_observations_project ON observations(project_id, occurred_at);
CREATE INDEX idx_observations_session ON observations(session_id, occurred_at);
CREATE INDEX idx_observations_instance ON observations(instance_id);

CREATE TABLE search_documents_new (
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
    CHECK ((kind = 'context') = (item_id IS NOT NULL)
           AND (kind = 'memory') = (memory_id IS NOT NULL)
           AND (kind = 'event') = (event_id IS NOT NULL)
           AND (kind = 'observation') = (observation_id IS NOT NULL))
);
INSERT INTO search_documents_new (doc_id, project_id, kind, item_id, memory_id, event_id,
                                  content_type, priority, namespace, body, expires_at,
                                  occurred_at, terms)
SELECT doc_id, project_id, kind, item_id, memory_id, event_id, content_type, priority,
       namespace, body, expires_at, occurred_at, terms
FROM search_documents;
-- The triggers writing documents name the table: dropped before it, made again after.
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

-- The full-text index's triggers (as migration 0014 made them).
CREATE TRIGGER search_fts_insert AFTER INSERT ON search_documents
WHEN new.terms IS NOT NULL BEGIN
    INSERT INTO search_fts (rowid, terms) VALUES (new.doc_id, new.terms);
END;
CREATE TRIGGER search_fts_delete AFTER DELETE ON search_documents
WHEN old.terms IS NOT NULL BEGIN
    INSERT INTO search_fts (search_fts, rowid, terms) VALUES ('delete', old.doc_id, old.terms);
END;
CREATE TRIGGER search_fts_update AFTER UPDATE OF terms ON search_documents BEGIN
    INSERT INTO search_fts (search_fts, rowid, terms)
    SELECT 'delete', old.doc_id, old.terms WHERE old.terms IS NOT NULL;
    INSERT INTO search_fts (rowid, terms)
    SELECT new.doc_id, new.terms WHERE new.terms IS NOT NULL;
END;
CREATE TRIGGER search_terms_stale AFTER UPDATE OF body ON search_documents
WHEN new.body IS NOT old.body AND new.terms IS NOT NULL BEGIN
    UPDATE search_documents SET terms = NULL WHERE doc_id = new.doc_id;
END;

-- The source tables' triggers (as migration 0008 made them).
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
CREATE TRIGGER search_event_insert AFTER INSERT ON session_events BEGIN
    INSERT INTO search_documents (project_id, kind, event_id, content_type, body, occurred_at)
    SELECT project_id, 'event', event_id, content_type, body, occurred_at
    FROM search_event_source WHERE event_id = new.event_id;
END;

-- An observation's document: its text, its kind as the type. Observations never change.
CREATE VIEW search_observation_source AS
SELECT o.project_id, o.observation_id, o.kind AS content_type, o.text AS body, o.occurred_at
FROM observations o;

CREATE TRIGGER search_observation_insert AFTER INSERT ON observations BEGIN
    INSERT INTO search_documents (project_id, kind, observation_id, content_type, body,
                                  occurred_at)
    VALUES (new.project_id, 'observation', new.observation_id, new.kind, new.text,
            new.occurred_at);
END;

-- migrate:down
DROP TRIGGER search_observation_insert;
DROP VIEW search_observation_source;
DELETE FROM search_documents WHERE kind = 'observation';

CREATE TABLE search_documents_old (
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
    terms TEXT,
    CHECK ((kind = 'context') = (item_id IS NOT NULL)
           AND (kind = 'memory') = (memory_id IS NOT NULL)
           AND (kind = 'event') = (event_id IS NOT NULL))
);
INSERT INTO search_documents_old (doc_id, project_id, kind, item_id, memory_id, event_id,
                                  content_type, priority, namespace, body, expires_at,
                                  occurred_at, terms)
SELECT doc_id, project_id, kind, item_id, memory_id, event_id, content_type, priority,
       namespace, body, expires_at, occurred_at, terms
FROM search_documents;
DROP TRIGGER search_event_insert;
DROP TRIGGER search_memory_update;
DROP TRIGGER search_memory_insert;
DROP TRIGGER search_context_update;
DROP TRIGGER search_context_insert;
DROP TABLE search_documents;
ALTER TABLE search_documents_old RENAME TO search_documents;
DROP TABLE observations;

CREATE UNIQUE INDEX idx_search_documents_item ON search_documents(item_id)
    WHERE item_id IS NOT NULL;
CREATE UNIQUE INDEX idx_search_documents_memory ON search_documents(memory_id)
    WHERE memory_id IS NOT NULL;
CREATE UNIQUE INDEX idx_search_documents_event ON search_documents(event_id)
    WHERE event_id IS NOT NULL;
CREATE INDEX idx_search_documents_pending ON search_documents(doc_id) WHERE terms IS NULL;

-- The full-text index's triggers (as migration 0014 made them).
CREATE TRIGGER search_fts_insert AFTER INSERT ON search_documents
WHEN new.terms IS NOT NULL BEGIN
    INSERT INTO search_fts (rowid, terms) VALUES (new.doc_id, new.terms);
END;
CREATE TRIGGER search_fts_delete AFTER DELETE ON search_documents
WHEN old.terms IS NOT NULL BEGIN
    INSERT INTO search_fts (search_fts, rowid, terms) VALUES ('delete', old.doc_id, old.terms);
END;
CREATE TRIGGER search_fts_update AFTER UPDATE OF terms ON search_documents BEGIN
    INSERT INTO search_fts (search_fts, rowid, terms)
    SELECT 'delete', old.doc_id, old.terms WHERE old.terms IS NOT NULL;
    INSERT INTO search_fts (rowid, terms)
    SELECT new.doc_id, new.terms WHERE new.terms IS NOT NULL;
END;
CREATE TRIGGER search_terms_stale AFTER UPDATE OF body ON search_documents
WHEN new.body IS NOT old.body AND new.terms IS NOT NULL BEGIN
    UPDATE search_documents SET terms = NULL WHERE doc_id = new.doc_id;
END;

-- The source tables' triggers (as migration 0008 made them).
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
CREATE TRIGGER search_event_insert AFTER INSERT ON session_events BEGIN
    INSERT INTO search_documents (project_id, kind, event_id, content_type, body, occurred_at)
    SELECT project_id, 'event', event_id, content_type, body, occurred_at
    FROM search_event_source WHERE event_id = new.event_id;
END;
