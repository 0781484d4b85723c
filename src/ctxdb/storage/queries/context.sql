-- Every query that returns items selects the same columns, in this order.

-- name: item_by_key
SELECT item_id FROM context_items
WHERE project_id = :project_id AND idempotency_key = :idempotency_key;

-- name: insert_item
INSERT INTO context_items (project_id, phase_id, sequence_number, content_type, priority,
                           token_count, content, metadata, created_by, idempotency_key,
                           created_at)
VALUES (:project_id, :phase_id, :sequence_number, :content_type, :priority, :token_count,
        :content, :metadata, :created_by, :idempotency_key, $NOW)
ON CONFLICT (project_id, idempotency_key) DO NOTHING  -- no row returned: the key is taken
RETURNING item_id;

-- name: insert_next_item
-- A store's insert, with the number draw_sequence (projects.sql) just drew: both are sent
-- together (the draw deferred), one round trip on PostgreSQL. No row returned: the key is
-- taken, or the project is not an active one.
INSERT INTO context_items (project_id, phase_id, sequence_number, content_type, priority,
                           token_count, content, metadata, created_by, idempotency_key,
                           created_at)
SELECT :project_id, :phase_id, p.next_sequence, :content_type, :priority, :token_count,
       :content, :metadata, :created_by, :idempotency_key, $NOW
FROM projects p WHERE p.project_id = :project_id AND (p.status = 'active') IS TRUE
ON CONFLICT (project_id, idempotency_key) DO NOTHING
RETURNING item_id, sequence_number;

-- name: draw_item
-- A store's first statement where its trigger leaves the item's search document to it
-- (SQLite from migration 0025, Tx.item_documents_once): the per-project number drawn from
-- the active project's row, and with it the id the item is about to get (as AUTOINCREMENT
-- would draw it: past the counter and past every id in the table; under the one write lock,
-- no other writer draws meanwhile), the time it is stored at, and its document's body:
-- :search_body where the store made it (storage/sqlite_body.py), else made of :content here
-- by the expression of search_context_source (migration 0008; CASE evaluates it only then),
-- so that the document is the one the trigger would have written; and whether :waiting
-- documents without terms wait (counted as search_pending_count counts them, up to
-- :waiting): 1 where a store writes its document with its terms (any waiting
-- were written by another connection: exactly whether one waits), else
-- Tx.pending_limit - 1, with which this store's document reaches the limit. The look for
-- them is made only then (Tx.documents_pending). The number: past the project's counter and
-- past every number its items hold (two index look-ups): rows that came with numbers of their
-- own (a copy, a bundle, a restore) may come with a counter below them, which PostgreSQL from
-- migration 0029 no longer moves. No row: no such active project.
UPDATE projects SET next_sequence = max(
           next_sequence,
           coalesce((SELECT max(sequence_number) FROM context_items
                     WHERE project_id = :project_id), 0),
           coalesce((SELECT max(sequence_number) FROM archived_context_items
                     WHERE project_id = :project_id), 0)) + 1,
       updated_at = $NOW
WHERE project_id = :project_id AND (status = 'active') IS TRUE
RETURNING next_sequence AS sequence_number,
          max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'context_items'), 0),
              coalesce((SELECT max(item_id) FROM context_items), 0)) + 1 AS item_id,
          updated_at AS created_at,
          CASE WHEN :search_body IS NOT NULL THEN :search_body ELSE
          substr((SELECT coalesce(group_concat(part, char(10)), '') FROM (
              SELECT CASE WHEN typeof(key) = 'text' THEN key || coalesce(char(10) || CASE
                         WHEN type IN ('object', 'array', 'null') THEN NULL
                         WHEN type IN ('true', 'false') THEN type ELSE atom END, '')
                     ELSE CASE WHEN type IN ('object', 'array', 'null') THEN NULL
                         WHEN type IN ('true', 'false') THEN type ELSE atom END END AS part
              FROM json_tree(:content))), 1, 200000) END AS search_body,
          (SELECT count(*) FROM (SELECT 1 FROM search_documents WHERE terms IS NULL
                                 LIMIT :waiting)) >= :waiting AS documents_pending;

