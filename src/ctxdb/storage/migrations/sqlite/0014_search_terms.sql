-- ctxdb schema version 14 for SQLite: search by word forms and by the words of identifiers
-- (see docs/search.md).
--
-- search_documents.terms is the text the full-text index holds for a document: its words
-- with camelCase split and each reduced to its Snowball English stem, computed by ctxdb in
-- Python (storage/search_text.py), the same on both backends, so the engines match the same
-- documents. The triggers of 0008 still write each document with its body; a document whose
-- terms are NULL (new, or its body changed) is given them before the transaction that wrote
-- it commits (Storage.write), and this migration's transaction gives them to every existing
-- document the same way: existing databases are re-indexed as they are upgraded.
--
-- search_fts now indexes terms instead of body (still external content, so the text is
-- stored once); a document without terms is not in it.

-- migrate:up
DROP TRIGGER search_fts_update;
DROP TRIGGER search_fts_delete;
DROP TRIGGER search_fts_insert;
DROP TABLE search_fts;

ALTER TABLE search_documents ADD COLUMN terms TEXT;
-- The documents still to be given their terms: none, between transactions.
CREATE INDEX idx_search_documents_pending ON search_documents(doc_id) WHERE terms IS NULL;

CREATE VIRTUAL TABLE search_fts USING fts5(
    terms, content = 'search_documents', content_rowid = 'doc_id',
    tokenize = 'unicode61 remove_diacritics 0'
);

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
-- A document whose body changes (a memory put) is to be indexed again.
CREATE TRIGGER search_terms_stale AFTER UPDATE OF body ON search_documents
WHEN new.body IS NOT old.body AND new.terms IS NOT NULL BEGIN
    UPDATE search_documents SET terms = NULL WHERE doc_id = new.doc_id;
END;

-- migrate:down
DROP TRIGGER search_terms_stale;
DROP TRIGGER search_fts_update;
DROP TRIGGER search_fts_delete;
DROP TRIGGER search_fts_insert;
DROP TABLE search_fts;
DROP INDEX idx_search_documents_pending;
ALTER TABLE search_documents DROP COLUMN terms;

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
