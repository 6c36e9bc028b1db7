-- What several servers on one store share instead of keeping in memory (issue 24).
-- A web UI session: the browser holds a random id, the store only its SHA-256; the
-- token it was opened with is named by id (never its secret); `held` is the secrets a
-- refused form held for its next try, sealed under a key derived from the master key
-- and bound to the session. Expired rows are pruned.
CREATE TABLE ui_sessions (
    id_hash VARCHAR(64) PRIMARY KEY,
    token_id VARCHAR(64) NOT NULL,
    csrf VARCHAR(64) NOT NULL,
    held BLOB,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX ui_sessions_by_token ON ui_sessions (token_id, created_at);
CREATE INDEX ui_sessions_by_expiry ON ui_sessions (expires_at);
-- Each block's last Test in the web UI (any server's), by block name.
CREATE TABLE block_tests (
    name VARCHAR(128) PRIMARY KEY,
    passed BOOLEAN NOT NULL,
    code VARCHAR(64) NOT NULL,
    tested_at BIGINT NOT NULL
);
-- Each server's last successful write (its readiness check writes here), so a server
-- whose store cannot be written stops answering ready.
CREATE TABLE server_heartbeats (
    server_id VARCHAR(64) PRIMARY KEY,
    seen_at BIGINT NOT NULL
);
