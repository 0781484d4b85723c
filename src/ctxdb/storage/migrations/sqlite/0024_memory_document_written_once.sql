-- ctxdb schema version 24 for SQLite: a memory put writes its memory's search document once,
-- with its index terms (issue 14; see docs/architecture.md, "The search document written
-- once", and PostgreSQL's 0024, which changes nothing).
--
-- Before, a put of a live memory rewrote its document three times in its transaction:
-- search_memory_update wrote the new body, search_terms_stale then set its terms to NULL
-- (FTS5 deleting the old ones), and the put's look for documents without terms gave it its
-- new terms (FTS5 inserting them). A trigger cannot make the terms (they are made in Python,
-- storage/search_text.py), and it fires inside the memory's UPDATE, before any later
-- statement of the put could write the document: so the put says, in the row it writes, that
-- it writes the document itself. memories.document_version is the version of the memory whose
-- document its writer wrote itself; a put that sets it to the version it writes (ctxdb's put
-- of a live memory, update_live_memory) claims the document, search_memory_update leaves it,
-- and the put then writes it once, body and terms together (write_memory_document). Every
-- other update (another connection's, a statement that leaves document_version as it was,
-- a tombstone) gets its document from the trigger as before, now in one write: the body and
-- NULL terms together (the look that follows the statement gives the terms; a write of
-- another connection, as before, waits for ctxdb's next write). search_terms_stale, which
-- did the second write, now clears the terms only of a document whose body changed and
-- whose terms did not (a body edited by hand): a write that gives the new terms with the
-- new body keeps them (the put's; should they equal the old ones, they are cleared and the
-- look writes them again). Existing memories and documents are unchanged: document_version
-- is NULL until a put. It is this database's own bookkeeping (storage/tables.py,
-- LOCAL_COLUMNS): never exported or copied, so a copied memory's next put claims its
-- document again.

-- migrate:up
ALTER TABLE memories ADD COLUMN document_version INTEGER;

-- SQLite fires the triggers of one event newest first, and the full-text index's must fire
-- before search_terms_stale (as since 0021): the other way round, a write of a body with
-- the terms it had would have the old terms deleted from the index twice, once by
-- search_terms_stale's own update, and FTS5 would find its index corrupt. So it is made
-- again after search_terms_stale, with the same text.
DROP TRIGGER search_terms_stale;
CREATE TRIGGER search_terms_stale AFTER UPDATE OF body ON search_documents
WHEN new.body IS NOT old.body AND new.terms IS NOT NULL AND new.terms IS old.terms BEGIN
    UPDATE search_documents SET terms = NULL WHERE doc_id = new.doc_id;
END;
DROP TRIGGER search_fts_update;
CREATE TRIGGER search_fts_update AFTER UPDATE OF terms, project_id ON search_documents BEGIN
    INSERT INTO search_fts (search_fts, rowid, terms, project_key)
    SELECT 'delete', old.doc_id, old.terms, old.project_key WHERE old.terms IS NOT NULL;
    INSERT INTO search_fts (rowid, terms, project_key)
    SELECT new.doc_id, new.terms, new.project_key WHERE new.terms IS NOT NULL;
END;

DROP TRIGGER search_memory_update;
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

-- migrate:down
-- The documents stay as they are (each has the body and terms of its memory's latest put).
DROP TRIGGER search_memory_update;
ALTER TABLE memories DROP COLUMN document_version;

-- As migration 0019 made them, and the full-text index's trigger made again after
-- search_terms_stale (see migrate:up).
DROP TRIGGER search_terms_stale;
CREATE TRIGGER search_terms_stale AFTER UPDATE OF body ON search_documents
WHEN new.body IS NOT old.body AND new.terms IS NOT NULL BEGIN
    UPDATE search_documents SET terms = NULL WHERE doc_id = new.doc_id;
END;
DROP TRIGGER search_fts_update;
-- As migration 0021 made it.
CREATE TRIGGER search_fts_update AFTER UPDATE OF terms, project_id ON search_documents BEGIN
    INSERT INTO search_fts (search_fts, rowid, terms, project_key)
    SELECT 'delete', old.doc_id, old.terms, old.project_key WHERE old.terms IS NOT NULL;
    INSERT INTO search_fts (rowid, terms, project_key)
    SELECT new.doc_id, new.terms, new.project_key WHERE new.terms IS NOT NULL;
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
