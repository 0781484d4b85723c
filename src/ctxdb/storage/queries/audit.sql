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

-- name: unsealed_audit
-- Entries without a seal, in id order after :after_id: those written since the last
-- sealing, and on PostgreSQL any that committed after an entry with a higher id was sealed.
-- A sealing run starts at 0 and goes on after the last entry of its previous batch, so that
-- it walks the log once, not once per batch.
SELECT audit_id, occurred_at, actor, action, entity_type, entity_id, project_id, details
FROM audit_log a
WHERE a.audit_id > :after_id
  AND NOT EXISTS (SELECT 1 FROM audit_seals s WHERE s.audit_id = a.audit_id)
  AND (a.project_id = :project_id OR :project_id = '')
ORDER BY audit_id
LIMIT :limit;

-- name: audit_chain_heads
-- Every chain's last seal (a whole walk of the seals: once per sealing run, for its report).
SELECT s.chain, s.seal_seq, s.chain_sha256
FROM (SELECT chain, max(seal_seq) AS seal_seq FROM audit_seals GROUP BY chain) last
JOIN audit_seals s ON s.chain = last.chain AND s.seal_seq = last.seal_seq;

-- name: audit_chain_head
-- One chain's last seal: a step down the (chain, seal_seq) index.
SELECT seal_seq, chain_sha256 FROM audit_seals
WHERE chain = :chain
ORDER BY seal_seq DESC
LIMIT 1;

-- name: insert_audit_seal
INSERT INTO audit_seals (audit_id, chain, seal_seq, row_sha256, chain_sha256, sealed_at)
VALUES (:audit_id, :chain, :seal_seq, :row_sha256, :chain_sha256, $NOW);

-- name: audit_seals_in_order
-- Every seal (of one chain, with :chain not NULL) with the entry it seals (none when the
-- entry is gone), chain by chain.
SELECT s.chain, s.seal_seq, s.audit_id, s.row_sha256, s.chain_sha256, a.audit_id AS entry_id,
       a.occurred_at, a.actor, a.action, a.entity_type, a.entity_id, a.project_id, a.details
FROM audit_seals s LEFT JOIN audit_log a ON a.audit_id = s.audit_id
WHERE s.chain = :chain OR :chain IS NULL
ORDER BY s.chain, s.seal_seq;

-- name: count_unsealed_audit
SELECT count(*) AS unsealed
FROM audit_log a
WHERE NOT EXISTS (SELECT 1 FROM audit_seals s WHERE s.audit_id = a.audit_id)
  AND (a.project_id = :project_id OR :project_id = '');
