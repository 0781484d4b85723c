-- ctxdb schema version 26 for SQLite: nothing to change (the PostgreSQL migration of this
-- number lets a memory put write its search document once, with its index terms).
--
-- SQLite's put does so since 0024: it claims the document in the row it writes
-- (memories.document_version), the trigger leaves it, and the put writes body and terms in
-- one UPDATE. PostgreSQL's 0026 adds the same column and the same claim, its put writing the
-- document as one more part of its one statement. The number is kept on both backends so
-- that a schema version means one thing.

-- migrate:up
SELECT 1;

-- migrate:down
SELECT 1;
