-- Rows that are not sealed but decide who gets in or where a secret goes are bound to
-- the master key (issue 26): `mac` is an HMAC, under a key derived from the master key,
-- of a token's id, name, secret hash, scopes, times and revocation, and of a user type's
-- slug and definition. A row without one (made before this migration and not bound by
-- the `blockyard database migrate` that applied it, or written by anyone without the
-- master key) is refused.
ALTER TABLE api_tokens ADD COLUMN mac BLOB;
ALTER TABLE block_types ADD COLUMN mac BLOB;
