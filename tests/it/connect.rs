//! Block connections against real PostgreSQL, MariaDB and SQLite: pools by name,
//! awkward passwords, password rotation reaching running pool users, classified
//! failures, `block test/url/env` and `exec` with psql, pg_dump and mysql.

use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::{PgConnection, SqliteConnection};

use crate::support::*;

/// A PostgreSQL role that must give its password (member of blockyard_password_auth,
/// which pg_hba.conf sends to scram-sha-256; see .ci/run) and a database it owns.
struct PgRole {
    name: String,
}

impl PgRole {
    fn new(password: &str) -> PgRole {
        let name = unique("bt_role");
        let mut admin = PgConnection::establish(&pg_admin_url()).unwrap();
        diesel::sql_query(format!(
            "CREATE ROLE {name} LOGIN PASSWORD {} IN ROLE blockyard_password_auth",
            literal(password)
        ))
        .execute(&mut admin)
        .unwrap();
        diesel::sql_query(format!("CREATE DATABASE {name} OWNER {name}"))
            .execute(&mut admin)
            .unwrap();
        PgRole { name }
    }

    fn admin(&self, sql: &str) {
        let mut admin = PgConnection::establish(&pg_admin_url()).unwrap();
        diesel::sql_query(sql).execute(&mut admin).unwrap();
    }

    fn set_password(&self, password: &str) {
        self.admin(&format!(
            "ALTER ROLE {} PASSWORD {}",
            self.name,
            literal(password)
        ));
    }

    /// Ends every session of the role, so pools must open new connections.
    fn kick(&self) {
        self.admin(&format!(
            "SELECT pg_terminate_backend(pid)::text FROM pg_stat_activity WHERE usename = '{}'",
            self.name
        ));
    }

    fn create_block(&self, env: &TestEnv, block: &str, password: &str) {
        env.run_stdin(
            &[
                "block",
                "create",
                block,
                "--type",
                "sqlalchemy-connector",
                "--set",
                "connection_info.driver=postgresql+psycopg2",
                "--set",
                &format!("connection_info.database={}", self.name),
                "--set",
                &format!("connection_info.username={}", self.name),
                "--set",
                "connection_info.host=127.0.0.1",
                "--set",
                "connection_info.port=5432",
                "--password-stdin",
            ],
            password,
        )
        .success();
    }
}

impl Drop for PgRole {
    fn drop(&mut self) {
        if let Ok(mut admin) = PgConnection::establish(&pg_admin_url()) {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut admin);
            let _ =
                diesel::sql_query(format!("DROP ROLE IF EXISTS {}", self.name)).execute(&mut admin);
        }
    }
}

#[test]
fn postgres_pool_with_an_awkward_password_survives_rotation() {
    let env = TestEnv::new(Backend::Sqlite);
    let role = PgRole::new(AWKWARD);
    role.create_block(&env, "crdb-sage", AWKWARD);

    // The role really needs its password: a wrong one is refused.
    let test = env.json(&["block", "test", "crdb-sage"]);
    assert!(
        test["server_version"]
            .as_str()
            .unwrap()
            .starts_with(|c: char| c.is_ascii_digit())
    );
    let url = env.ok(&["block", "url", "crdb-sage"]).stdout;
    assert_eq!(
        url.trim(),
        format!(
            "postgresql+psycopg2://{0}:********@127.0.0.1:5432/{0}",
            role.name
        )
    );

    let registry = env.registry("300ms");
    let pool = registry.pool::<PgConnection>("crdb-sage").unwrap();
    assert_eq!(
        text(
            &mut *pool.get().unwrap(),
            "SELECT current_user::text AS value"
        ),
        role.name
    );
    // Cached: the same pool comes back without a registry round trip.
    let again = registry.pool::<PgConnection>("crdb-sage").unwrap();
    assert_eq!(again.state().connections, pool.state().connections);

    // A flow keeps asking for connections while the password is rotated.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flow = {
        let (registry, stop) = (registry.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut served = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // A connection the kick ends between `get` and its query fails that
                // query; the pool replaces it.
                if let Ok(mut conn) = registry.pool::<PgConnection>("crdb-sage").unwrap().get()
                    && diesel::sql_query("SELECT 1").execute(&mut *conn).is_ok()
                {
                    served += 1;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            served
        })
    };
    let rotated = "n3w:p@ss/wörd%";
    role.set_password(rotated);
    update_password(&env, "crdb-sage", rotated);
    role.kick();
    // Within the refresh interval (300 ms), pool(name) hands out working connections.
    std::thread::sleep(Duration::from_millis(600));
    let fresh = registry.pool::<PgConnection>("crdb-sage").unwrap();
    assert_eq!(
        text(
            &mut *fresh.get().unwrap(),
            "SELECT current_user::text AS value"
        ),
        role.name
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(flow.join().unwrap() > 0);

    // With a long refresh interval, an authentication failure re-reads the block at
    // once: even the pool handle taken before the rotation connects again.
    let patient = env.registry("1h");
    let held = patient.pool::<PgConnection>("crdb-sage").unwrap();
    drop(held.get().unwrap());
    let third = "third 'time' \"lucky\"";
    role.set_password(third);
    update_password(&env, "crdb-sage", third);
    role.kick();
    let mut conn = held
        .get()
        .expect("the pool re-reads the block after auth failure");
    assert_eq!(
        text(&mut *conn, "SELECT current_user::text AS value"),
        role.name
    );

    // The wrong password is reported as such, without the password.
    update_password(&env, "crdb-sage", "not-the-password");
    let run = env
        .run(&["block", "test", "crdb-sage"])
        .fails_with("AUTHENTICATION_FAILED");
    assert!(
        !run.all_output().contains("not-the-password"),
        "{}",
        run.stderr
    );
}

