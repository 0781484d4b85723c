-- Queries of the agent-client hooks and transcript ingestion (schema 0002).

-- name: project_by_repo_key
SELECT project_id FROM projects WHERE repo_key = :repo_key;

-- name: project_row_by_repo_key
-- The repository's project as get_project reads it, in one statement: a session's start goes
-- on with the whole row.
SELECT p.project_id, p.name, p.description, p.total_story_points, p.completed_story_points,
       (SELECT count(*) FROM phases ph WHERE ph.project_id = p.project_id) AS total_phases,
       p.status, p.repo_key, p.metadata, p.created_at, p.updated_at, p.archived_at
FROM projects p
WHERE p.repo_key = :repo_key;

-- name: insert_repo_project
-- ON CONFLICT without a target: a concurrent session that created the project for the same
-- repository first wins, and the caller reads that project back.
INSERT INTO projects (project_id, name, description, repo_key, metadata, created_at, updated_at)
VALUES (:project_id, :name, :description, :repo_key, :metadata, $NOW, $NOW)
ON CONFLICT DO NOTHING;

-- name: instance_of_session
SELECT instance_id, project_id FROM instances
WHERE session_id = :session_id AND client = :client
ORDER BY started_at DESC, instance_id DESC LIMIT 1;

-- name: projects_reached
-- What a server judges a project's token by on every hook event (http.hook_routes): the
-- project of the session's latest instance (project_of_session) and that of the
-- repository :repo_key (NULL when none is given or none holds it), in one statement, so that
-- the check is one round trip and not a transaction of two.
SELECT ($QUERY(project_of_session)) AS instance_project,
       ($QUERY(project_by_repo_key)) AS repo_project;

-- name: session_instance
-- The session's instance, the whole row (get_instance's columns): instance_of_session and
-- get_instance in one statement, for a hook that goes on with the instance.
SELECT instance_id, project_id, phase_id, hostname, process_id, client, session_id, worktree,
       branch, model, context_window, current_token_usage, generation, status, started_at,
       last_heartbeat, ended_at, metadata
FROM instances
WHERE session_id = :session_id AND client = :client
ORDER BY started_at DESC, instance_id DESC LIMIT 1;

