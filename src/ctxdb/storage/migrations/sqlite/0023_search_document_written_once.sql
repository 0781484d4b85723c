-- ctxdb schema version 23 for SQLite: nothing to change (the PostgreSQL migration of this
-- number lets a store write its item's search document once, with its index terms).
--
-- On SQLite the trigger on context_items fires inside the item's INSERT, before any later
-- statement could write the document: writing it first needs the item's id drawn by hand and
-- search_documents.item_id's foreign key deferred (a rebuild of the table), for about 6% of
-- a store's instructions (docs/architecture.md, "The search document written once"); not
-- done. SQLite's second write is an in-process row rewrite, not a dead row version left for
-- a vacuum. The number is kept on both backends so that a schema version means one thing.

-- migrate:up
SELECT 1;

-- migrate:down
SELECT 1;
