CREATE TABLE api_tokens (
    id VARCHAR(32) PRIMARY KEY NOT NULL,
    name VARCHAR(128) NOT NULL UNIQUE,
    secret_hash BYTEA NOT NULL,
    scopes TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT
);

CREATE TABLE audit_log (
    id BIGSERIAL PRIMARY KEY,
    at BIGINT NOT NULL,
    request_id VARCHAR(64) NOT NULL,
    actor VARCHAR(128) NOT NULL,
    action VARCHAR(32) NOT NULL,
    block VARCHAR(128),
    outcome VARCHAR(32) NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_block ON audit_log (block, at);
