-- ctxdb schema version 21 for SQLite: a search reads the documents of its project only,
-- however many documents the other projects hold (issue 14; see docs/search.md).
--
-- Every search is within one project, and the full-text index held the words of every
-- project together: a word found in most documents made FTS5 hand over, and bm25 score, its
-- matches in all the projects, before the project filter kept those of one. On a database of
-- 1,000,000 items over 100 projects that is a hundred times the work of the project's own
-- matches. search_fts now also indexes project_key, one token that names the document's
-- project ('p' and the hex digits of the project id's bytes, so that any project id is one
-- token of letters and digits), and each search adds the condition that project_key is its
-- project's token: FTS5 joins the word's matches with the project's documents in the index
-- itself (skipping through the longer list), and scores only those. bm25 weighs project_key
-- 0, so scores are what they were. project_key is a virtual generated column: computed when
-- read, never stored; PRAGMA table_info does not list it.

-- migrate:up
DROP TRIGGER search_fts_update;
DROP TRIGGER search_fts_delete;
DROP TRIGGER search_fts_insert;
DROP TABLE search_fts;

ALTER TABLE search_documents ADD COLUMN project_key TEXT
    GENERATED ALWAYS AS ('p' || hex(project_id)) VIRTUAL;

CREATE VIRTUAL TABLE search_fts USING fts5(
    terms, project_key, content = 'search_documents', content_rowid = 'doc_id',
    tokenize = 'unicode61 remove_diacritics 0'
);
INSERT INTO search_fts (search_fts) VALUES ('rebuild');

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
CREATE TRIGGER search_fts_update AFTER UPDATE OF terms, project_id ON search_documents BEGIN
    INSERT INTO search_fts (search_fts, rowid, terms, project_key)
    SELECT 'delete', old.doc_id, old.terms, old.project_key WHERE old.terms IS NOT NULL;
    INSERT INTO search_fts (rowid, terms, project_key)
    SELECT new.doc_id, new.terms, new.project_key WHERE new.terms IS NOT NULL;
END;

-- migrate:down
DROP TRIGGER search_fts_update;
DROP TRIGGER search_fts_delete;
DROP TRIGGER search_fts_insert;
DROP TABLE search_fts;
ALTER TABLE search_documents DROP COLUMN project_key;

CREATE VIRTUAL TABLE search_fts USING fts5(
    terms, content = 'search_documents', content_rowid = 'doc_id',
    tokenize = 'unicode61 remove_diacritics 0'
);
INSERT INTO search_fts (search_fts) VALUES ('rebuild');

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
