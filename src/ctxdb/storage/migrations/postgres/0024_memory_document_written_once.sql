-- ctxdb schema version 24 for PostgreSQL: nothing to change (the SQLite migration of this
-- number lets a memory put write its search document once, with its index terms).
--
-- SQLite's memory trigger fires inside the put's UPDATE, before a later statement could
-- write the document, so the put marks the row it writes (memories.document_version) for
-- the trigger to leave the document to it. PostgreSQL's put is one statement
-- (put_live_memory_recorded) whose parts could write the document themselves, with the
-- trigger, which fires after the whole statement, finding it written (as 0023 does for a
-- store); not done here. The number is kept on both backends so that a schema version
-- means one thing.

-- migrate:up
SELECT 1;

-- migrate:down
SELECT 1;
