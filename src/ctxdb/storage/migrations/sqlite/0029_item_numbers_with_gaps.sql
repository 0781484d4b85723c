-- ctxdb schema version 29 for SQLite. The PostgreSQL migration of this number lets a store
-- draw its item's number from a sequence, with gaps, instead of the project's row.
--
-- SQLite has one writer at a time: a store's number is drawn and committed before the next
-- writer begins, so drawing from the project's row costs no waiting, and numbers stay 1..n.
-- But a project's rows may now come from a PostgreSQL database (a copy, a bundle, a restore)
-- whose counter, projects.next_sequence, no longer moves there: a store's draw goes past the
-- highest number the project's items hold as well as past the counter (context.sql's
-- draw_item), live or archived. The index lets it find the archived items' highest number
-- in one look-up instead of reading every archived item of the project at each store.

-- migrate:up
CREATE INDEX idx_archived_items_number ON archived_context_items(project_id, sequence_number);

-- migrate:down
DROP INDEX idx_archived_items_number;
