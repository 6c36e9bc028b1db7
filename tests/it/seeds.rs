//! The seeds' last gaps on the database side, against real PostgreSQL servers: a
//! managed-database admin (CREATEDB and CREATEROLE, not a superuser), owner names a
//! server reserves, seed 003's shared owner, its connection string and its full disk
//! (on a private cluster on a tiny tmpfs), and seed 004's schema that meets the block's
//! own `requires`.

use crate::databases::{ADMIN_PW, Cleanup, admin_block};
use crate::support::*;

#[test]
fn a_managed_database_admin_creates_and_drops_a_database() {
    let env = TestEnv::new(Backend::Sqlite);
    let (admin, db, owner) = (unique("bt_mgd"), unique("bt_mapp"), unique("bt_mown"));
    let _cleanup = Cleanup {
        databases: vec![db.clone()],
        roles: vec![owner.clone(), admin.clone()],
    };
    pg(&format!(
        "CREATE ROLE {admin} LOGIN CREATEDB CREATEROLE PASSWORD 'mgd-PLANTED' IN ROLE blockyard_password_auth"
    ));
    let url = format!("postgresql://{admin}@127.0.0.1:5432/postgres");
    env.run_stdin(
        &["block", "create", "mgd", "--url", &url, "--password-stdin"],
        "mgd-PLANTED",
    )
    .success();
    let created = env.ok(&[
        "db", "create", &db, "--admin", "mgd", "--owner", &owner, "--block", "app-db",
    ]);
    assert!(
        created.stdout.contains("granted role"),
        "{}",
        created.stdout
    );
    pg(&format!("GRANT blockyard_password_auth TO {owner}"));
    env.ok(&["block", "test", "app-db"]);
    env.ok(&[
        "db",
        "drop",
        &db,
        "--admin",
        "mgd",
        "--drop-role",
        &owner,
        "--yes",
    ]);
    assert!(!database_exists(&db) && !role_exists(&owner));
    assert!(!created.stdout.contains("mgd-PLANTED") && !created.stderr.contains("mgd-PLANTED"));
}

#[test]
fn owner_names_a_server_reserves_are_refused() {
    let env = TestEnv::new(Backend::Sqlite);
    env.ok(&["init"]);
    for owner in [
        "public",
        "none",
        "current_user",
        "session_user",
        "current_role",
    ] {
        env.run(&[
            "db", "create", "bt_never", "--admin", "nope", "--owner", owner, "--block", "b",
        ])
        .fails_with("INVALID_ROLE_NAME");
    }
}

/// Seed 003's self-hosted mode: every project's database used by one existing user.
#[test]
fn databases_can_share_the_admins_own_role() {
    let env = TestEnv::new(Backend::Sqlite);
    let (a, b) = (unique("bt_shared"), unique("bt_shared"));
    let _cleanup = Cleanup {
        databases: vec![a.clone(), b.clone()],
        roles: vec![],
    };
    admin_block(&env);
    for (db, block) in [(&a, "project-a"), (&b, "project-b")] {
        let done = env.json(&[
            "db",
            "create",
            db,
            "--admin",
            "pg-admin",
            "--owner",
            "postgres",
            "--existing-owner",
            "--block",
            block,
        ]);
        assert_eq!(done["role"], "postgres");
        assert_eq!(
            done["connection_string"],
            format!("postgresql://postgres:********@127.0.0.1:5432/{db}")
        );
        assert!(!done.to_string().contains(ADMIN_PW));
        env.ok(&["block", "test", block]);
        let owner = pg(&format!(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{db}'"
        ));
        assert_eq!(owner, "postgres");
    }
    env.run(&[
        "db",
        "create",
        &unique("bt_x"),
        "--admin",
        "pg-admin",
        "--owner",
        "someone_else",
        "--existing-owner",
        "--block",
        "x",
    ])
    .fails_with("INVALID_INPUT");
    // Its role is the admin's own: `db drop` never drops it.
    env.run(&[
        "db",
        "drop",
        &a,
        "--admin",
        "pg-admin",
        "--drop-role",
        "postgres",
        "--yes",
    ])
    .fails_with("INVALID_INPUT");
    assert!(role_exists("postgres") && database_exists(&a));
}

/// Seed 003: a full disk is DISK_SPACE_FULL (507 over HTTP), and nothing is left behind.
#[test]
fn a_full_disk_is_disk_space_full() {
    let cluster = TinyCluster::start(64);
    let env = TestEnv::new(Backend::Sqlite);
    env.ok(&["init"]);
    env.ok(&[
        "block",
        "create",
        "tiny",
        "--no-password",
        "--url",
        &cluster.url(),
    ]);
    cluster.fill_leaving(1024);
    let failed = env.run(&[
        "db",
        "create",
        "app",
        "--admin",
        "tiny",
        "--owner",
        "app_owner",
        "--block",
        "app-db",
    ]);
    let failed = failed.fails_with("DISK_SPACE_FULL");
    assert!(
        failed.stderr.contains("insufficient disk space"),
        "{}",
        failed.stderr
    );
    env.run(&["block", "inspect", "app-db"])
        .fails_with("BLOCK_NOT_FOUND");
    let leftover = std::process::Command::new("psql")
        .args([&cluster.url(), "-Atc"])
        .arg("SELECT count(*) FROM pg_roles WHERE rolname = 'app_owner'")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&leftover.stdout).trim(), "0");

    let admin = token(&env, "ops", &["admin"], &[]);
    let server = Server::start(&env, &[]);
    let api = Api::new(&server, Some(&admin));
    let new = serde_json::json!({"admin": "tiny", "database": "app", "owner": "app_owner", "block": "app-db"});
    let answer = api.post("/databases", &new);
    assert_eq!(
        (answer.status, answer.body["error"]["code"].as_str()),
        (507, Some("DISK_SPACE_FULL")),
        "{}",
        answer.text
    );
}

/// Seed 004: the schema file that creates the extension the block requires can be
/// applied to that block; `requires` is checked after, and what is still unmet said.
#[test]
fn a_schema_may_create_what_the_block_requires() {
    let env = TestEnv::new(Backend::Sqlite);
    let (db, owner) = (unique("bt_req"), unique("bt_rown"));
    let _cleanup = Cleanup {
        databases: vec![db.clone()],
        roles: vec![owner.clone()],
    };
    admin_block(&env);
    env.ok(&[
        "db", "create", &db, "--admin", "pg-admin", "--owner", &owner, "--block", "app",
    ]);
    pg(&format!("GRANT blockyard_password_auth TO {owner}"));
    env.ok(&[
        "block",
        "update",
        "app",
        "--set",
        "requires.extensions=[\"pgcrypto\"]",
    ]);
    env.run(&["block", "test", "app"])
        .fails_with("REQUIREMENT_NOT_MET");
    let schema = write_file(
        env.dir.path(),
        "schema.sql",
        "CREATE EXTENSION IF NOT EXISTS pgcrypto;\nCREATE TABLE t (id uuid DEFAULT gen_random_uuid());\n",
    );
    let applied = env.json(&["db", "apply", "app", schema.to_str().unwrap()]);
    assert_eq!(applied["statements"], 2);
    assert_eq!(applied["unmet"], serde_json::json!([]));
    env.ok(&["block", "test", "app"]);
}
