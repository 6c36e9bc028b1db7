DROP TABLE server_heartbeats;
DROP TABLE block_tests;
DROP TABLE ui_sessions;
