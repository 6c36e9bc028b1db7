//! The database side against the real PostgreSQL server: `db create` → `block test` with
//! the generated password → `db apply` with placeholders → a read-only second role →
//! `block rotate-password` (also killed mid-way) → `db drop`; every error code produced
//! for real, with nothing left behind after a failure; no password in any output.

use diesel::PgConnection;
use diesel::prelude::*;

use crate::support::*;

/// Roles and databases a test made, dropped at the end whatever happened.
pub struct Cleanup {
    pub databases: Vec<String>,
    pub roles: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for db in &self.databases {
            let _ = std::process::Command::new("psql")
                .args(["-h", "127.0.0.1", "-U", "postgres", "-qc"])
                .arg(format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
                .output();
        }
        for role in &self.roles {
            let _ = std::process::Command::new("psql")
                .args(["-h", "127.0.0.1", "-U", "postgres", "-qc"])
                .arg(format!("DROP ROLE IF EXISTS {role}"))
                .output();
        }
    }
}

/// The admin block's password: the test server lets `postgres` in without one (trust),
/// so it is planted only to be searched for in every output.
pub const ADMIN_PW: &str = "planted-ADMIN-pw";

pub fn admin_block(env: &TestEnv) {
    env.run_stdin(
        &[
            "block",
            "create",
            "pg-admin",
            "--url",
            &pg_admin_url(),
            "--password-stdin",
        ],
        ADMIN_PW,
    )
    .success();
}

