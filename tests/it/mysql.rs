//! MySQL/MariaDB blocks against a real MariaDB server: pools by name, `block test`, and
//! `exec` with the `mysql` client. Built with `--features mysql` (what `scripts/test` runs).

use diesel::MysqlConnection;
use diesel::prelude::*;

use crate::support::*;

/// A MariaDB database and a user that needs its password.
struct MysqlUser {
    name: String,
}

const MYSQL_ADMIN: &str = "mysql://root@127.0.0.1:3306/mysql";

impl MysqlUser {
    fn new(password: &str) -> MysqlUser {
        let name = unique("bt_my");
        let mut admin = MysqlConnection::establish(MYSQL_ADMIN)
            .expect("MariaDB must be running for the tests (see .ci/run)");
        for sql in [
            format!("CREATE DATABASE {name}"),
            format!(
                "CREATE USER '{name}'@'%' IDENTIFIED BY {}",
                literal(password)
            ),
            format!("GRANT ALL ON {name}.* TO '{name}'@'%'"),
        ] {
            diesel::sql_query(sql).execute(&mut admin).unwrap();
        }
        MysqlUser { name }
    }
}

impl Drop for MysqlUser {
    fn drop(&mut self) {
        if let Ok(mut admin) = MysqlConnection::establish(MYSQL_ADMIN) {
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {}", self.name))
                .execute(&mut admin);
            let _ = diesel::sql_query(format!("DROP USER IF EXISTS '{}'@'%'", self.name))
                .execute(&mut admin);
        }
    }
}

#[test]
fn mariadb_pool_test_and_exec() {
    let env = TestEnv::new(Backend::Sqlite);
    let user = MysqlUser::new(AWKWARD);
    env.run_stdin(
        &[
            "block",
            "create",
            "warehouse",
            "--url",
            &format!("mariadb+mariadbconnector://{0}@127.0.0.1/{0}", user.name),
            "--password-stdin",
        ],
        AWKWARD,
    )
    .success();
    let report = env.json(&["block", "test", "warehouse"]);
    assert!(
        report["server_version"]
            .as_str()
            .unwrap()
            .contains("MariaDB"),
        "{report}"
    );
    assert_eq!(
        report["url"],
        format!(
            "mariadb+mariadbconnector://{0}:********@127.0.0.1/{0}",
            user.name
        )
    );

    let registry = env.registry("30s");
    let pool = registry.pool::<MysqlConnection>("warehouse").unwrap();
    let who = text(
        &mut *pool.get().unwrap(),
        "SELECT CAST(CURRENT_USER() AS CHAR) AS value",
    );
    assert!(who.starts_with(&user.name), "{who}");
    let any = registry.any_pool("warehouse").unwrap();
    let mut conn = any.get().unwrap();
    assert_eq!(conn.backend(), blockyard::db::Backend::Mysql);
    assert_eq!(text(&mut *conn, "SELECT DATABASE() AS value"), user.name);

    // The clients work as written: no -u, no database argument.
    let run = env.ok(&[
        "exec",
        "warehouse",
        "--",
        "mysql",
        "-N",
        "-e",
        "select current_user(), database()",
    ]);
    let line = run.stdout.trim();
    assert!(line.starts_with(&format!("{}@", user.name)), "{line}");
    assert!(line.ends_with(&user.name), "{line}");
    let dump = env.ok(&[
        "exec",
        "warehouse",
        "--",
        "mysqldump",
        "--no-data",
        &user.name,
    ]);
    assert!(dump.stdout.contains("-- Dump completed"), "{}", dump.stdout);

    update_password(&env, "warehouse", "wrong");
    env.run(&["block", "test", "warehouse"])
        .fails_with("AUTHENTICATION_FAILED");
}

/// The database side on MariaDB: create (database, user, grants, block), a read-only
/// user, rotation, listing, drop; MySQL has no templates or extensions.
/// A rotated password logs in; the old one, put back in the block, no longer does.
fn rotation_replaces_the_password(env: &TestEnv, admin: &[&str]) {
    let before = env.json(&["block", "inspect", "wh", "--show-secrets"]);
    let old = before["data"]["connection_info"]["password"]
        .as_str()
        .unwrap()
        .to_owned();
    env.ok(&[&["block", "rotate-password", "wh"], admin].concat());
    env.ok(&["block", "test", "wh"]);
    update_password(env, "wh", &old);
    env.run(&["block", "test", "wh"])
        .fails_with("AUTHENTICATION_FAILED");
}

#[test]
fn mariadb_database_side() {
    let env = TestEnv::new(Backend::Sqlite);
    let (db, owner, reader) = (unique("bt_mydb"), unique("bt_myown"), unique("bt_myread"));
    let cleanup = MysqlUser { name: db.clone() };
    let _users = [
        MysqlUser {
            name: owner.clone(),
        },
        MysqlUser {
            name: reader.clone(),
        },
    ];
    env.run_stdin(
        &[
            "block",
            "create",
            "my-admin",
            "--no-password",
            "--url",
            "mysql+pymysql://root@127.0.0.1:3306/mysql",
        ],
        "",
    )
    .success();
    let admin = ["--admin", "my-admin"];
    env.run(
        &[
            &[
                "db",
                "create",
                &db,
                "--owner",
                &owner,
                "--block",
                "wh",
                "--template",
                "x",
            ],
            &admin[..],
        ]
        .concat(),
    )
    .fails_with("TEMPLATE_NOT_FOUND");
    env.ok(&[
        &["db", "create", &db, "--owner", &owner, "--block", "wh"],
        &admin[..],
    ]
    .concat());
    env.ok(&["block", "test", "wh"]);
    env.ok(&[
        "exec",
        "wh",
        "--",
        "mysql",
        "-e",
        "CREATE TABLE t (x int); INSERT INTO t VALUES (7)",
    ]);
    env.ok(&[
        &[
            "db",
            "user",
            "create",
            &reader,
            "--grant",
            "read",
            "--on-database",
            &db,
            "--block",
            "wh-read",
        ],
        &admin[..],
    ]
    .concat());
    let read = env.ok(&[
        "exec",
        "wh-read",
        "--",
        "mysql",
        "-N",
        "-e",
        "SELECT x FROM t",
    ]);
    assert_eq!(read.stdout.trim(), "7");
    let write = env.run(&[
        "exec",
        "wh-read",
        "--",
        "mysql",
        "-e",
        "INSERT INTO t VALUES (8)",
    ]);
    assert_ne!(write.code, 0, "the read-only user could write");

    rotation_replaces_the_password(&env, &admin);

    let listing = env.json(&[&["db", "ls"], &admin[..]].concat());
    let entry = listing
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == db.as_str())
        .expect("listed");
    assert_eq!(entry["blocks"], serde_json::json!(["wh", "wh-read"]));
    env.ok(&[
        &["db", "drop", &db, "--yes", "--drop-role", &owner],
        &admin[..],
    ]
    .concat());
    let mut root = MysqlConnection::establish(MYSQL_ADMIN).unwrap();
    let left = text(
        &mut root,
        &format!(
            "SELECT CAST(count(*) AS CHAR) AS value FROM information_schema.schemata WHERE schema_name = '{db}'"
        ),
    );
    assert_eq!(left, "0");
    drop(cleanup);
}
