DROP TABLE leases;
ALTER TABLE audit_log DROP COLUMN detail;