/// The stored password of a block.
fn password_of(env: &TestEnv, block: &str) -> String {
    env.json(&["block", "inspect", block, "--show-secrets"])["data"]["connection_info"]["password"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Whether `role` can log in with `password` (the role must give its password: it is
/// made a member of blockyard_password_auth, which pg_hba.conf holds to it).
fn can_log_in(db: &str, role: &str, password: &str) -> bool {
    let url = format!(
        "postgres://{role}:{}@127.0.0.1:5432/{db}",
        percent_encoding::utf8_percent_encode(password, percent_encoding::NON_ALPHANUMERIC)
    );
    PgConnection::establish(&url).is_ok()
}

/// `db user create --grant read`: a second role that may read the database but not write.
fn second_role_reads_but_cannot_write(env: &TestEnv, db: &str, reader: &str) -> String {
    let created = env.ok(&[
        "db",
        "user",
        "create",
        reader,
        "--admin",
        "pg-admin",
        "--grant",
        "read",
        "--on-database",
        db,
        "--block",
        "reader",
    ]);
    pg(&format!("GRANT blockyard_password_auth TO {reader}"));
    let read = env.ok(&[
        "exec",
        "reader",
        "--",
        "psql",
        "-Atc",
        "SELECT body FROM notes",
    ]);
    assert_eq!(read.stdout.trim(), "first");
    let write = env.run(&[
        "exec",
        "reader",
        "--",
        "psql",
        "-c",
        "INSERT INTO notes (body) VALUES ('no')",
    ]);
    assert_ne!(write.code, 0, "the read-only role could write");
    assert!(
        write.stderr.contains("permission denied"),
        "{}",
        write.stderr
    );
    created.all_output()
}

/// `block rotate-password`: a pool opened before the rotation keeps working after it,
/// and the old password no longer logs in. Returns the output and the new password.
fn rotation_keeps_an_open_pool_working(
    env: &TestEnv,
    db: &str,
    owner: &str,
    password: &str,
) -> (String, String) {
    let registry = env.registry("1h");
    let pool = registry.any_pool("app").unwrap();
    diesel::sql_query("SELECT 1")
        .execute(&mut *pool.get().unwrap())
        .unwrap();
    let rotated = env.ok(&["block", "rotate-password", "app", "--admin", "pg-admin"]);
    let new_password = password_of(env, "app");
    assert_ne!(new_password, password);
    assert!(
        !can_log_in(db, owner, password),
        "the old password still works"
    );
    assert!(can_log_in(db, owner, &new_password));
    env.ok(&["block", "test", "app"]);
    for _ in 0..3 {
        diesel::sql_query("SELECT 1")
            .execute(&mut *pool.get().unwrap())
            .unwrap();
    }
    drop(pool);
    drop(registry);
    let inspect = env.json(&["block", "inspect", "app"]);
    assert!(
        inspect["data"]["rotation"]["last_rotated_at"].is_string(),
        "{inspect}"
    );
    assert!(
        inspect["data"]["rotation"]
            .get("pending_password")
            .is_none()
    );
    (rotated.all_output(), new_password)
}

#[test]
fn postgres_database_lifecycle() {
    let env = TestEnv::new(Backend::Sqlite);
    let (db, owner, reader) = (unique("bt_db"), unique("bt_owner"), unique("bt_reader"));
    let _cleanup = Cleanup {
        databases: vec![db.clone()],
        roles: vec![owner.clone(), reader.clone()],
    };
    admin_block(&env);
    let create = [
        "db",
        "create",
        &db,
        "--admin",
        "pg-admin",
        "--owner",
        &owner,
        "--block",
        "app",
        "--extension",
        "pgcrypto",
    ];
    let created = env.ok(&create);
    pg(&format!("GRANT blockyard_password_auth TO {owner}"));
    let password = password_of(&env, "app");
    assert!(
        password.len() >= 32 && password.contains(['@', ':', '/', '?', '#', '%', '&', '+', '='])
    );
    let mut outputs = vec![created.all_output()];
    env.ok(&["block", "test", "app"]);
    assert!(can_log_in(&db, &owner, &password));
    assert_eq!(
        pg(&format!(
            "SELECT count(*) FROM pg_extension e, pg_database d WHERE d.datname = '{db}' AND e.extname = 'plpgsql'"
        )),
        "1"
    );
    // A re-run changes nothing and says so.
    let again = env.json(&create);
    assert_eq!(again["changed"], false, "{again}");
    assert_eq!(password_of(&env, "app"), password);

    // A schema with placeholders, one transaction; the first error stops it at file:line.
    let schema = write_file(
        env.dir.path(),
        "schema.sql",
        "-- for %%DATABASE%%\nCREATE TABLE notes (id serial PRIMARY KEY, body text DEFAULT 'a;b');\n\
         INSERT INTO notes (body) VALUES ('first');\n\
         COMMENT ON TABLE notes IS 'owner %%USER%% of %%DATABASE%%';\n",
    );
    outputs.push(
        env.ok(&["db", "apply", "app", schema.to_str().unwrap()])
            .all_output(),
    );
    let broken = write_file(
        env.dir.path(),
        "broken.sql",
        "CREATE TABLE other (x int);\nSELEC 1;\n",
    );
    let failed = env.run(&["db", "apply", "app", broken.to_str().unwrap()]);
    let failed = failed.fails_with("SCHEMA_FAILED");
    assert!(failed.stderr.contains("broken.sql:2"), "{}", failed.stderr);
    outputs.push(failed.all_output());
    let in_db = |sql: &str| {
        let mut conn =
            PgConnection::establish(&format!("postgres://postgres@127.0.0.1:5432/{db}")).unwrap();
        text(&mut conn, sql)
    };
    assert_eq!(
        in_db("SELECT obj_description('notes'::regclass) AS value"),
        format!("owner {owner} of {db}")
    );
    assert_eq!(
        in_db("SELECT count(*)::text AS value FROM pg_tables WHERE tablename = 'other'"),
        "0"
    );

    outputs.push(second_role_reads_but_cannot_write(&env, &db, &reader));

    let (rotated, new_password) = rotation_keeps_an_open_pool_working(&env, &db, &owner, &password);
    outputs.push(rotated);

    // Listing: owner, size, the blocks pointing at it.
    let listing = env.json(&["db", "ls", "--admin", "pg-admin"]);
    let entry = listing
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == db.as_str())
        .expect("the database is listed");
    assert_eq!(entry["owner"], owner.as_str());
    assert!(entry["size"].as_i64().unwrap() > 0);
    assert_eq!(entry["blocks"], serde_json::json!(["app", "reader"]));
    outputs.push(env.ok(&["db", "ls", "--admin", "pg-admin"]).all_output());

    // Drop: refused without --yes, then the database, its owner and its blocks.
    env.run(&["db", "drop", &db, "--admin", "pg-admin"])
        .fails_with("INVALID_INPUT");
    assert!(database_exists(&db));
    let dropped = env.ok(&[
        "db",
        "drop",
        &db,
        "--admin",
        "pg-admin",
        "--yes",
        "--drop-role",
        &owner,
        "--delete-blocks",
    ]);
    outputs.push(dropped.all_output());
    assert!(!database_exists(&db) && !role_exists(&owner));
    env.run(&["block", "inspect", "app"])
        .fails_with("BLOCK_NOT_FOUND");

    for text in &outputs {
        for secret in [password.as_str(), new_password.as_str(), ADMIN_PW] {
            assert!(!text.contains(secret), "a password was printed: {text}");
        }
    }
}

#[test]
fn postgres_create_errors_leave_nothing_behind() {
    let env = TestEnv::new(Backend::Sqlite);
    let (taken, owner, template, weak) = (
        unique("bt_taken"),
        unique("bt_owner"),
        unique("bt_tpl"),
        unique("bt_weak"),
    );
    let fresh = unique("bt_fresh");
    let _cleanup = Cleanup {
        databases: vec![taken.clone(), template.clone(), fresh.clone()],
        roles: vec![owner.clone(), weak.clone()],
    };
    admin_block(&env);
    pg(&format!("CREATE DATABASE {taken}"));
    pg(&format!("CREATE DATABASE {template}"));
    pg(&format!("CREATE ROLE {weak} LOGIN"));
    env.run_stdin(
        &[
            "block",
            "create",
            "weak-admin",
            "--no-password",
            "--url",
            &format!("postgresql://{weak}@127.0.0.1:5432/postgres"),
        ],
        "",
    )
    .success();
    let create = |db: &str, extra: &[&str]| {
        let mut args = vec![
            "db", "create", db, "--admin", "pg-admin", "--owner", &owner, "--block", "app",
        ];
        args.extend_from_slice(extra);
        env.run(&args)
    };
    let nothing_left = |db: &str| {
        assert!(!role_exists(&owner), "role {owner} left behind");
        if db != taken && db != template {
            assert!(!database_exists(db), "database {db} left behind");
        }
        env.run(&["block", "inspect", "app"])
            .fails_with("BLOCK_NOT_FOUND");
    };

    create(&taken, &[]).fails_with("DATABASE_ALREADY_EXISTS");
    nothing_left(&taken);
    create(&fresh, &["--template", "bt_no_such_template"]).fails_with("TEMPLATE_NOT_FOUND");
    nothing_left(&fresh);
    {
        // A template with a session open cannot be copied.
        let _session =
            PgConnection::establish(&format!("postgres://postgres@127.0.0.1:5432/{template}"))
                .unwrap();
        let run = create(&fresh, &["--template", &template]).fails_with("TEMPLATE_NOT_FOUND");
        assert!(run.stderr.contains("session"), "{}", run.stderr);
        nothing_left(&fresh);
    }
    for bad in ["My-Project", "123_project", "postgres", "template1", "auth"] {
        create(bad, &[]).fails_with("INVALID_DATABASE_NAME");
    }
    env.run(&[
        "db",
        "create",
        &fresh,
        "--admin",
        "weak-admin",
        "--owner",
        &owner,
        "--block",
        "app",
    ])
    .fails_with("INSUFFICIENT_PERMISSIONS");
    nothing_left(&fresh);
    // A step after the role and database were made fails: both are undone.
    let run = create(&fresh, &["--extension", "bt_no_such_extension"]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("create extension bt_no_such_extension"),
        "{}",
        run.stderr
    );
    nothing_left(&fresh);
    // With a template that works, the copy is made.
    let run = env.ok(&[
        "db",
        "create",
        &fresh,
        "--admin",
        "pg-admin",
        "--owner",
        &owner,
        "--block",
        "app",
        "--template",
        &template,
        "-o",
        "json",
    ]);
    assert!(run.stdout.contains("\"changed\": true"), "{}", run.stdout);
}

/// `--generate-name` turns a title into a valid, unused database name.
#[test]
fn a_generated_database_name_follows_the_title() {
    let env = TestEnv::new(Backend::Sqlite);
    admin_block(&env);
    let generated = env.json(&[
        "db",
        "create",
        "--generate-name",
        "My Project",
        "--admin",
        "pg-admin",
        "--owner",
        &unique("bt_gen"),
        "--block",
        "gen",
    ]);
    let name = generated["database"].as_str().unwrap().to_owned();
    assert!(name.starts_with("my_project_"), "{name}");
    env.ok(&[
        "db",
        "drop",
        &name,
        "--admin",
        "pg-admin",
        "--yes",
        "--drop-role",
        generated["role"].as_str().unwrap(),
    ]);
}

#[test]
fn rotation_killed_at_any_point_ends_with_a_block_that_connects() {
    let env = TestEnv::new(Backend::Sqlite);
    let (db, owner) = (unique("bt_rot"), unique("bt_rot_owner"));
    let _cleanup = Cleanup {
        databases: vec![db.clone()],
        roles: vec![owner.clone()],
    };
    admin_block(&env);
    env.ok(&[
        "db", "create", &db, "--admin", "pg-admin", "--owner", &owner, "--block", "app",
    ]);
    pg(&format!("GRANT blockyard_password_auth TO {owner}"));
    let rotate = ["block", "rotate-password", "app", "--admin", "pg-admin"];
    for point in ["pending-stored", "role-altered"] {
        let crashed = env.run_with(&rotate, None, &[("BLOCKYARD_CRASH_AT", point)]);
        assert_ne!(crashed.code, 0, "the rotation did not stop at {point}");
        let pending = env.json(&["block", "inspect", "app", "--show-secrets"]);
        let pending = pending["data"]["rotation"]["pending_password"]
            .as_str()
            .unwrap()
            .to_owned();
        // The store holds a password that works: the current one, or the pending one.
        let current = password_of(&env, "app");
        assert!(
            can_log_in(&db, &owner, &current) || can_log_in(&db, &owner, &pending),
            "after a crash at {point} no stored password works"
        );
        env.ok(&rotate);
        env.ok(&["block", "test", "app"]);
        assert_eq!(
            password_of(&env, "app"),
            pending,
            "the re-run finished the pending rotation"
        );
    }
    // Real kill -9 at different moments.
    for delay_ms in [5u64, 20, 40, 80, 160] {
        let mut child = env
            .command(&rotate)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        env.ok(&rotate);
        env.ok(&["block", "test", "app"]);
    }
}

/// Every provisioning action is in the audit log, and so is the writer's refusal.
fn assert_provisioning_audited(api: &Api) {
    let audit = api.get("/audit?limit=100");
    let actions: Vec<&str> = audit.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    for action in [
        "use-admin-block",
        "db-create",
        "db-apply",
        "db-user-create",
        "rotate-password",
        "db-drop",
    ] {
        assert!(
            actions.contains(&action),
            "{action} not audited: {actions:?}"
        );
    }
    let refusal = audit.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["actor"] == "bot" && r["outcome"] == "FORBIDDEN");
    assert!(refusal, "the refused provisioning is not on record");
}

#[test]
fn the_database_side_over_http() {
    use serde_json::json;
    let env = TestEnv::new(Backend::Sqlite);
    let (db, owner, reader) = (unique("bt_http"), unique("bt_howner"), unique("bt_hread"));
    let _cleanup = Cleanup {
        databases: vec![db.clone()],
        roles: vec![owner.clone(), reader.clone()],
    };
    env.ok(&["init"]);
    admin_block(&env);
    let admin = token(&env, "ops", &["admin"], &[]);
    let writer = token(&env, "bot", &["blocks:write", "blocks:read-secrets"], &[]);
    let server = Server::start(&env, &[]);
    let api = Api::new(&server, Some(&admin));
    let bot = Api::new(&server, Some(&writer));
    let new = json!({"admin": "pg-admin", "database": db, "owner": owner, "block": "app"});

    let refused = bot.post("/databases", &new);
    assert_eq!(refused.status, 403, "{}", refused.text);
    let created = api.post("/databases", &new);
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.body["changed"], true);
    // Seed 003's answer: the connection string, its password masked.
    assert_eq!(
        created.body["connection_string"],
        format!("postgresql://{owner}:********@127.0.0.1:5432/{db}")
    );
    let again = api.post("/databases", &new);
    assert_eq!(
        (again.status, &again.body["changed"]),
        (200, &json!(false)),
        "{}",
        again.text
    );
    let taken = api.post(
        "/databases",
        &json!({"admin": "pg-admin", "database": db, "owner": unique("bt_x"), "block": "other"}),
    );
    assert_eq!(
        (taken.status, &taken.body["error"]["code"]),
        (409, &json!("DATABASE_ALREADY_EXISTS"))
    );
    let bad = api.post(
        "/databases",
        &json!({"admin": "pg-admin", "database": "Bad-Name", "owner": "x", "block": "x"}),
    );
    assert_eq!(
        (bad.status, &bad.body["error"]["code"]),
        (400, &json!("INVALID_DATABASE_NAME"))
    );
    pg(&format!("GRANT blockyard_password_auth TO {owner}"));
    let password = password_of(&env, "app");

    let schema = json!({"files": [{"name": "one.sql", "sql": "CREATE TABLE t (x int);\nINSERT INTO t VALUES (1);"}]});
    let applied = api.post("/blocks/app/apply", &schema);
    assert_eq!(
        (applied.status, &applied.body["statements"]),
        (200, &json!(2)),
        "{}",
        applied.text
    );
    let broken = api.post(
        "/blocks/app/apply",
        &json!({"files": [{"name": "two.sql", "sql": "SELECT 1;\nSELEC;"}]}),
    );
    assert_eq!(broken.status, 422, "{}", broken.text);
    assert!(broken.text.contains("two.sql:2"), "{}", broken.text);

    let user = api.post(
        &format!("/databases/{db}/users"),
        &json!({"admin": "pg-admin", "role": reader, "grant": "read", "block": "reader"}),
    );
    assert_eq!(user.status, 201, "{}", user.text);
    let listing = api.get("/databases?admin=pg-admin");
    let entry = listing
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == db.as_str())
        .cloned()
        .unwrap();
    assert_eq!(entry["blocks"], json!(["app", "reader"]));

    let rotated = api.post("/blocks/app/rotate-password", &json!({"admin": "pg-admin"}));
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let new_password = password_of(&env, "app");
    assert!(can_log_in(&db, &owner, &new_password) && !can_log_in(&db, &owner, &password));

    let dropped = api.send(
        "DELETE",
        &format!("/databases/{db}?admin=pg-admin&drop_role={owner}"),
        None,
        &[],
    );
    assert_eq!(dropped.status, 200, "{}", dropped.text);
    assert_eq!(dropped.body["blocks"], json!(["app", "reader"]));
    assert!(!database_exists(&db));

    assert_provisioning_audited(&api);
    let everything = [
        created.text,
        again.text,
        applied.text,
        broken.text,
        user.text,
        listing.text,
        rotated.text,
        dropped.text,
        server.log(),
    ]
    .join("\n");
    for secret in [password.as_str(), new_password.as_str(), ADMIN_PW] {
        assert!(!everything.contains(secret), "a password left the server");
    }
}

