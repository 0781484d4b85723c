-- ctxdb schema version 28 for PostgreSQL: nothing to change (the SQLite migration of this
-- number keeps, in a document whose terms are cleared, the terms SQLite's full-text index
-- holds for it until its batch, so that a memory put no longer writes the index at once).
--
-- PostgreSQL's index is a generated column of each document, written with it: a write gives
-- its documents their terms before it commits, as before. The number is kept on both
-- backends so that a schema version means one thing.

-- migrate:up
SELECT 1;

-- migrate:down
SELECT 1;
