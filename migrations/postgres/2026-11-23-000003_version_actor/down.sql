ALTER TABLE block_versions DROP COLUMN actor;
