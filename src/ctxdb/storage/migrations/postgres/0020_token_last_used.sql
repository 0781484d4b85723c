-- ctxdb schema version 20 for PostgreSQL: when each API token was last used (docs/server.md,
-- Tokens).
-- The server records a token's use when it authenticates a request, at most once a minute
-- per token (api_tokens.sql, touch_api_token): not a write per request. NULL: never used
-- since this column was added. Not audited: it is bookkeeping, not a change anyone made.

-- migrate:up
ALTER TABLE api_tokens ADD COLUMN last_used_at TIMESTAMPTZ;

-- migrate:down
ALTER TABLE api_tokens DROP COLUMN last_used_at;
