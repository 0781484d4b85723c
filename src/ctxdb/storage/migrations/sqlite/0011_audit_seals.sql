-- ctxdb schema version 11 for SQLite: hash chains over the audit log (docs/audit.md).
-- Sealing an audit entry records the SHA-256 of its canonical record (as an export bundle
-- writes it) and chains it to the previous seal of the same chain: one chain per project,
-- and the chain '' for entries of no project. Changing, removing or slipping in a sealed
-- entry breaks its chain from that point on, which `ctxdb audit verify` reports.
-- The seals live beside the log, not in it: the writers of audit rows pay nothing, and
-- sealing runs afterwards, in the order entries become visible (on PostgreSQL an entry with a
-- lower id can commit later), so seal_seq, not audit_id, orders a chain.

-- migrate:up
CREATE TABLE audit_seals (
    audit_id INTEGER PRIMARY KEY REFERENCES audit_log(audit_id),
    chain TEXT NOT NULL,
    seal_seq INTEGER NOT NULL CHECK (seal_seq >= 1),
    row_sha256 TEXT NOT NULL CHECK (length(row_sha256) = 64),
    chain_sha256 TEXT NOT NULL CHECK (length(chain_sha256) = 64),
    sealed_at TEXT NOT NULL,
    UNIQUE (chain, seal_seq)
);

-- migrate:down
DROP TABLE audit_seals;
