-- ctxdb schema version 27 for SQLite: no table changes; a marker that the search index is
-- brought current in batches.
--
-- From this version a write leaves the search documents it writes without their index terms
-- (search_documents.terms IS NULL, the partial index idx_search_documents_pending) until
-- DEFER_LIMIT of them wait, and then gives them all their terms in its transaction: FTS5
-- writes one segment for the batch instead of one per write. Every statement that reads the
-- FTS5 index first gives the waiting documents their terms (SQLiteTx), so that a search still
-- finds every committed document. A ctxdb older than this version searches without doing so,
-- and would miss up to DEFER_LIMIT - 1 documents a newer one committed; an older ctxdb
-- refuses a database whose schema version is newer than the newest it knows
-- (Migrator.ensure_current), which is what this version is for.
--
-- The database header's user_version is the marker ctxdb reads (Dialect.pending_probe): a
-- statement answers it on a database of any version, even empty, and writes wait only where
-- it says so. It is written in this migration's transaction, and nothing else uses it.
-- Taking the migration back clears it and gives every waiting document its terms in the same
-- transaction (Migrator._apply_down), so that the older ctxdb it lets in finds them all.

-- migrate:up
PRAGMA user_version = 27;

-- migrate:down
PRAGMA user_version = 0;