-- name: insert_item_document
-- The search document of the item draw_item numbered, written before the item (its key to
-- the item is checked at COMMIT: migration 0025), with its index terms, or without them where
-- documents may wait for theirs (Tx.pending_limit: the store's draw_item said whether they
-- are then as many as may wait, and the look for them is made only then).
-- Leaves no document without terms that the look must find.
INSERT INTO search_documents (project_id, kind, item_id, content_type, priority, body,
                              occurred_at, terms)
VALUES (:project_id, 'context', :item_id, :content_type, :priority, :search_body,
        :created_at, :search_terms);

-- name: insert_drawn_item
-- The item draw_item numbered, after its document (its trigger finds it and writes none).
-- No row changed: the key is taken (the caller rolls the transaction back, document and
-- all). No RETURNING: the caller knows the id and number it passes, and SQLite would hold
-- the returned row in a table of its own, made for the statement.
-- Leaves no document without terms (the trigger writes none, the document being there).
INSERT INTO context_items (item_id, project_id, phase_id, sequence_number, content_type,
                           priority, token_count, content, metadata, created_by,
                           idempotency_key, created_at)
VALUES (:item_id, :project_id, :phase_id, :sequence_number, :content_type, :priority,
        :token_count, :content, :metadata, :created_by, :idempotency_key, :created_at)
ON CONFLICT (project_id, idempotency_key) DO NOTHING;

