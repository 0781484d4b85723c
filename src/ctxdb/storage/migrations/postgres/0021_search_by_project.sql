-- ctxdb schema version 21 for PostgreSQL: a search reads the documents of its project only,
-- however many documents the other projects hold (issue 14; see docs/search.md and SQLite's
-- 0021).
--
-- Every search is within one project, and the GIN index held the words of every project
-- together: a word found in most documents made the index hand over its matches in all the
-- projects (a bitmap of them, each row then read and filtered by project), a hundred times
-- the project's own on a database of 100 projects. The search vector now also holds one
-- lexeme that names the document's project ('p' and the MD5 of the project id: letters and
-- digits, however the id is written), and each search asks for it too: the index intersects
-- the word's entries with the project's (skipping through the longer list) before any row is
-- read. Ranking uses the query without it.

-- migrate:up
DROP INDEX idx_search_documents_vector;
ALTER TABLE search_documents DROP COLUMN search_vector;
ALTER TABLE search_documents ADD COLUMN search_vector TSVECTOR GENERATED ALWAYS AS (
    to_tsvector('simple', terms) || array_to_tsvector(ARRAY['p' || md5(project_id)])) STORED;
CREATE INDEX idx_search_documents_vector ON search_documents USING gin (search_vector);

-- migrate:down
DROP INDEX idx_search_documents_vector;
ALTER TABLE search_documents DROP COLUMN search_vector;
ALTER TABLE search_documents ADD COLUMN search_vector TSVECTOR
    GENERATED ALWAYS AS (to_tsvector('simple', terms)) STORED;
CREATE INDEX idx_search_documents_vector ON search_documents USING gin (search_vector);
