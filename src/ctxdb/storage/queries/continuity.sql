-- Continuity across sessions (service/usecases/continuity.py): the handoffs made after the fact for
-- sessions that stopped without one, the handoff a new session resumes from, and the live
-- sessions a new one is told about.

-- name: sessions_needing_handoff
-- Hook sessions of the project that stopped without a handoff of their last work: ended or
-- crashed within :lookback seconds, or silent past the stale limit (crashed, not yet marked),
-- and no handoff made at or after their last heartbeat. Run by every hook and MCP call of
-- the project, so each part is one range of idx_instances_project (project_id, status,
-- last_heartbeat): the silent live ones of each live status (not every live one: a fleet's
-- prompt would read them all; both statuses in one part, PostgreSQL's plan read the whole
-- project's entries for the heartbeat), then the ended ones; with an indexed probe of
-- idx_handoffs_instance per candidate.
-- The project is :project_id, or (when NULL) that of the repository :repo_key: a session
-- start asks before its transaction has read the project (one statement, not two), looked up
-- once for the three parts. Each part compares project_id with the scalar subquery over
-- target, a plain parameter: a bare COALESCE there PostgreSQL counts as possibly leaky, and
-- under row-level security it then kept the comparison out of the index (read every
-- project's silent instances), which the doctor's plan check caught.
WITH target AS (
    SELECT COALESCE(:project_id, ($QUERY(project_by_repo_key))) AS project_id
)
SELECT i.instance_id, i.project_id, i.client, i.session_id, i.status, i.last_heartbeat,
       i.metadata
FROM (SELECT instance_id, project_id, client, session_id, status, last_heartbeat, metadata
      FROM instances
      WHERE project_id = (SELECT project_id FROM target)
        AND status = 'active' AND last_heartbeat < $AGO(:stale_after)
      UNION ALL
      SELECT instance_id, project_id, client, session_id, status, last_heartbeat, metadata
      FROM instances
      WHERE project_id = (SELECT project_id FROM target)
        AND status = 'idle' AND last_heartbeat < $AGO(:stale_after)
      UNION ALL
      SELECT instance_id, project_id, client, session_id, status, last_heartbeat, metadata
      FROM instances
      WHERE project_id = (SELECT project_id FROM target)
        AND status IN ('crashed', 'completed')
        AND ended_at >= $AGO(:lookback)) i
WHERE i.client IN ('claude-code', 'codex', 'gemini')
  AND NOT EXISTS (SELECT 1 FROM handoffs h
                  WHERE h.instance_id = i.instance_id AND h.created_at >= i.last_heartbeat)
ORDER BY i.last_heartbeat, i.instance_id
LIMIT :limit;

-- name: project_of_session
SELECT project_id FROM instances
WHERE session_id = :session_id AND client = :client
ORDER BY started_at DESC, instance_id DESC LIMIT 1;

-- name: resume_candidates
-- The newest handoffs of other instances saved in the window, those of the same worktree and
-- branch first; the caller takes the first with something in it.
SELECT h.handoff_id, h.project_id, h.instance_id, h.generation, h.kind, h.summary,
       h.next_steps, h.working_set, h.tokens_before, h.created_at, i.client, i.session_id,
       i.worktree, i.branch, i.status, $NOW AS now
FROM handoffs h JOIN instances i ON i.instance_id = h.instance_id
WHERE h.project_id = :project_id AND h.created_at >= $AGO(:window)
  AND h.instance_id <> :instance_id
ORDER BY CASE WHEN i.worktree = :worktree AND i.branch = :branch THEN 0 ELSE 1 END,
         h.handoff_id DESC
LIMIT :limit;

-- name: live_siblings
-- Live and heard from within the stale limit: a silent one not yet marked crashed is not
-- doing anything a new session should leave alone. Each with its latest handoff (the h_*
-- columns, NULL when it has none), looked up for the :limit siblings kept only: one
-- statement, not one more per sibling. Each status apart, from its :limit-th newest
-- heartbeat on (ties included): the :limit newest of both are among those, and each is a
-- short range of idx_instances_project (project_id, status, last_heartbeat), read from its
-- newest end. Both statuses at once were sorted whole: every live instance of the project
-- at each session start (a fleet's thousand, the start's costliest statement). And the
-- tasks each sibling holds a live lease on (the t_* columns, NULL when none; one row per
-- task): those of the siblings kept only, where a read of its own took every lease of the
-- project (a fleet's thousand agents hold hundreds).
SELECT s.instance_id, s.client, s.session_id, s.worktree, s.branch, s.status,
       s.last_heartbeat, s.now,
       h.handoff_id AS h_handoff_id, h.project_id AS h_project_id,
       h.instance_id AS h_instance_id, h.generation AS h_generation, h.kind AS h_kind,
       h.summary AS h_summary, h.next_steps AS h_next_steps, h.working_set AS h_working_set,
       h.tokens_before AS h_tokens_before, h.created_at AS h_created_at,
       t.task_id AS t_task_id, t.title AS t_title, t.status AS t_status
FROM (SELECT instance_id, client, session_id, worktree, branch, status, last_heartbeat,
             $NOW AS now
      FROM (
      SELECT instance_id, client, session_id, worktree, branch, status, last_heartbeat
      FROM instances
      WHERE project_id = :project_id AND status = 'active' AND instance_id <> :instance_id
        AND last_heartbeat >= $AGO(:stale_after)
        AND last_heartbeat >= COALESCE(
            (SELECT last_heartbeat FROM instances
             WHERE project_id = :project_id AND status = 'active'
               AND instance_id <> :instance_id AND last_heartbeat >= $AGO(:stale_after)
             ORDER BY last_heartbeat DESC LIMIT 1 OFFSET :limit - 1), $AGO(:stale_after))
      UNION ALL
      SELECT instance_id, client, session_id, worktree, branch, status, last_heartbeat
      FROM instances
      WHERE project_id = :project_id AND status = 'idle' AND instance_id <> :instance_id
        AND last_heartbeat >= $AGO(:stale_after)
        AND last_heartbeat >= COALESCE(
            (SELECT last_heartbeat FROM instances
             WHERE project_id = :project_id AND status = 'idle'
               AND instance_id <> :instance_id AND last_heartbeat >= $AGO(:stale_after)
             ORDER BY last_heartbeat DESC LIMIT 1 OFFSET :limit - 1), $AGO(:stale_after))
      ORDER BY last_heartbeat DESC, instance_id
      LIMIT :limit) newest) s
LEFT JOIN handoffs h ON h.handoff_id = (
    SELECT max(latest.handoff_id) FROM handoffs latest WHERE latest.instance_id = s.instance_id)
LEFT JOIN tasks t ON t.lease_owner = s.instance_id AND t.project_id = :project_id
    AND t.status IN ('claimed', 'running') AND t.lease_expires_at > $NOW
ORDER BY s.last_heartbeat DESC, s.instance_id, t.task_id;