-- name: store_next_item
-- A store's four writes in one statement, where one statement may write several tables
-- (PostgreSQL's data-modifying WITH; Tx.chains_writes) and the schema is at 0023 or later
-- (Tx.documents_written_once): the per-project number taken from the active project's row,
-- the item inserted with it, its audit row (details as ContextService._insert writes them on
-- SQLite), its search document with its index terms, and the number drawn. Each part reads
-- the rows the one before it returned, so nothing is written when the project is not an
-- active one, and nothing but the row's lock when the key is taken: the number is drawn only
-- for an item inserted, after it (so the statement may be committed with, Tx.commit_with,
-- whatever it answers). The row is locked first (FOR UPDATE: under READ COMMITTED, the
-- latest committed number once a writer before has committed), so that writers of one
-- project take turns as they do at the UPDATE. One statement instead of four is what the
-- server and psycopg charge for per statement, thrice saved. (An older schema, written to by
-- tests of the migrations, takes the statements one by one, as SQLite does.)
WITH locked AS (
    SELECT next_sequence + 1 AS next_sequence FROM projects
    WHERE project_id = :project_id AND (status = 'active') IS TRUE
    FOR UPDATE
), item AS (
    INSERT INTO context_items (project_id, phase_id, sequence_number, content_type, priority,
                               token_count, content, metadata, created_by, idempotency_key,
                               created_at)
    SELECT :project_id, :phase_id, next_sequence, :content_type, :priority, :token_count,
           :content, :metadata, :created_by, :idempotency_key, $NOW
    FROM locked
    ON CONFLICT (project_id, idempotency_key) DO NOTHING
    RETURNING item_id, sequence_number
), drawn AS (
    UPDATE projects SET next_sequence = item.sequence_number, updated_at = $NOW
    FROM item WHERE projects.project_id = :project_id
), logged AS (
    INSERT INTO audit_log (occurred_at, actor, action, entity_type, entity_id, project_id,
                           details)
    SELECT $NOW, :actor, 'context.store', 'context_item', CAST(item_id AS TEXT), :project_id,
           jsonb_build_object('priority', CAST(:priority AS TEXT),
                              'sequence_number', sequence_number,
                              'token_count', CAST(:token_count AS BIGINT))
    FROM item
), document AS (
    -- The item's search document, written once with its index terms (its body made in
    -- Python as ctxdb_search_text makes it: storage/search_body.py). The trigger on
    -- context_items fires after this statement, finds the document and writes none
    -- (migration 0023). The look for documents without terms still travels with this
    -- statement: it finds none of this store's, and gives theirs to the documents other
    -- connections wrote (the trigger's).
    INSERT INTO search_documents (project_id, kind, item_id, content_type, priority, body,
                                  occurred_at, terms)
    SELECT :project_id, 'context', item_id, :content_type, :priority, :search_body, $NOW,
           :search_terms
    FROM item
)
-- The transaction's id comes back with the item: no statement of its own (pg_tx.py).
SELECT item_id, sequence_number, txid_current() AS transaction_id FROM item;

-- name: store_drawn_item
-- store_next_item where the number comes from the sequence context_item_numbers (PostgreSQL's
-- migration 0029, Tx.item_numbers_drawn): the same four writes in one statement, but the
-- project's row is only read, not written, and no writer of the project waits for another's
-- COMMIT. Numbers are unique and increasing within a project, with gaps (a store rolled back,
-- a key found taken after the draw, other projects' items: one sequence numbers them all).
-- In this order, each part reading the one before:
-- - the shared lock of the project's item numbers (LOCK_PROJECT_ITEMS, storage/dialect.py),
--   before the draw and held to the COMMIT: a reader that pages by number (await_item_draws)
--   takes it exclusive first, so that no number below one it reads commits after it reads;
-- - the project's row, active, under FOR KEY SHARE, the lock the item's foreign key takes
--   anyway: stores do not wait for each other, but a change of the project's status takes
--   FOR UPDATE first (archive_project), which waits for the stores that hold it, and a store
--   that comes after it finds, under READ COMMITTED, the project no longer active and writes
--   nothing;
-- - the number, drawn only for a project seen active.
-- The status is tested as `(status = 'active') IS TRUE`, here and wherever a statement finds
-- a project by its id and status: no index can serve that, so the row is found by its
-- primary key whatever the statistics. Statistics gathered while one project existed call
-- status unique, and `status = 'active'` was then served by idx_projects_status (status,
-- created_at) with a filter on the id: every store read the entry of every active project
-- (tests/test_write_plans.py).
-- Nothing is written when the project is not an active one; when the key is taken, nothing
-- but a number burnt (so the statement may be committed with, Tx.commit_with, whatever it
-- answers).
WITH turn AS (
    SELECT pg_advisory_xact_lock_shared(4242006, hashtext(:project_id)) AS taken
), project AS (
    SELECT p.project_id FROM projects p CROSS JOIN turn
    WHERE p.project_id = :project_id AND (p.status = 'active') IS TRUE
    FOR KEY SHARE OF p
), item AS (
    INSERT INTO context_items (project_id, phase_id, sequence_number, content_type, priority,
                               token_count, content, metadata, created_by, idempotency_key,
                               created_at)
    SELECT :project_id, :phase_id, nextval('context_item_numbers'), :content_type, :priority,
           :token_count, :content, :metadata, :created_by, :idempotency_key, $NOW
    FROM project
    ON CONFLICT (project_id, idempotency_key) DO NOTHING
    RETURNING item_id, sequence_number
), logged AS (
    INSERT INTO audit_log (occurred_at, actor, action, entity_type, entity_id, project_id,
                           details)
    SELECT $NOW, :actor, 'context.store', 'context_item', CAST(item_id AS TEXT), :project_id,
           jsonb_build_object('priority', CAST(:priority AS TEXT),
                              'sequence_number', sequence_number,
                              'token_count', CAST(:token_count AS BIGINT))
    FROM item
), document AS (
    -- As store_next_item's.
    INSERT INTO search_documents (project_id, kind, item_id, content_type, priority, body,
                                  occurred_at, terms)
    SELECT :project_id, 'context', item_id, :content_type, :priority, :search_body, $NOW,
           :search_terms
    FROM item
)
SELECT item_id, sequence_number, txid_current() AS transaction_id FROM item;

-- name: draw_item_number
-- One number from the sequence for an item the caller inserts itself (a file import, where
-- Tx.item_numbers_drawn), as store_drawn_item draws it: the project's item-number lock taken
-- shared first and held to the COMMIT, the project's row read active under FOR KEY SHARE.
-- NULL: no such active project.
SELECT nextval('context_item_numbers') AS sequence_number
FROM projects p CROSS JOIN (
    SELECT pg_advisory_xact_lock_shared(4242006, hashtext(:project_id)) AS taken) turn
WHERE p.project_id = :project_id AND (p.status = 'active') IS TRUE
FOR KEY SHARE OF p;

-- name: hold_item_numbers
-- A legacy import's first statement for a project's items, where Tx.item_numbers_drawn: the
-- project's item-number lock, shared (as a store's), so that a reader paging by number waits
-- for this transaction's items. Taken before the sequence is held (Dialect
-- .item_numbers_raise), as a store takes it before its draw: never the other way round.
SELECT pg_advisory_xact_lock_shared(4242006, hashtext(:project_id)) AS taken;