-- name: session_or_default_instance
-- A session start's instance: session_instance's row (of_session 1), else the instance the
-- session registers under (:instance_id, its default id; of_session 0) if one has that id,
-- in one statement rather than two, as a new session (a fleet's start-up wave) needs both.
SELECT * FROM (
  SELECT 1 AS of_session, instance_id, project_id, phase_id, hostname, process_id, client,
         session_id, worktree, branch, model, context_window, current_token_usage, generation,
         status, started_at, last_heartbeat, ended_at, metadata
  FROM instances
  WHERE session_id = :session_id AND client = :client
  ORDER BY started_at DESC, instance_id DESC LIMIT 1) own
UNION ALL
SELECT 0, instance_id, project_id, phase_id, hostname, process_id, client, session_id,
       worktree, branch, model, context_window, current_token_usage, generation, status,
       started_at, last_heartbeat, ended_at, metadata
FROM instances WHERE instance_id = :instance_id
ORDER BY of_session DESC LIMIT 1;

-- name: previous_instance_in_worktree
-- The latest other session of the same client in the same working tree (the session a
-- /clear replaced).
SELECT instance_id, generation FROM instances
WHERE project_id = :project_id AND client = :client AND worktree = :worktree
  AND instance_id <> :instance_id
ORDER BY started_at DESC, instance_id DESC LIMIT 1;

-- name: set_instance_generation
UPDATE instances SET generation = :generation WHERE instance_id = :instance_id;

-- name: insert_injection
INSERT INTO injections (project_id, instance_id, session_id, generation, hook_event, source,
                        item_ids, handoff_id, characters, tokens, injected_text,
                        idempotency_key, created_at)
VALUES (:project_id, :instance_id, :session_id, :generation, :hook_event, :source, :item_ids,
        :handoff_id, :characters, :tokens, :injected_text, :idempotency_key, $NOW)
RETURNING injection_id;

-- name: insert_injection_audited
-- insert_injection with the start's audit row (session_start.record_start: :details, which
-- the injection's id joins), in one statement where one statement may write several tables
-- (PostgreSQL; Tx.chains_writes): a start's last statement, sent with its COMMIT.
WITH recorded AS (
$QUERY(insert_injection)
), logged AS (
    INSERT INTO audit_log (occurred_at, actor, action, entity_type, entity_id, project_id,
                           details)
    SELECT $NOW, :actor, :action, 'instance', :instance_id, :project_id,
           CAST(:details AS JSONB) || jsonb_build_object('injection_id', injection_id)
    FROM recorded
)
SELECT injection_id FROM recorded;

-- name: injections_of_instance
SELECT injection_id, project_id, instance_id, session_id, generation, hook_event, source,
       item_ids, handoff_id, characters, tokens, injected_text, created_at
FROM injections WHERE instance_id = :instance_id
ORDER BY injection_id;

-- name: injected_item_ids
SELECT item_ids FROM injections
WHERE instance_id = :instance_id AND generation = :generation;

-- name: injections_of_generation
-- What was injected into one generation of an instance: the items, and the text of the
-- blocks of one hook event (prompt-time recall reads which records its blocks named).
SELECT item_ids, CASE WHEN hook_event = :hook_event THEN injected_text ELSE '' END AS text
FROM injections
WHERE instance_id = :instance_id AND generation = :generation;

-- name: transcript_by_path
SELECT transcript_id, path, session_id, agent_id, project_id, instance_id, byte_offset,
       records, created_at, updated_at
FROM transcripts WHERE path = :path;

-- name: insert_transcript
INSERT INTO transcripts (path, session_id, agent_id, project_id, instance_id, byte_offset,
                         records, created_at, updated_at)
VALUES (:path, :session_id, :agent_id, :project_id, :instance_id, 0, 0, $NOW, $NOW)
ON CONFLICT (path) DO NOTHING;

-- name: advance_transcript
-- Compare-and-set on the offset: of two ingestions racing on one file, only the first moves it.
UPDATE transcripts
SET byte_offset = :new_offset,
    records = CASE WHEN :new_offset < byte_offset THEN :records ELSE records + :records END,
    session_id = coalesce(:session_id, session_id),
    agent_id = coalesce(:agent_id, agent_id),
    project_id = coalesce(:project_id, project_id),
    instance_id = coalesce(:instance_id, instance_id),
    updated_at = $NOW
WHERE path = :path AND byte_offset = :old_offset;

-- name: upsert_api_usage
INSERT INTO api_usage (session_id, message_id, project_id, instance_id, agent_id, model,
                       input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens,
                       sidechain, occurred_at, updated_at)
VALUES (:session_id, :message_id, :project_id, :instance_id, :agent_id, :model, :input_tokens,
        :output_tokens, :cache_creation_tokens, :cache_read_tokens, :sidechain, :occurred_at,
        $NOW)
ON CONFLICT (session_id, message_id) DO UPDATE
SET input_tokens = excluded.input_tokens,
    output_tokens = excluded.output_tokens,
    cache_creation_tokens = excluded.cache_creation_tokens,
    cache_read_tokens = excluded.cache_read_tokens,
    model = coalesce(excluded.model, api_usage.model),
    project_id = coalesce(excluded.project_id, api_usage.project_id),
    instance_id = coalesce(excluded.instance_id, api_usage.instance_id),
    updated_at = excluded.updated_at;

-- name: api_usage_of_session
SELECT usage_id, session_id, message_id, project_id, instance_id, agent_id, model,
       input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens, sidechain,
       occurred_at, updated_at
FROM api_usage WHERE session_id = :session_id
ORDER BY usage_id;

-- name: usage_totals_of_session
SELECT count(*) AS responses,
       coalesce(sum(input_tokens), 0) AS input_tokens,
       coalesce(sum(output_tokens), 0) AS output_tokens,
       coalesce(sum(cache_creation_tokens), 0) AS cache_creation_tokens,
       coalesce(sum(cache_read_tokens), 0) AS cache_read_tokens
FROM api_usage WHERE session_id = :session_id;

-- name: insert_compaction
INSERT INTO compactions (session_id, boundary_uuid, project_id, instance_id, trigger_type,
                         pre_tokens, occurred_at, summary, created_at)
VALUES (:session_id, :boundary_uuid, :project_id, :instance_id, :trigger_type, :pre_tokens,
        :occurred_at, :summary, $NOW)
ON CONFLICT (boundary_uuid) DO NOTHING;

-- name: summarize_latest_compaction
-- The summary belongs to the session's latest boundary that has none yet.
UPDATE compactions SET summary = :summary
WHERE compaction_id = (SELECT max(compaction_id) FROM compactions
                       WHERE session_id = :session_id)
  AND summary IS NULL;

-- name: compactions_of_session
SELECT compaction_id, session_id, boundary_uuid, project_id, instance_id, trigger_type,
       pre_tokens, occurred_at, summary, created_at
FROM compactions WHERE session_id = :session_id
ORDER BY compaction_id;

-- name: instance_by_session_id
SELECT instance_id, project_id, context_window FROM instances
WHERE session_id = :session_id
ORDER BY started_at DESC, instance_id DESC LIMIT 1;

-- name: end_session
UPDATE instances SET status = 'completed', ended_at = $NOW
WHERE instance_id = (SELECT instance_id FROM instances
                     WHERE session_id = :session_id AND client = :client
                     ORDER BY started_at DESC, instance_id DESC LIMIT 1)
  AND status <> 'completed'
RETURNING instance_id, project_id;

-- name: injection_by_key
SELECT injection_id, project_id, instance_id, session_id, generation, hook_event, source,
       item_ids, handoff_id, characters, tokens, injected_text, created_at
FROM injections WHERE idempotency_key = :idempotency_key;
