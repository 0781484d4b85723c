-- ctxdb schema version 29 for SQLite: nothing to change (the PostgreSQL migration of this
-- number lets a store draw its item's number from a sequence, with gaps, instead of the
-- project's row).
--
-- SQLite has one writer at a time: a store's number is drawn and committed before the next
-- writer begins, so drawing from the project's row costs no waiting, and numbers stay 1..n.
-- The number is kept on both backends so that a schema version means one thing.

-- migrate:up
SELECT 1;

-- migrate:down
SELECT 1;
