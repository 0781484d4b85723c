-- ctxdb schema version 25 for PostgreSQL: nothing to change (the SQLite migration of this
-- number lets a store write its item's search document once, with its index terms).
--
-- PostgreSQL's store does so since 0023: its one statement writes the document with the
-- item, and the trigger, which fires after the whole statement, finds it written. SQLite's
-- trigger fires inside the item's INSERT, so there the store writes the document first, and
-- search_documents.item_id's key is checked at COMMIT. The number is kept on both backends
-- so that a schema version means one thing.

-- migrate:up
SELECT 1;

-- migrate:down
SELECT 1;
