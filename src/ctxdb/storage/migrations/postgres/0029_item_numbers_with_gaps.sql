-- ctxdb schema version 29 for PostgreSQL: a store draws its item's number from a sequence,
-- context_item_numbers, instead of the project's row (projects.next_sequence).
--
-- The numbers of a project stay unique and increasing, but no longer gapless: one sequence
-- numbers the items of every project, and a number drawn by a store that rolls back is not
-- drawn again. What they promise is the order items were stored in. Gapless numbers made
-- every writer of a project wait at the project's row for the commit of the writer before
-- it (docs/architecture.md, "Writers of one project draw numbers with gaps"); a sequence
-- hands out a number without waiting for any commit.
--
-- The sequence starts above every number stored so far, in either table of items and in any
-- project's counter. A store no longer writes the project's row: next_sequence stays where
-- it was (SQLite, and this schema's older versions, still draw from it), and updated_at moves
-- only when the project's own fields change.
--
-- Taking the migration back sets each project's counter to the highest number it holds, so
-- that the older version's stores, which draw next_sequence + 1, go on above them.

-- migrate:up
-- The highest number of a project's archived items in one look-up (the draw on SQLite and on
-- an older schema, and the down step below): the same index on both backends.
CREATE INDEX idx_archived_items_number ON archived_context_items(project_id, sequence_number);
CREATE SEQUENCE context_item_numbers AS BIGINT;
-- The next number drawn: one past the highest (1 on an empty database).
SELECT setval('context_item_numbers', greatest(highest, 1), highest > 0) FROM (
    SELECT greatest((SELECT coalesce(max(next_sequence), 0) FROM projects),
                    (SELECT coalesce(max(sequence_number), 0) FROM context_items),
                    (SELECT coalesce(max(sequence_number), 0) FROM archived_context_items))
        AS highest) stored;
-- The roles that may insert items (a server's role, given its rights by `ctxdb db secure`,
-- which grants every sequence) may draw numbers: without, their stores would be refused.
DO $$
DECLARE
    grantee regrole;
BEGIN
    FOR grantee IN
        SELECT DISTINCT acl.grantee::regrole
        FROM pg_class c, aclexplode(c.relacl) acl
        WHERE c.oid = 'context_items'::regclass AND acl.privilege_type = 'INSERT'
          AND acl.grantee <> 0 AND acl.grantee <> c.relowner
    LOOP
        EXECUTE format('GRANT USAGE, SELECT ON SEQUENCE context_item_numbers TO %s', grantee);
    END LOOP;
END $$;

-- migrate:down
UPDATE projects SET next_sequence = greatest(
    next_sequence,
    (SELECT max(sequence_number) FROM context_items c WHERE c.project_id = projects.project_id),
    (SELECT max(sequence_number) FROM archived_context_items a
     WHERE a.project_id = projects.project_id));
DROP SEQUENCE context_item_numbers;
DROP INDEX idx_archived_items_number;
