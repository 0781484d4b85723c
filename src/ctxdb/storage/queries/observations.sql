-- Observations: the timeline of what agent sessions did (schema 0019, docs/timeline.md).

-- name: insert_observation
-- Written once per natural key: re-ingesting a transcript adds nothing.
INSERT INTO observations (project_id, instance_id, session_id, generation, kind, tool, text,
                          exit_code, source_key, occurred_at, created_at)
VALUES (:project_id, :instance_id, :session_id, :generation, :kind, :tool, :text, :exit_code,
        :source_key, coalesce(:occurred_at, $NOW), $NOW)
ON CONFLICT (source_key) DO NOTHING;

-- name: observe_handoff
-- The handoff just written, as an observation of its instance's agent session (a handoff
-- of an instance no agent session runs is no session's doing, and is left out). Its text is
-- bounded like a transcript's observations (MAX_OBSERVATION_CHARS).
INSERT INTO observations (project_id, instance_id, session_id, generation, kind, tool, text,
                          exit_code, source_key, occurred_at, created_at)
SELECT h.project_id, h.instance_id, i.session_id, h.generation, 'handoff', h.kind,
       substr(h.summary, 1, 2000), NULL, 'handoff:' || h.idempotency_key, h.created_at,
       $NOW
FROM handoffs h JOIN instances i ON i.instance_id = h.instance_id
WHERE h.handoff_id = :handoff_id AND i.session_id IS NOT NULL
ON CONFLICT (source_key) DO NOTHING;

-- name: latest_observations
-- The latest observations of a project (of one session: an empty string means any), since a
-- time; the caller puts them back in time order.
SELECT observation_id, project_id, instance_id, session_id, generation, kind, tool, text,
       exit_code, occurred_at
FROM observations
WHERE project_id = :project_id
  AND (:session_id = '' OR session_id = :session_id)
  AND occurred_at >= :since
ORDER BY occurred_at DESC, observation_id DESC
LIMIT :limit;

-- name: get_observation
SELECT observation_id, project_id, instance_id, session_id, generation, kind, tool, text,
       exit_code, occurred_at
FROM observations WHERE observation_id = :observation_id AND project_id = :project_id;

-- name: observations_before
-- The observations of a session just before one (at its time and id), latest first.
SELECT observation_id, project_id, instance_id, session_id, generation, kind, tool, text,
       exit_code, occurred_at
FROM observations
WHERE project_id = :project_id AND session_id = :session_id
  AND (occurred_at < :occurred_at
       OR (occurred_at = :occurred_at AND observation_id < :observation_id))
ORDER BY occurred_at DESC, observation_id DESC
LIMIT :limit;

-- name: observations_after
SELECT observation_id, project_id, instance_id, session_id, generation, kind, tool, text,
       exit_code, occurred_at
FROM observations
WHERE project_id = :project_id AND session_id = :session_id
  AND (occurred_at > :occurred_at
       OR (occurred_at = :occurred_at AND observation_id > :observation_id))
ORDER BY occurred_at, observation_id
LIMIT :limit;

-- name: complete_command
-- A command whose result was read after the command itself (a later read of its
-- transcript): its exit code, once known.
UPDATE observations SET exit_code = :exit_code
WHERE source_key = :source_key AND exit_code IS NULL;

-- name: session_in_project
-- Whether the project knows an agent session: by its observations or by an instance.
SELECT 1 AS known WHERE EXISTS (SELECT 1 FROM observations
                                WHERE session_id = :session_id AND project_id = :project_id)
                     OR EXISTS (SELECT 1 FROM instances
                                WHERE session_id = :session_id AND project_id = :project_id);
