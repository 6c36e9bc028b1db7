CREATE TABLE store_meta (
    key VARCHAR(64) PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

CREATE TABLE data_keys (
    id VARCHAR(36) PRIMARY KEY NOT NULL,
    wrapped BLOB NOT NULL,
    active BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE blocks (
    id VARCHAR(36) PRIMARY KEY NOT NULL,
    name VARCHAR(128) NOT NULL UNIQUE,
    block_type VARCHAR(128) NOT NULL,
    version BIGINT NOT NULL,
    data TEXT NOT NULL,
    sealed_secrets BLOB,
    key_id VARCHAR(36),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX blocks_block_type ON blocks (block_type, name);
CREATE INDEX blocks_key_id ON blocks (key_id);

CREATE TABLE block_versions (
    block_id VARCHAR(36) NOT NULL,
    version BIGINT NOT NULL,
    name VARCHAR(128) NOT NULL,
    block_type VARCHAR(128) NOT NULL,
    data TEXT NOT NULL,
    sealed_secrets BLOB,
    key_id VARCHAR(36),
    change VARCHAR(16) NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (block_id, version)
);
CREATE INDEX block_versions_key_id ON block_versions (key_id);

CREATE TABLE block_types (
    slug VARCHAR(128) PRIMARY KEY NOT NULL,
    definition TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
