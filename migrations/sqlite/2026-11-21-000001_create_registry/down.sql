DROP TABLE block_types;
DROP TABLE block_versions;
DROP TABLE blocks;
DROP TABLE data_keys;
DROP TABLE store_meta;