#[test]
fn classified_failures_within_the_timeout() {
    let env = TestEnv::new(Backend::Sqlite);
    let role = PgRole::new("right");
    role.create_block(&env, "pg", "right");
    env.ok(&["block", "test", "pg"]);

    let cases: &[(&[&str], &str)] = &[
        (&["--set", "connection_info.port=1"], "HOST_UNREACHABLE"),
        (
            &["--set", "connection_info.host=nowhere.invalid"],
            "HOST_UNREACHABLE",
        ),
        (
            &["--set", "connection_info.database=no_such_db_here"],
            "DATABASE_NOT_FOUND",
        ),
        (
            &["--set", "connection_info.driver=mssql+pyodbc"],
            "UNSUPPORTED_DRIVER",
        ),
        (
            &["--set", "connection_info.driver=oracle+cx_oracle"],
            "UNSUPPORTED_DRIVER",
        ),
    ];
    for (change, code) in cases {
        env.run_stdin(
            &[
                "block",
                "create",
                "broken",
                "--url",
                &format!("postgresql://{0}@127.0.0.1:5432/{0}", role.name),
                "--password-stdin",
            ],
            "right",
        )
        .success();
        let mut args = vec!["block", "update", "broken"];
        args.extend_from_slice(change);
        env.ok(&args);
        let started = Instant::now();
        let run = env
            .run(&["block", "test", "broken", "--timeout", "3s"])
            .fails_with(code);
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{code} took {:?}",
            started.elapsed()
        );
        assert!(!run.all_output().contains("right@"), "{}", run.stderr);
        // The block is still stored and readable whatever its driver.
        env.ok(&["block", "inspect", "broken"]);
        env.ok(&["block", "delete", "broken"]);
    }

    // Asking the library for a pool of the wrong kind, or an unsupported driver.
    env.ok(&[
        "block",
        "create",
        "mssql",
        "--no-password",
        "--url",
        "mssql+pyodbc://u@sqlhost/db",
    ]);
    let registry = env.registry("30s");
    assert_eq!(
        registry.any_pool("mssql").unwrap_err().code(),
        "UNSUPPORTED_DRIVER"
    );
    assert_eq!(
        registry.pool::<SqliteConnection>("pg").unwrap_err().code(),
        "UNSUPPORTED_DRIVER"
    );
    assert_eq!(
        registry.pool::<PgConnection>("nope").unwrap_err().code(),
        "BLOCK_NOT_FOUND"
    );
    env.run_stdin(
        &[
            "block",
            "create",
            "note",
            "--type",
            "secret",
            "--password-stdin",
        ],
        "a note",
    )
    .success();
    env.run(&["block", "test", "note"])
        .fails_with("NOT_A_CONNECTION");

    // A pool's own connection timeout comes from the block.
    env.ok(&[
        "block",
        "update",
        "pg",
        "--set",
        "connection_info.port=1",
        "--set-json",
        r#"pool={"max_size": 2, "connection_timeout": "500ms"}"#,
    ]);
    let started = Instant::now();
    assert!(registry.pool::<PgConnection>("pg").unwrap().get().is_err());
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn requirements_are_checked() {
    let env = TestEnv::new(Backend::Sqlite);
    let role = PgRole::new("pw");
    role.create_block(&env, "mas", "pw");
    env.ok(&[
        "block",
        "update",
        "mas",
        "--set-json",
        r#"requires={"server_version": ">=13", "extensions": ["plpgsql"]}"#,
    ]);
    let report = env.json(&["block", "test", "mas"]);
    assert_eq!(
        report["requirements"].as_array().unwrap().len(),
        2,
        "{report}"
    );
    env.ok(&[
        "block",
        "update",
        "mas",
        "--set-json",
        r#"requires={"server_version": ">=99", "extensions": ["plpgsql", "pgcrypto_not_here"]}"#,
    ]);
    let run = env
        .run(&["block", "test", "mas"])
        .fails_with("REQUIREMENT_NOT_MET");
    assert!(run.stdout.contains("NOT MET"), "{}", run.stdout);
    assert!(run.stderr.contains("server_version >=99") && run.stderr.contains("pgcrypto_not_here"));
    assert!(run.stderr.contains("connects"), "{}", run.stderr);
    // A malformed requirement is refused when stored.
    env.run(&[
        "block",
        "update",
        "mas",
        "--set-json",
        r#"requires={"extensions": "pgcrypto"}"#,
    ])
    .fails_with("INVALID_BLOCK_DATA");
}

