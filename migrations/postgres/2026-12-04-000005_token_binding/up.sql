-- Token rows are bound to the master key (issue 26): `mac` is an HMAC, under a key
-- derived from the master key, of the row's id, name, secret hash, scopes, times and
-- revocation. A row without one (made before this migration and not bound by the
-- `blockyard database migrate` that applied it, or written by anyone without the master
-- key) verifies nothing.
ALTER TABLE api_tokens ADD COLUMN mac BYTEA;
