-- Repeated secret reads of one block by one actor within a short window are one record
-- with a count (issue 15): the first read's time and request id stay in `at` and
-- `request_id`, the last read's go to `last_at` and `last_request_id`. A record the
-- server may still add reads to carries `open_until` (Unix ms); every other record is
-- closed (NULL) and never changes again.
ALTER TABLE audit_log ADD COLUMN event_count BIGINT NOT NULL DEFAULT 1;
ALTER TABLE audit_log ADD COLUMN last_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE audit_log ADD COLUMN last_request_id TEXT;
ALTER TABLE audit_log ADD COLUMN open_until BIGINT;
UPDATE audit_log SET last_at = at;
