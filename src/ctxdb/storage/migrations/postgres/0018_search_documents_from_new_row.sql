-- ctxdb schema version 18 for PostgreSQL: the search triggers build a document from the row
-- they fire on (NEW) instead of reading that row back through the search_*_source views.
--
-- Why: a PL/pgSQL function keeps the plans of its statements for the life of the connection,
-- and after five calls it keeps a generic plan, made for the tables as they were then. With
-- the tables small (a new database; autovacuum off, or a server that has not analyzed them
-- yet) the plan chosen for "the live item whose item_id is N" was a walk of the whole index
-- of live items (idx_items_live_phase, whose predicate matches the view's) with a filter on
-- item_id, instead of a look-up by key: every store then read every live item of the
-- database, and a long-lived process slowed down with each item it stored (issue 14). The
-- document's values are all in NEW, so the triggers now read nothing, whatever the plans and
-- the statistics. The views stay: the search repair reads them, and the body expressions
-- below are theirs (a test checks that a document equals its view's row).
--
-- The other statements of these functions look a row up by a key that has one index made
-- for it (the document of an item, of a memory; the session of an event).
--
-- And a document whose body changes (a memory put rewrites its document in place) gets a new
-- doc_id as its terms are cleared, like a document written anew: the documents still without
-- terms are then always above every id handed out before the transaction began, which is
-- where a write looks for them (Storage.indexing). Looking from the first document instead
-- stepped over the index entries of every document indexed since the last vacuum.

-- migrate:up
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

CREATE OR REPLACE FUNCTION ctxdb_search_memory() RETURNS TRIGGER LANGUAGE plpgsql AS $$
DECLARE
    new_body TEXT;
BEGIN
    IF TG_OP = 'UPDATE' AND (NEW.deleted_at IS NOT NULL OR NEW.memory_id <> OLD.memory_id) THEN
        DELETE FROM search_documents WHERE memory_id = OLD.memory_id;
    END IF;
    IF NEW.deleted_at IS NOT NULL THEN
        RETURN NULL;
    END IF;
    new_body := left(replace(NEW.namespace, ':', ' ') || E'\n' || NEW.key || E'\n'
                 || ctxdb_search_text(NEW.value), 200000);
    IF TG_OP = 'UPDATE' THEN
        UPDATE search_documents d
        SET (project_id, content_type, namespace, body, expires_at, occurred_at) = (
            NEW.project_id, NEW.memory_type, NEW.namespace, new_body, NEW.expires_at,
            NEW.updated_at)
        WHERE d.memory_id = NEW.memory_id;
        IF FOUND THEN
            RETURN NULL;
        END IF;
    END IF;
    INSERT INTO search_documents (project_id, kind, memory_id, content_type, namespace, body,
                                  expires_at, occurred_at)
    VALUES (NEW.project_id, 'memory', NEW.memory_id, NEW.memory_type, NEW.namespace, new_body,
            NEW.expires_at, NEW.updated_at);
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION ctxdb_search_event() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO search_documents (project_id, kind, event_id, content_type, body, occurred_at)
    SELECT s.project_id, 'event', NEW.event_id, NEW.role, ctxdb_search_text(NEW.content),
           NEW.created_at
    FROM sessions s WHERE s.session_id = NEW.session_id;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION ctxdb_search_terms_stale() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.body IS DISTINCT FROM OLD.body THEN
        NEW.terms := NULL;
        NEW.doc_id := nextval(pg_get_serial_sequence('search_documents', 'doc_id'));
    END IF;
    RETURN NEW;
END
$$;

-- migrate:down
CREATE OR REPLACE FUNCTION ctxdb_search_terms_stale() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.body IS DISTINCT FROM OLD.body THEN
        NEW.terms := NULL;
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION ctxdb_search_context() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        DELETE FROM search_documents WHERE item_id = OLD.item_id;
    END IF;
    INSERT INTO search_documents (project_id, kind, item_id, content_type, priority, body,
                                  occurred_at)
    SELECT project_id, 'context', item_id, content_type, priority, body, occurred_at
    FROM search_context_source WHERE item_id = NEW.item_id;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION ctxdb_search_memory() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF NEW.deleted_at IS NOT NULL OR NEW.memory_id <> OLD.memory_id THEN
            DELETE FROM search_documents WHERE memory_id = OLD.memory_id;
        END IF;
        UPDATE search_documents d
        SET (project_id, content_type, namespace, body, expires_at, occurred_at) = (
            SELECT s.project_id, s.content_type, s.namespace, s.body, s.expires_at,
                   s.occurred_at
            FROM search_memory_source s WHERE s.memory_id = NEW.memory_id)
        WHERE d.memory_id = NEW.memory_id AND NEW.deleted_at IS NULL;
        IF FOUND THEN
            RETURN NULL;
        END IF;
    END IF;
    INSERT INTO search_documents (project_id, kind, memory_id, content_type, namespace, body,
                                  expires_at, occurred_at)
    SELECT project_id, 'memory', memory_id, content_type, namespace, body, expires_at,
           occurred_at
    FROM search_memory_source WHERE memory_id = NEW.memory_id;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION ctxdb_search_event() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO search_documents (project_id, kind, event_id, content_type, body, occurred_at)
    SELECT project_id, 'event', event_id, content_type, body, occurred_at
    FROM search_event_source WHERE event_id = NEW.event_id;
    RETURN NULL;
END
$$;
