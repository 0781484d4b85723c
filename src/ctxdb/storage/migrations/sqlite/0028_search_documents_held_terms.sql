-- ctxdb schema version 28 for SQLite: a document whose terms are cleared keeps, until its batch,
-- the terms the full-text index holds for it (issue 14; docs/architecture.md, "The memory put's
-- index work in the batch too").
--
-- Since 0027 a document written without its terms waits for them until DEFER_LIMIT wait and
-- one statement gives them all theirs (one FTS5 segment for the batch). A write that changed a
-- document the index already held still paid its segment at once: clearing the terms made
-- search_fts_update delete the old ones from the index, and FTS5 must be given the very terms
-- it holds to delete them (external content), which the row then no longer had. So the row
-- now keeps them: search_documents.indexed_terms holds the terms the index holds for a
-- document whose terms are NULL (a "stale" document: it waits like any other, and the index
-- still finds it by its old terms until the batch). search_terms_held moves them there in the
-- statement that clears the terms, and clears them again once the terms are given; the index
-- then changes only when terms are given (or a document moves to another project, or goes):
-- the old terms deleted, the new inserted, in the batch's one statement. So the index holds,
-- for each document, coalesce(terms, indexed_terms), and every writer of terms, whatever it
-- knows of this column, keeps that true (a memory put, search_memory_update, a body changed
-- by hand through search_terms_stale, the batch, a rebuild's repair).
--
-- A stale document has NULL terms: the partial index of the waiting documents holds it, and
-- everything that brings the index current before a search (SQLiteTx), refuses a search on a
-- read-only storage, or gives the waiting documents their terms in a batch counts it too.
-- Its row is its only record: a process killed after the put leaves it stale, and the next
-- batch or search brings it current.
--
-- Taken back, every stale document's old terms are deleted from the index (it is then a
-- document waiting for its terms, as 0027 knows them, which Migrator._apply_down then gives
-- their terms), and the triggers are made again as 0027 had them.

-- migrate:up
ALTER TABLE search_documents ADD COLUMN indexed_terms TEXT;

-- Terms cleared: the index keeps what it holds, and the row keeps it too. Terms given: the
-- row's copy goes (the index statement below deletes it from the index). Reads only old.* and
-- new.*, as search_fts_update does: they fire in either order.
CREATE TRIGGER search_terms_held AFTER UPDATE OF terms ON search_documents
WHEN (new.terms IS NULL AND old.terms IS NOT NULL)
     OR (new.terms IS NOT NULL AND new.indexed_terms IS NOT NULL)
BEGIN
    UPDATE search_documents SET indexed_terms = CASE WHEN new.terms IS NULL THEN old.terms END
    WHERE doc_id = new.doc_id;
END;

-- The index changes when terms are given (not when they are cleared: the old ones stay until
-- then) and where a document changes project: what it held, coalesce(old.terms,
-- old.indexed_terms), is deleted; what it then holds inserted: the new terms, or, where they
-- are cleared, what it held (search_terms_held keeps it in the row). Nothing where the terms
-- given are those it holds. A delete only where the index has an entry for the document
-- (its row in search_fts_docsize): FTS5 finds its index corrupt when told to delete one it
-- does not have, and an index emptied by hand while a document was stale (a damage that
-- the rebuild repairs) must not make the batch fail before the rebuild can run.
DROP TRIGGER search_fts_update;
CREATE TRIGGER search_fts_update AFTER UPDATE OF terms, project_id ON search_documents
WHEN new.project_id IS NOT old.project_id
     OR (new.terms IS NOT NULL AND new.terms IS NOT coalesce(old.terms, old.indexed_terms))
BEGIN
    INSERT INTO search_fts (search_fts, rowid, terms, project_key)
    SELECT 'delete', old.doc_id, coalesce(old.terms, old.indexed_terms), old.project_key
    WHERE coalesce(old.terms, old.indexed_terms) IS NOT NULL
      AND EXISTS (SELECT 1 FROM search_fts_docsize WHERE id = old.doc_id);
    INSERT INTO search_fts (rowid, terms, project_key)
    SELECT new.doc_id, coalesce(new.terms, old.terms, old.indexed_terms), new.project_key
    WHERE coalesce(new.terms, old.terms, old.indexed_terms) IS NOT NULL;
END;

DROP TRIGGER search_fts_delete;
CREATE TRIGGER search_fts_delete AFTER DELETE ON search_documents
WHEN coalesce(old.terms, old.indexed_terms) IS NOT NULL BEGIN
    INSERT INTO search_fts (search_fts, rowid, terms, project_key)
    SELECT 'delete', old.doc_id, coalesce(old.terms, old.indexed_terms), old.project_key
    WHERE EXISTS (SELECT 1 FROM search_fts_docsize WHERE id = old.doc_id);
END;

-- migrate:down
-- The stale documents' old terms out of the index first, while the rows still hold them: each
-- is then a document waiting for its terms as 0027 knows them.
INSERT INTO search_fts (search_fts, rowid, terms, project_key)
SELECT 'delete', doc_id, indexed_terms, project_key FROM search_documents
WHERE indexed_terms IS NOT NULL AND terms IS NULL
  AND doc_id IN (SELECT id FROM search_fts_docsize);
DROP TRIGGER search_terms_held;
DROP TRIGGER search_fts_delete;
-- As migration 0021 made it.
CREATE TRIGGER search_fts_delete AFTER DELETE ON search_documents
WHEN old.terms IS NOT NULL BEGIN
    INSERT INTO search_fts (search_fts, rowid, terms, project_key)
    VALUES ('delete', old.doc_id, old.terms, old.project_key);
END;
-- As migration 0024 made it (after search_terms_stale, so that it fires first).
DROP TRIGGER search_fts_update;
CREATE TRIGGER search_fts_update AFTER UPDATE OF terms, project_id ON search_documents BEGIN
    INSERT INTO search_fts (search_fts, rowid, terms, project_key)
    SELECT 'delete', old.doc_id, old.terms, old.project_key WHERE old.terms IS NOT NULL;
    INSERT INTO search_fts (rowid, terms, project_key)
    SELECT new.doc_id, new.terms, new.project_key WHERE new.terms IS NOT NULL;
END;
ALTER TABLE search_documents DROP COLUMN indexed_terms;
