-- Leased database users (issue 22): each row is one user made in a block's database for
-- one holder, with its expiry. `state` is the journal of what was done to the user
-- (`issuing` is written before the user is created, `revoking` before it is taken
-- apart, `revoked` once it is gone), so a crash between the database and the store is
-- found and finished by the reconciler. A revocation that keeps failing counts its
-- `attempts`, keeps its `last_error` and waits until `retry_at`; it is never dropped.
CREATE TABLE leases (
    id VARCHAR(64) PRIMARY KEY,
    block_id VARCHAR(64) NOT NULL,
    block_name VARCHAR(128) NOT NULL,
    username VARCHAR(128) NOT NULL,
    admin_block VARCHAR(128) NOT NULL,
    group_role VARCHAR(128) NOT NULL,
    database_name VARCHAR(128) NOT NULL,
    holder VARCHAR(200) NOT NULL,
    state VARCHAR(16) NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    max_expires_at BIGINT NOT NULL,
    revoked_at BIGINT,
    attempts BIGINT NOT NULL DEFAULT 0,
    retry_at BIGINT,
    last_error TEXT
);
CREATE INDEX leases_by_block ON leases (block_name, state);
CREATE INDEX leases_by_state ON leases (state, expires_at);
CREATE UNIQUE INDEX leases_by_username ON leases (admin_block, username);
-- What an audit record is about beyond its block, never a secret: for a lease, the
-- user name it made or took apart.
ALTER TABLE audit_log ADD COLUMN detail VARCHAR(200);
