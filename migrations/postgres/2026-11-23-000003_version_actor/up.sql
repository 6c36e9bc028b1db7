-- Who made each version: the token's actor for changes over HTTP; NULL for changes made
-- on the store directly (the CLI or the library), shown as `local`.
ALTER TABLE block_versions ADD COLUMN actor VARCHAR(128);