#[test]
fn unix_socket_host() {
    let env = TestEnv::new(Backend::Sqlite);
    env.ok(&[
        "block",
        "create",
        "local-pg",
        "--no-password",
        "--type",
        "sqlalchemy-connector",
        "--set",
        "connection_info.driver=postgresql",
        "--set",
        "connection_info.database=postgres",
        "--set",
        "connection_info.username=postgres",
        "--set",
        "connection_info.host=/var/run/postgresql",
    ]);
    let url = env.ok(&["block", "url", "local-pg"]).stdout;
    assert!(url.contains("host=%2Fvar%2Frun%2Fpostgresql"), "{url}");
    env.ok(&["block", "test", "local-pg"]);
    let pool = env.registry("30s").any_pool("local-pg").unwrap();
    let mut conn = pool.get().unwrap();
    assert_eq!(
        text(&mut *conn, "SELECT current_user::text AS value"),
        "postgres"
    );
}

#[test]
fn exec_with_psql_and_pg_dump_and_env_outputs_read_by_a_shell() {
    let env = TestEnv::new(Backend::Sqlite);
    let role = PgRole::new(AWKWARD);
    role.create_block(&env, "crdb-sage", AWKWARD);

    let run = env.ok(&[
        "exec",
        "crdb-sage",
        "--",
        "psql",
        "-tAc",
        "select current_user",
    ]);
    assert_eq!(run.stdout.trim(), role.name);

    // Nothing on any command line holds the password while the program runs.
    let run = env.ok(&[
        "exec",
        "crdb-sage",
        "--",
        "sh",
        "-c",
        "cat /proc/[0-9]*/cmdline | tr '\\0' ' '; ps -eo args",
    ]);
    assert!(run.stdout.contains("cmdline"), "{}", run.stdout);
    assert!(
        !run.stdout.contains("p@ss:w/rd"),
        "password on a command line"
    );

    env.ok(&[
        "exec",
        "crdb-sage",
        "--",
        "psql",
        "-qc",
        "create table flows (id int); insert into flows values (42)",
    ]);
    env.ok(&[
        "exec",
        "crdb-sage",
        "--",
        "pg_dump",
        "-Fc",
        "-f",
        "backup.dump",
    ]);
    let dump = std::fs::read(env.dir.path().join("backup.dump")).unwrap();
    assert!(dump.starts_with(b"PGDMP"), "not a custom-format dump");
    assert!(contains_bytes(&dump, "flows"));

    // Exit codes pass through; a missing program is a clear error.
    assert_eq!(
        env.run(&["exec", "crdb-sage", "--", "sh", "-c", "exit 7"])
            .code,
        7
    );
    env.run(&["exec", "crdb-sage", "--", "no-such-program-xyz"])
        .exits_with(127, "PROGRAM_NOT_FOUND");

    // shell and dotenv outputs read back by a shell give the exact password.
    let shell = env
        .ok(&[
            "block",
            "env",
            "crdb-sage",
            "--format",
            "shell",
            "--prefix",
            "SESAME_DATABASE",
        ])
        .stdout;
    let dotenv = env
        .ok(&[
            "block",
            "env",
            "crdb-sage",
            "--format",
            "dotenv",
            "--prefix",
            "SESAME_DATABASE",
        ])
        .stdout;
    write_file(env.dir.path(), "vars.sh", &shell);
    write_file(env.dir.path(), "vars.env", &dotenv);
    for script in [". ./vars.sh", "set -a; . ./vars.env; set +a"] {
        let out = std::process::Command::new("bash")
            .args(["-c", &format!("{script}; printf '%s|%s|%s|%s' \"$SESAME_DATABASE_PASSWORD\" \"$SESAME_DATABASE_USER\" \"$SESAME_DATABASE_PORT\" \"$SESAME_DATABASE_URL\"")])
            .current_dir(env.dir.path())
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let parts: Vec<&str> = text.split('|').collect();
        assert_eq!(parts[0], AWKWARD, "{script}");
        assert_eq!(parts[1], role.name);
        assert_eq!(parts[2], "5432");
        // The exported URL is SQLAlchemy's, driver included.
        assert!(
            parts[3].starts_with("postgresql+psycopg2://"),
            "{}",
            parts[3]
        );
    }
    // `block url --libpq` is the one psql reads; it connects as is.
    let url = env
        .ok(&["block", "url", "crdb-sage", "--libpq", "--show-secrets"])
        .stdout;
    let psql = std::process::Command::new("psql")
        .args([url.trim(), "-tAc", "select 1"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&psql.stdout).trim(),
        "1",
        "{}",
        String::from_utf8_lossy(&psql.stderr)
    );
    let libpq = env.json(&["block", "env", "crdb-sage", "--format", "libpq"]);
    assert_eq!(libpq["PGPASSWORD"], AWKWARD);
    assert_eq!(libpq["PGPORT"], "5432");
    env.run(&["block", "env", "crdb-sage", "--format", "mysql"])
        .fails_with("INVALID_INPUT");
    env.run(&["block", "env", "crdb-sage", "--prefix", "9bad prefix"])
        .fails_with("INVALID_INPUT");
}

