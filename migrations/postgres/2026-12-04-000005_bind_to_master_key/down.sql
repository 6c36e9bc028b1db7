ALTER TABLE block_types DROP COLUMN mac;
ALTER TABLE api_tokens DROP COLUMN mac;
