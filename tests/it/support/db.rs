//! Database helpers: unique names, SQL literals, one-value queries on a diesel
//! connection or through `psql` on the test PostgreSQL server, and awkward passwords.

use diesel::prelude::*;
use diesel::sql_types::Text;

/// Every character that breaks naive URL building, plus quotes and non-ASCII.
pub const AWKWARD: &str = "p@ss:w/rd%#?+ x&y=z 'q' \"dq\" ü пароль";

pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

#[derive(QueryableByName)]
pub struct One {
    #[diesel(sql_type = Text)]
    value: String,
}

pub fn text<C: diesel::Connection>(conn: &mut C, sql: &str) -> String
where
    C::Backend: diesel::backend::Backend,
    One: diesel::deserialize::QueryableByName<C::Backend>,
    diesel::query_builder::SqlQuery: diesel::query_dsl::LoadQuery<'static, C, One>,
{
    diesel::sql_query(sql)
        .load::<One>(conn)
        .unwrap()
        .remove(0)
        .value
}

/// One row of one column from the test server, as text.
pub fn pg(sql: &str) -> String {
    let out = std::process::Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-Atc",
            sql,
        ])
        .output()
        .expect("psql must be installed (see scripts/test)");
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

pub fn role_exists(role: &str) -> bool {
    pg(&format!(
        "SELECT count(*) FROM pg_roles WHERE rolname = '{role}'"
    )) == "1"
}

pub fn database_exists(db: &str) -> bool {
    pg(&format!(
        "SELECT count(*) FROM pg_database WHERE datname = '{db}'"
    )) == "1"
}