-- name: highest_item_number
-- The highest number a project's items hold, live, gone or archived (0: none).
SELECT greatest(
    (SELECT coalesce(max(sequence_number), 0) FROM context_items WHERE project_id = :project_id),
    (SELECT coalesce(max(sequence_number), 0) FROM archived_context_items
     WHERE project_id = :project_id)) AS n;

-- name: raise_item_numbers
-- PostgreSQL from migration 0029, the sequence held (Dialect.item_numbers_hold): the next
-- number drawn past every number stored, and never below the sequence's own next one (the
-- last drawn, or, where is_called is false, the one not drawn yet).
SELECT setval('context_item_numbers', greatest(s.last_value, stored.highest),
              s.is_called OR stored.highest >= s.last_value AND stored.highest > 0) AS n
FROM context_item_numbers s, (
    SELECT greatest((SELECT coalesce(max(sequence_number), 0) FROM context_items),
                    (SELECT coalesce(max(sequence_number), 0) FROM archived_context_items))
        AS highest) stored;

-- name: await_item_draws
-- A reader that pages a project's items by number (items_page), where numbers may commit out
-- of their order (Dialect.numbers_commit_out_of_order: PostgreSQL), takes the project's
-- item-number lock exclusive, in a statement before its read: it waits for every store that
-- drew a number before it (each holds the lock shared from before its draw to its COMMIT),
-- and the stores after it draw theirs once it has read, above every number drawn before.
-- Under READ COMMITTED its next statement's snapshot then holds every item numbered below the
-- highest it sees, so that the page after it misses none.
SELECT pg_advisory_xact_lock(4242006, hashtext(:project_id)) AS taken;

-- name: get_item
SELECT item_id, project_id, phase_id, sequence_number, content_type, priority, token_count,
       content, metadata, created_by, created_at, state, superseded_by, deleted_at, deleted_by
FROM context_items WHERE item_id = :item_id;

-- name: items_of_priority
SELECT item_id, project_id, phase_id, sequence_number, content_type, priority, token_count,
       content, metadata, created_by, created_at
FROM context_items
WHERE project_id = :project_id AND priority = :priority AND state = 'active'
  AND (CAST(:phase_id AS BIGINT) IS NULL OR phase_id = :phase_id OR phase_id IS NULL)
ORDER BY sequence_number;

-- name: all_live_items
SELECT item_id, project_id, phase_id, sequence_number, content_type, priority, token_count,
       content, metadata, created_by, created_at
FROM context_items
WHERE project_id = :project_id AND state = 'active'
  AND (CAST(:phase_id AS BIGINT) IS NULL OR phase_id = :phase_id OR phase_id IS NULL)
ORDER BY sequence_number;

-- name: items_page
SELECT item_id, project_id, phase_id, sequence_number, content_type, priority, token_count,
       content, metadata, created_by, created_at
FROM context_items
WHERE project_id = :project_id AND priority = :priority AND state = 'active'
  AND sequence_number > :after_sequence
ORDER BY sequence_number
LIMIT :limit;

-- name: pack_tier_in_phase
-- Newest first, among the live items of one priority that belong to the current phase.
SELECT item_id, project_id, phase_id, sequence_number, content_type, priority, token_count,
       content, metadata, created_by, created_at
