-- The API tokens of `ctxdb serve` (see service/access_tokens.py): only the SHA-256 of a
-- secret is stored, and a token is found by it.

-- name: insert_api_token
INSERT INTO api_tokens (token_id, name, project_id, scope, secret_sha256, created_by,
                        created_at, expires_at)
VALUES (:token_id, :name, :project_id, :scope, :secret_sha256, :actor, $NOW,
        $IN(:ttl_seconds));

-- name: get_api_token
SELECT token_id, name, project_id, scope, created_by, created_at, expires_at, revoked_at,
       last_used_at,
       CASE WHEN expires_at <= $NOW THEN 1 ELSE 0 END AS expired
FROM api_tokens WHERE token_id = :token_id;

-- name: api_token_by_secret
-- The token a request presents, judged by the database clock: expired in one statement, and
-- whether its last use is older than :use_every seconds (then it is recorded again).
SELECT token_id, name, project_id, scope, created_at, expires_at, revoked_at, last_used_at,
       CASE WHEN expires_at <= $NOW THEN 1 ELSE 0 END AS expired,
       CASE WHEN last_used_at IS NULL OR last_used_at < $AGO(:use_every) THEN 1 ELSE 0 END
           AS use_unrecorded
FROM api_tokens WHERE secret_sha256 = :secret_sha256;

-- name: touch_api_token
-- Record a use, unless another request recorded one within :use_every seconds meanwhile.
UPDATE api_tokens SET last_used_at = $NOW
WHERE token_id = :token_id AND (last_used_at IS NULL OR last_used_at < $AGO(:use_every));

-- name: list_api_tokens
-- Every token, or (with :project_id) one project's; fleet-wide tokens have no project.
SELECT token_id, name, project_id, scope, created_by, created_at, expires_at, revoked_at,
       last_used_at,
       CASE WHEN expires_at <= $NOW THEN 1 ELSE 0 END AS expired
FROM api_tokens
WHERE (project_id = :project_id OR :project_id = '')
ORDER BY created_at, token_id;

-- name: revoke_api_token
UPDATE api_tokens SET revoked_at = $NOW WHERE token_id = :token_id AND revoked_at IS NULL;
