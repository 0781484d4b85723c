-- ctxdb schema version 26 for PostgreSQL: a memory put writes its memory's search document
-- once, with its index terms (issue 14; see docs/architecture.md, "The PostgreSQL memory put's
-- document written once", and SQLite's 0024, which did the same there).
--
-- Before, a put of a live memory (put_live_memory_recorded, one statement) wrote its document
-- twice in its transaction: search_memory_update, firing after the statement, wrote the new
-- body (search_terms_stale clearing the terms and giving a new doc_id), then the look for
-- documents without terms wrote the terms: a second version of the row with a second set of
-- index entries (the terms change the indexed search_vector, so never a HOT update), left
-- dead behind every put. The put now writes the document itself, body and terms together, as
-- one more part of its statement (its body made in Python exactly as the trigger makes it:
-- storage/search_body.py), and says so in the row it writes, as SQLite's put does since 0024:
-- memories.document_version is the version of the memory whose document its writer wrote
-- itself. A put that sets it to the version it writes claims the document, and
-- search_memory_update, whose WHEN now leaves such a row, does not fire at all. Every other
-- update (another connection's, the put's general path for a new, expired or deleted memory,
-- a statement that leaves document_version as it was, a tombstone, a move of the row) fires
-- it as before: the trigger writes the body, and the look that follows the statement gives
-- the terms. search_terms_stale now clears the terms only of a document whose body changed
-- and whose terms did not (the trigger's write, a body edited by hand): a write that gives
-- the new terms with the new body keeps them and its doc_id (the put's; should they equal
-- the old ones, they are cleared and the look, which travels with the put, writes them
-- again). Existing memories and documents are unchanged: document_version is NULL until a
-- put. It is this database's own bookkeeping (storage/tables.py, LOCAL_COLUMNS): never
-- exported or copied, so a copied memory's next put claims its document again.

-- migrate:up
ALTER TABLE memories ADD COLUMN document_version INTEGER;

CREATE OR REPLACE FUNCTION ctxdb_search_terms_stale() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.body IS DISTINCT FROM OLD.body AND NEW.terms IS NOT DISTINCT FROM OLD.terms THEN
        NEW.terms := NULL;
        NEW.doc_id := nextval(pg_get_serial_sequence('search_documents', 'doc_id'));
    END IF;
    RETURN NEW;
END
$$;
-- With the same condition as its WHEN, so that a write that gives the terms with the body
-- (every put) does not call the function at all.
DROP TRIGGER search_terms_stale ON search_documents;
CREATE TRIGGER search_terms_stale BEFORE UPDATE OF body ON search_documents
FOR EACH ROW WHEN (NEW.terms IS NOT DISTINCT FROM OLD.terms
                   AND NEW.body IS DISTINCT FROM OLD.body)
EXECUTE FUNCTION ctxdb_search_terms_stale();

DROP TRIGGER search_memory_update ON memories;
CREATE TRIGGER search_memory_update AFTER UPDATE ON memories
FOR EACH ROW WHEN (NEW.deleted_at IS NOT NULL OR NEW.memory_id <> OLD.memory_id
                   OR NEW.document_version IS DISTINCT FROM NEW.version
                   OR NEW.document_version IS NOT DISTINCT FROM OLD.document_version)
EXECUTE FUNCTION ctxdb_search_memory();

-- migrate:down
-- The documents stay as they are (each has the body and terms of its memory's latest put).
DROP TRIGGER search_memory_update ON memories;
CREATE TRIGGER search_memory_update AFTER UPDATE ON memories
FOR EACH ROW EXECUTE FUNCTION ctxdb_search_memory();
ALTER TABLE memories DROP COLUMN document_version;

-- As migrations 0014 and 0018 made them.
DROP TRIGGER search_terms_stale ON search_documents;
CREATE TRIGGER search_terms_stale BEFORE UPDATE OF body ON search_documents
FOR EACH ROW EXECUTE FUNCTION ctxdb_search_terms_stale();
CREATE OR REPLACE FUNCTION ctxdb_search_terms_stale() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.body IS DISTINCT FROM OLD.body THEN
        NEW.terms := NULL;
        NEW.doc_id := nextval(pg_get_serial_sequence('search_documents', 'doc_id'));
    END IF;
    RETURN NEW;
END
$$;
