-- ctxdb schema version 14 for PostgreSQL: search by word forms and by the words of
-- identifiers (see docs/search.md and SQLite's 0014).
--
-- search_documents.terms is the text the full-text index holds for a document: its words
-- with camelCase split and each reduced to its Snowball English stem, computed by ctxdb in
-- Python (storage/search_text.py), the same on both backends. The search vector is made
-- from it with the 'simple' configuration (lower-casing only: the text is already
-- normalised), and is NULL while terms is. A document whose terms are NULL (new, or its
-- body changed) is given them before the transaction that wrote it commits (Storage.write),
-- and this migration's transaction gives them to every existing document the same way:
-- existing databases are re-indexed as they are upgraded.

-- migrate:up
DROP INDEX idx_search_documents_vector;
ALTER TABLE search_documents DROP COLUMN search_vector;
ALTER TABLE search_documents ADD COLUMN terms TEXT;
ALTER TABLE search_documents ADD COLUMN search_vector TSVECTOR
    GENERATED ALWAYS AS (to_tsvector('simple', terms)) STORED;
CREATE INDEX idx_search_documents_vector ON search_documents USING gin (search_vector);
-- The documents still to be given their terms: none, between transactions.
CREATE INDEX idx_search_documents_pending ON search_documents(doc_id) WHERE terms IS NULL;

-- A document whose body changes (a memory put) is to be indexed again.
CREATE FUNCTION ctxdb_search_terms_stale() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.body IS DISTINCT FROM OLD.body THEN
        NEW.terms := NULL;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER search_terms_stale BEFORE UPDATE OF body ON search_documents
FOR EACH ROW EXECUTE FUNCTION ctxdb_search_terms_stale();

-- migrate:down
DROP TRIGGER search_terms_stale ON search_documents;
DROP FUNCTION ctxdb_search_terms_stale();
DROP INDEX idx_search_documents_pending;
DROP INDEX idx_search_documents_vector;
ALTER TABLE search_documents DROP COLUMN search_vector;
ALTER TABLE search_documents DROP COLUMN terms;
ALTER TABLE search_documents ADD COLUMN search_vector TSVECTOR GENERATED ALWAYS AS (
    to_tsvector('simple', regexp_replace(body, '[^[:alnum:]]+', ' ', 'g'))) STORED;
CREATE INDEX idx_search_documents_vector ON search_documents USING gin (search_vector);
