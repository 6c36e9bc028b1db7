ALTER TABLE audit_log DROP COLUMN open_until;
ALTER TABLE audit_log DROP COLUMN last_request_id;
ALTER TABLE audit_log DROP COLUMN last_at;
ALTER TABLE audit_log DROP COLUMN event_count;
