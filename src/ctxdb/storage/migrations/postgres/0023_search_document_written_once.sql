-- ctxdb schema version 23 for PostgreSQL: a stored item's search document is written once,
-- with its index terms, by the statement that stores the item (issue 14; see
-- docs/architecture.md, "The search document written once", and SQLite's 0023).
--
-- Before, the trigger on context_items inserted the document without terms and the store
-- then gave it its terms (Storage.indexing): a second version of the row in the same
-- transaction, with a second set of index entries (the terms change the indexed
-- search_vector, so the update was never a HOT one), left dead behind every store. The store
-- (store_next_item) now inserts the document with its terms itself, its body made in Python
-- exactly as ctxdb_search_text makes it (storage/search_body.py; a test compares the two).
-- The trigger fires after that whole statement and finds the document: it writes one only
-- for a row that has none, as for every row written by other statements or connections
-- (those documents still get their terms from the look that follows such a statement). It
-- looks the document up before making the body, so a store does not compute it twice.
-- Existing documents are unchanged: they search as before.

-- migrate:up
CREATE OR REPLACE FUNCTION ctxdb_search_context() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        DELETE FROM search_documents WHERE item_id = OLD.item_id;
    END IF;
    IF NEW.state = 'active' AND NOT EXISTS (
            SELECT FROM search_documents WHERE item_id = NEW.item_id) THEN
        INSERT INTO search_documents (project_id, kind, item_id, content_type, priority, body,
                                      occurred_at)
        VALUES (NEW.project_id, 'context', NEW.item_id, NEW.content_type, NEW.priority,
                ctxdb_search_text(NEW.content), NEW.created_at);
    END IF;
    RETURN NULL;
END
$$;
-- What a store asks (dialect.documents_once_probe) before it writes the document itself.
COMMENT ON FUNCTION ctxdb_search_context() IS
    'A context item''s search document: written once, by the store, where it has none';

-- migrate:down
COMMENT ON FUNCTION ctxdb_search_context() IS NULL;
CREATE OR REPLACE FUNCTION ctxdb_search_context() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        DELETE FROM search_documents WHERE item_id = OLD.item_id;
    END IF;
    IF NEW.state = 'active' THEN
        INSERT INTO search_documents (project_id, kind, item_id, content_type, priority, body,
                                      occurred_at)
        VALUES (NEW.project_id, 'context', NEW.item_id, NEW.content_type, NEW.priority,
                ctxdb_search_text(NEW.content), NEW.created_at);
    END IF;
    RETURN NULL;
END
$$;