#[test]
fn sqlite_pools() {
    let env = TestEnv::new(Backend::Postgres);
    let db = env.dir.path().join("flow.db");
    env.ok(&[
        "block",
        "create",
        "local",
        "--url",
        &format!("sqlite+aiosqlite:///{}", db.display()),
    ]);
    // `block test` never creates the file; a flow's pool does.
    env.run(&["block", "test", "local"])
        .fails_with("DATABASE_NOT_FOUND");
    SqliteConnection::establish(db.to_str().unwrap()).unwrap();
    env.ok(&["block", "test", "local"]);
    let registry = env.registry("30s");
    let pool = registry.pool::<SqliteConnection>("local").unwrap();
    let mut conn = pool.get().unwrap();
    diesel::sql_query("CREATE TABLE t (x TEXT)")
        .execute(&mut *conn)
        .unwrap();
    let any = registry.any_pool("local").unwrap();
    let mut conn = any.get().unwrap();
    diesel::sql_query("INSERT INTO t VALUES ('from any_pool')")
        .execute(&mut *conn)
        .unwrap();
    assert_eq!(
        text(&mut *conn, "SELECT x AS value FROM t"),
        "from any_pool"
    );
    assert_eq!(
        registry.pool::<PgConnection>("local").unwrap_err().code(),
        "UNSUPPORTED_DRIVER"
    );
}

/// The example flow in `examples/`, run as a user would, against a real database.
#[test]
fn example_flow_runs() {
    let env = TestEnv::new(Backend::Sqlite);
    let role = PgRole::new(AWKWARD);
    role.create_block(&env, "crdb-sage", AWKWARD);
    let example = std::path::Path::new(BIN)
        .parent()
        .unwrap()
        .join("examples/sync_regions");
    for expected in [
        "4 region(s) inserted or changed, 4 in all",
        "0 region(s) inserted or changed, 4 in all",
    ] {
        let output = env
            .program(&example, &["crdb-sage"])
            .output()
            .expect("cargo test builds the examples");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{}: {stdout}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(stdout.trim(), format!("crdb-sage: {expected}"));
    }
}

/// A block whose password refers to another's: its pool by name connects (the pool's
/// loader resolves references as `read_block` does).
#[test]
fn a_pool_by_name_connects_with_a_referenced_password() {
    let env = TestEnv::new(Backend::Sqlite);
    let role = PgRole::new("pool-Ref-Secret-8");
    role.create_block(&env, "owner", "pool-Ref-Secret-8");
    let owner = env.json(&["block", "get", "owner"]);
    let info = &owner["data"]["connection_info"];
    let doc = serde_json::json!({"connection_info": {
        "driver": "postgresql", "database": info["database"], "username": info["username"],
        "host": info["host"], "port": info["port"],
        "password": {"$ref": "blockyard://owner/connection_info.password"}}});
    create_from_json(&env, "app", "sqlalchemy-connector", &doc.to_string()).success();
    let registry = env.registry("30s");
    let pool = registry.pool::<PgConnection>("app").unwrap();
    let mut conn = pool.get().unwrap();
    let user: String = diesel::select(diesel::dsl::sql::<diesel::sql_types::Text>("current_user"))
        .get_result(&mut *conn)
        .unwrap();
    assert_eq!(user, role.name);
}