FROM context_items
WHERE project_id = :project_id AND phase_id = :phase_id AND priority = :priority
  AND state = 'active'
ORDER BY sequence_number DESC;

-- name: pack_tier_outside_phase
-- Newest first, among the other live items of one priority (all of them when no phase is
-- current: the caller passes phase_id -1).
SELECT item_id, project_id, phase_id, sequence_number, content_type, priority, token_count,
       content, metadata, created_by, created_at
FROM context_items
WHERE project_id = :project_id AND priority = :priority AND state = 'active'
  AND (phase_id IS NULL OR phase_id <> :phase_id)
ORDER BY sequence_number DESC;

-- name: pack_tier_sizes_in_phase
-- pack_tier_in_phase without the content: all that packing looks at, a page at a time (those
-- before :before). A session start packs hundreds of items and shows a few dozen; it reads
-- theirs with item_contents. Pages rather than a cursor: on PostgreSQL a tier of small rows
-- is then one round trip, not a DECLARE, a FETCH and a CLOSE.
SELECT item_id, priority, content_type, token_count, sequence_number
FROM context_items
WHERE project_id = :project_id AND phase_id = :phase_id AND priority = :priority
  AND state = 'active' AND sequence_number < :before
ORDER BY sequence_number DESC
LIMIT :limit;

-- name: pack_tier_sizes_outside_phase
-- pack_tier_outside_phase without the content (see pack_tier_sizes_in_phase).
SELECT item_id, priority, content_type, token_count, sequence_number
FROM context_items
WHERE project_id = :project_id AND priority = :priority AND state = 'active'
  AND (phase_id IS NULL OR phase_id <> :phase_id) AND sequence_number < :before
ORDER BY sequence_number DESC
LIMIT :limit;

-- name: startup_pack_first_pages
-- A session start's pack in one statement (issue 12): the focus phase (:phase_id, else
-- current_phase's, else -1), the CRITICAL items whole (part 0, as items_of_priority), then
-- the first page of each tier as pack_tier_sizes_in_phase and _outside_phase read it (parts
-- 1 to 6, newest first), the content of the first :content_rows of those rows with them
-- (what an injection shows: service/usecases/packs.py). ord orders each part.
WITH focus AS (
  SELECT COALESCE(CAST(:phase_id AS BIGINT),
                  (SELECT phase_id FROM phases WHERE project_id = :project_id AND status = 'active'
                   ORDER BY phase_number DESC LIMIT 1), -1) AS phase_id),
pages AS (
  SELECT 1 AS part, * FROM (
    SELECT item_id, priority, content_type, token_count, sequence_number, content
    FROM context_items
    WHERE project_id = :project_id AND priority = 'HIGH' AND state = 'active'
      AND phase_id = (SELECT phase_id FROM focus)
    ORDER BY sequence_number DESC LIMIT :limit) high_in
  UNION ALL
  SELECT 2 AS part, * FROM (
    SELECT item_id, priority, content_type, token_count, sequence_number, content
    FROM context_items
    WHERE project_id = :project_id AND priority = 'HIGH' AND state = 'active'
      AND (phase_id IS NULL OR phase_id <> (SELECT phase_id FROM focus))
    ORDER BY sequence_number DESC LIMIT :limit) high_out
  UNION ALL
  SELECT 3 AS part, * FROM (
    SELECT item_id, priority, content_type, token_count, sequence_number, content
    FROM context_items
    WHERE project_id = :project_id AND priority = 'MEDIUM' AND state = 'active'
      AND phase_id = (SELECT phase_id FROM focus)
    ORDER BY sequence_number DESC LIMIT :limit) medium_in
  UNION ALL
  SELECT 4 AS part, * FROM (
    SELECT item_id, priority, content_type, token_count, sequence_number, content
    FROM context_items
    WHERE project_id = :project_id AND priority = 'MEDIUM' AND state = 'active'
      AND (phase_id IS NULL OR phase_id <> (SELECT phase_id FROM focus))
    ORDER BY sequence_number DESC LIMIT :limit) medium_out
  UNION ALL
  SELECT 5 AS part, * FROM (
    SELECT item_id, priority, content_type, token_count, sequence_number, content
    FROM context_items
    WHERE project_id = :project_id AND priority = 'LOW' AND state = 'active'
      AND phase_id = (SELECT phase_id FROM focus)
    ORDER BY sequence_number DESC LIMIT :limit) low_in
  UNION ALL
  SELECT 6 AS part, * FROM (
    SELECT item_id, priority, content_type, token_count, sequence_number, content
    FROM context_items
    WHERE project_id = :project_id AND priority = 'LOW' AND state = 'active'
      AND (phase_id IS NULL OR phase_id <> (SELECT phase_id FROM focus))
    ORDER BY sequence_number DESC LIMIT :limit) low_out),