/// `rotation.every` run by the server, by one server at a time when two share a
/// PostgreSQL store.
#[test]
fn scheduled_rotation_by_one_server_at_a_time() {
    let env = TestEnv::new(Backend::Postgres);
    let (db, owner) = (unique("bt_sched"), unique("bt_sched_owner"));
    let _cleanup = Cleanup {
        databases: vec![db.clone()],
        roles: vec![owner.clone()],
    };
    env.ok(&["init"]);
    admin_block(&env);
    env.ok(&[
        "db", "create", &db, "--admin", "pg-admin", "--owner", &owner, "--block", "app",
    ]);
    pg(&format!("GRANT blockyard_password_auth TO {owner}"));
    env.ok(&[
        "block",
        "update",
        "app",
        "--set-json",
        r#"rotation={"every": "1s", "admin": "pg-admin"}"#,
    ]);
    let first = password_of(&env, "app");
    let servers = [
        Server::start(&env, &["--rotation-check", "200ms"]),
        Server::start(&env, &["--rotation-check", "200ms"]),
    ];
    // Wait (bounded) for two rotations.
    let mut rotated = 0;
    for _ in 0..300 {
        let history = env.json(&["block", "history", "app"]);
        rotated = history
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| v["changes"].to_string().contains("last_rotated_at"))
            .count();
        if rotated >= 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(rotated >= 2, "the server did not rotate the password");
    for server in &servers {
        // A rotation failed or two servers rotated at once (a version conflict).
        assert!(!server.log().contains("\"scheduler\""), "{}", server.log());
    }
    drop(servers);
    let now = password_of(&env, "app");
    assert_ne!(now, first);
    assert!(can_log_in(&db, &owner, &now) && !can_log_in(&db, &owner, &first));
    env.ok(&["block", "test", "app"]);
    let shown = env.ok(&["block", "inspect", "app"]).stdout;
    assert!(
        shown.contains("rotation") && shown.contains("next"),
        "{shown}"
    );
    let audit = env.json(&["audit", "ls", "--limit", "50"]);
    assert!(
        audit.to_string().contains("scheduler"),
        "scheduled rotations are not audited: {audit}"
    );
}

