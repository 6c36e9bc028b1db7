//! One reading of a block's connection, whoever uses it: `block test` (a pool's
//! connection), `block env --format libpq` and `exec -- psql` all reach the database
//! libpq's query overrides, a `%2F`-encoded socket host or asyncpg's `ssl` say, against
//! the real PostgreSQL; and a URL means the same given with `--url` or as a string.

use crate::support::*;

/// Drops the test database, whatever the test did.
struct Database(String);

impl Drop for Database {
    fn drop(&mut self) {
        pg(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.0));
    }
}

#[test]
fn pools_env_and_exec_read_a_block_alike() {
    let env = TestEnv::new(Backend::Sqlite);
    let db = Database(unique("bt_reading"));
    pg(&format!("CREATE DATABASE {}", db.0));
    let name = &db.0;
    for (block, url) in [
        (
            "dbname-option",
            format!("postgresql://postgres@127.0.0.1:5432/postgres?dbname={name}"),
        ),
        (
            "user-and-port",
            format!("postgresql://nobody@127.0.0.1:1/{name}?user=postgres&port=5432"),
        ),
        (
            "encoded-socket",
            format!("postgresql://postgres@%2Fvar%2Frun%2Fpostgresql/{name}"),
        ),
        (
            "socket-option",
            format!("postgresql:///{name}?host=/var/run/postgresql&user=postgres"),
        ),
        (
            "asyncpg-ssl",
            format!("postgresql+asyncpg://postgres@127.0.0.1/{name}?ssl=disable"),
        ),
        (
            "jdbc-ssl",
            format!("postgresql://postgres@127.0.0.1/{name}?ssl=true"),
        ),
        (
            "two-hosts",
            format!("postgresql://postgres@127.0.0.1:1,127.0.0.1:5432/{name}"),
        ),
    ] {
        env.ok(&["block", "create", block, "--no-password", "--url", &url]);
        let test = env.run(&["block", "test", block, "-o", "json"]);
        assert_eq!(test.code, 0, "{block}: {}{}", test.stdout, test.stderr);
        let vars = env.json(&["block", "env", block, "--format", "libpq"]);
        assert_eq!(vars["PGDATABASE"], name.as_str(), "{block}: {vars}");
        assert!(vars.get("PGSSL").is_none());
        let psql = env.ok(&[
            "exec",
            block,
            "--",
            "psql",
            "-Atc",
            "select current_database()",
        ]);
        assert_eq!(psql.stdout.trim(), name, "{block}");
        let libpq = env.ok(&["block", "url", block, "--libpq"]).stdout;
        assert!(
            libpq.starts_with("postgresql://") && !libpq.contains("ssl="),
            "{libpq}"
        );

        // The same URL as a string field means the same connection.
        let string_block = format!("{block}-as-string");
        env.ok(&[
            "block",
            "create",
            &string_block,
            "--no-password",
            "--type",
            "sqlalchemy-connector",
            "--set",
            &format!("connection_info={url}"),
        ]);
        assert_eq!(
            env.ok(&["block", "url", &string_block]).stdout,
            env.ok(&["block", "url", block]).stdout,
            "{block}"
        );
        let psql = env.ok(&[
            "exec",
            &string_block,
            "--",
            "psql",
            "-Atc",
            "select current_database()",
        ]);
        assert_eq!(psql.stdout.trim(), name, "{string_block}");
    }
}

/// A libpq option with a bad value is reported as what it is, never as TLS.
#[test]
fn a_bad_option_is_not_a_tls_failure() {
    let env = TestEnv::new(Backend::Sqlite);
    env.ok(&[
        "block",
        "create",
        "bad-mode",
        "--no-password",
        "--url",
        "postgresql://postgres@127.0.0.1/postgres?sslmode=nope",
    ]);
    let test = env.run(&["block", "test", "bad-mode"]);
    assert_ne!(test.code, 0);
    assert!(!test.stderr.contains("TLS_ERROR"), "{}", test.stderr);
}