ranked AS (
  SELECT pages.*, row_number() OVER (ORDER BY part, sequence_number DESC) AS n FROM pages)
SELECT 0 AS part, (SELECT phase_id FROM focus) AS focus, sequence_number AS ord,
       item_id, project_id, phase_id, sequence_number, content_type, priority, token_count,
       content, metadata, created_by, created_at
FROM context_items
WHERE project_id = :project_id AND priority = 'CRITICAL' AND state = 'active'
UNION ALL
SELECT part, (SELECT phase_id FROM focus), -sequence_number, item_id, NULL, NULL,
       sequence_number, content_type, priority, token_count,
       CASE WHEN n <= :content_rows THEN content END, NULL, NULL, NULL
FROM ranked
ORDER BY part, ord;

-- name: item_contents
-- The content of up to 64 items of a project, by id (:id0 … :id63, unused ones NULL):
-- an injection of under 10,000 characters shows a few dozen items, most often in one read.
SELECT item_id, content
FROM context_items
WHERE project_id = :project_id AND item_id IN (
  :id0, :id1, :id2, :id3, :id4, :id5, :id6, :id7, :id8, :id9, :id10, :id11, :id12,
  :id13, :id14, :id15, :id16, :id17, :id18, :id19, :id20, :id21, :id22, :id23, :id24,
  :id25, :id26, :id27, :id28, :id29, :id30, :id31, :id32, :id33, :id34, :id35, :id36,
  :id37, :id38, :id39, :id40, :id41, :id42, :id43, :id44, :id45, :id46, :id47, :id48,
  :id49, :id50, :id51, :id52, :id53, :id54, :id55, :id56, :id57, :id58, :id59, :id60,
  :id61, :id62, :id63);

-- name: archived_item_content
-- The content of an item archived (by gc) after a pack read it as live.
SELECT item_id, content FROM archived_context_items
WHERE project_id = :project_id AND item_id = :item_id;

-- name: supersede_item
UPDATE context_items SET state = 'superseded', superseded_by = :superseded_by
WHERE item_id = :item_id AND state = 'active';

-- name: delete_item
UPDATE context_items SET state = 'deleted', deleted_at = $NOW, deleted_by = :deleted_by
WHERE item_id = :item_id AND state = 'active';

-- name: count_items_by_priority
SELECT priority, count(*) AS n, coalesce(sum(token_count), 0) AS tokens
FROM context_items WHERE project_id = :project_id AND state = 'active'
GROUP BY priority;

-- name: live_items_newest_first
-- Live items, newest first, narrowed by the structured filters (an empty string or NULL means
-- "any"); with words to find, search.sql's search_matching_items does the same over the index.
SELECT item_id, project_id, phase_id, sequence_number, content_type, priority, token_count,
       content, metadata, created_by, created_at
FROM context_items
WHERE project_id = :project_id AND state = 'active'
  AND (priority = :priority OR :priority = '')
  AND (content_type = :content_type OR :content_type = '')
  AND (CAST(:phase_id AS BIGINT) IS NULL OR phase_id = :phase_id)
ORDER BY sequence_number DESC
LIMIT :limit;
