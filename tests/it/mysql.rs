//! MySQL/MariaDB blocks against a real MariaDB server: pools by name, `block test`, and
//! `exec` with the `mysql` client. Built with `--features mysql` (what `scripts/test` runs).

use diesel::MysqlConnection;
use diesel::prelude::*;

use crate::connect::{AWKWARD, literal, text, unique, update_password};
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
        format!("mysql://{0}:********@127.0.0.1:3306/{0}", user.name)
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
