-- ctxdb schema version 27 for PostgreSQL: nothing to change (the SQLite migration of this
-- number marks that SQLite's search index is brought current in batches, which older
-- versions, searching without doing so, must not open).
--
-- PostgreSQL's index is a generated column of each document, written with it: a write gives
-- its documents their terms before it commits, as before. The number is kept on both
-- backends so that a schema version means one thing.

-- migrate:up
SELECT 1;

-- migrate:down
SELECT 1;