/// Issue 26 #10: a role's password reaches PostgreSQL only as a SCRAM verifier (a
/// refused statement's log line holds no password), and a refused rotation's pending
/// password is dropped, never used again.
#[test]
fn refused_rotations_leave_no_password_in_the_servers_log() {
    let env = TestEnv::new(Backend::Postgres);
    env.ok(&["init"]);
    admin_block(&env);
    let ghost = unique("bt_ghost");
    env.run_stdin(
        &[
            "block",
            "create",
            "ghost",
            "--type",
            "sqlalchemy-connector",
            "--set",
            "connection_info.driver=postgresql",
            "--set",
            "connection_info.host=127.0.0.1",
            "--set",
            "connection_info.database=postgres",
            "--set",
            &format!("connection_info.username={ghost}"),
            "--password-stdin",
        ],
        "old-pw",
    )
    .success();
    // The role does not exist: ALTER ROLE fails, and PostgreSQL logs the statement.
    env.run(&["block", "rotate-password", "ghost", "--admin", "pg-admin"])
        .fails_with("NOT_FOUND");
    let shown = env.json(&["block", "inspect", "ghost", "--show-secrets"]);
    assert!(
        shown["data"]["rotation"].get("pending_password").is_none(),
        "a refused rotation kept its password for the next run: {shown}"
    );
    let logs: String = std::fs::read_dir("/var/log/postgresql")
        .expect("PostgreSQL's log (Debian: /var/log/postgresql)")
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
        .collect();
    let lines: Vec<&str> = logs.lines().filter(|l| l.contains(&ghost)).collect();
    assert!(!lines.is_empty(), "the refused statement is not in the log");
    for line in lines.iter().filter(|l| l.contains("PASSWORD")) {
        assert!(line.contains("SCRAM-SHA-256$4096:"), "{line}");
    }
}
