-- name: insert_audit
INSERT INTO audit_log (occurred_at, actor, action, entity_type, entity_id, project_id, details)
VALUES ($NOW, :actor, :action, :entity_type, :entity_id, :project_id, :details);

-- name: list_audit
SELECT audit_id, occurred_at, actor, action, entity_type, entity_id, project_id, details
FROM audit_log
WHERE (project_id = :project_id OR :project_id = '')
  AND (entity_id = :entity_id OR :entity_id = '')
ORDER BY audit_id DESC
LIMIT :limit;
