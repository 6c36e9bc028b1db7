//! The SQL of leased users, per server: a login role *in* a group role that holds the
//! privileges, with no grants of its own, refused by the database itself after its
//! expiry where the server can (`VALID UNTIL` on PostgreSQL and CockroachDB; MySQL and
//! MariaDB have no such clause, so the reconciler revokes them); and the steps that
//! take one apart whatever it did meanwhile (no more logins, its sessions ended, what it
//! owns handed to the group role, gone). Quoted by each driver's rules, as the rest of
//! the database side.

use super::names::RoleName;
use super::sql::{Dialect, ident, literal, password_value, role};
use crate::error::{Error, Result};

/// The server leases are made on: MySQL and MariaDB speak one dialect but grant and
/// list roles differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Postgres,
    Cockroach,
    MariaDb,
    MySql,
}

impl Engine {
    /// The engine of a dialect; for MySQL, whether the server's version says MariaDB.
    pub fn of(dialect: Dialect, version: Option<&str>) -> Engine {
        match dialect {
            Dialect::Postgres => Engine::Postgres,
            Dialect::Cockroach => Engine::Cockroach,
            Dialect::Mysql if version.is_some_and(|v| v.contains("MariaDB")) => Engine::MariaDb,
            Dialect::Mysql => Engine::MySql,
        }
    }

    pub fn dialect(self) -> Dialect {
        match self {
            Engine::Postgres => Dialect::Postgres,
            Engine::Cockroach => Dialect::Cockroach,
            Engine::MariaDb | Engine::MySql => Dialect::Mysql,
        }
    }

    /// Whether the server itself refuses a user after its expiry.
    pub fn enforces_expiry(self) -> bool {
        matches!(self, Engine::Postgres | Engine::Cockroach)
    }
}

/// The group role as a grant names it: an identifier, or on MySQL an account.
fn group_role(engine: Engine, group: &RoleName) -> Result<String> {
    match engine {
        Engine::MySql => role(Dialect::Mysql, group),
        _ => ident(engine.dialect(), group.as_str()),
    }
}

/// A time as the database reads `VALID UNTIL` (UTC, RFC 3339).
fn until(dialect: Dialect, at_millis: i64) -> Result<String> {
    literal(dialect, &crate::time::rfc3339(at_millis))
}

/// Creates a leased user: it logs in with `password` (until `valid_until`, Unix ms,
/// where the server enforces it) and has its group role's privileges, nothing of its
/// own.
pub fn create_user(
    engine: Engine,
    name: &RoleName,
    password: &str,
    group: &RoleName,
    valid_until: i64,
) -> Result<Vec<String>> {
    let dialect = engine.dialect();
    let (who, grp) = (role(dialect, name)?, group_role(engine, group)?);
    let (pw, until) = (
        password_value(dialect, password)?,
        until(dialect, valid_until)?,
    );
    Ok(match engine {
        Engine::Postgres => vec![format!(
            "CREATE ROLE {who} LOGIN PASSWORD {pw} IN ROLE {grp} VALID UNTIL {until}"
        )],
        Engine::Cockroach => vec![
            format!("CREATE USER {who} WITH LOGIN PASSWORD {pw} VALID UNTIL {until}"),
            format!("GRANT {grp} TO {who}"),
        ],
        Engine::MariaDb => vec![
            format!("CREATE USER {who} IDENTIFIED BY {pw}"),
            format!("GRANT {grp} TO {who}"),
            format!("SET DEFAULT ROLE {grp} FOR {who}"),
        ],
        Engine::MySql => vec![
            format!("CREATE USER {who} IDENTIFIED BY {pw}"),
            format!("GRANT {grp} TO {who}"),
            format!("SET DEFAULT ROLE {grp} TO {who}"),
        ],
    })
}

/// Moves a leased user's expiry (a renewal), where the server keeps one.
pub fn valid_until(engine: Engine, name: &RoleName, valid_until: i64) -> Result<Option<String>> {
    if !engine.enforces_expiry() {
        return Ok(None);
    }
    let dialect = engine.dialect();
    let (who, until) = (role(dialect, name)?, until(dialect, valid_until)?);
    Ok(Some(format!("ALTER ROLE {who} WITH VALID UNTIL {until}")))
}

/// No new logins (the first step of a revocation).
pub fn no_login(engine: Engine, name: &RoleName) -> Result<String> {
    let who = role(engine.dialect(), name)?;
    Ok(match engine {
        Engine::MariaDb | Engine::MySql => format!("ALTER USER {who} ACCOUNT LOCK"),
        _ => format!("ALTER ROLE {who} WITH NOLOGIN"),
    })
}

/// What ends the user's sessions: one statement (PostgreSQL, CockroachDB), or on MySQL
/// a `SELECT ... AS v` of their ids, each then ended by [`kill`].
pub fn end_sessions(engine: Engine, name: &RoleName) -> Result<String> {
    let who = literal(engine.dialect(), name.as_str())?;
    Ok(match engine {
        Engine::Cockroach => format!(
            "CANCEL SESSIONS (SELECT session_id FROM [SHOW CLUSTER SESSIONS] \
             WHERE user_name = {who})"
        ),
        Engine::Postgres => format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = {who} \
             AND pid <> pg_backend_pid()"
        ),
        Engine::MariaDb | Engine::MySql => format!(
            "SELECT CAST(ID AS CHAR) AS v FROM information_schema.PROCESSLIST WHERE USER = {who}"
        ),
    })
}

/// Ends one MySQL session by its id (from [`end_sessions`]).
pub fn kill(id: &str) -> Result<String> {
    match !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) {
        true => Ok(format!("KILL CONNECTION {id}")),
        false => Err(Error::Internal(format!("not a session id: {id:?}"))),
    }
}

/// Hands what the user owns to the group role and drops its remaining privileges, in
/// the database the session is connected to (MySQL users own nothing: none).
pub fn release_owned(engine: Engine, name: &RoleName, group: &RoleName) -> Result<Vec<String>> {
    if matches!(engine, Engine::MariaDb | Engine::MySql) {
        return Ok(Vec::new());
    }
    let dialect = engine.dialect();
    let (who, grp) = (role(dialect, name)?, ident(dialect, group.as_str())?);
    Ok(vec![
        format!("REASSIGN OWNED BY {who} TO {grp}"),
        format!("DROP OWNED BY {who}"),
    ])
}

/// `SELECT ... AS v`: the members of `group` whose names start with `prefix` (the
/// leased users the server holds, whether the store knows them or not; the caller
/// also checks each name's form).
pub fn managed_roles(engine: Engine, prefix: &str, group: &RoleName) -> Result<String> {
    let dialect = engine.dialect();
    let escaped = prefix
        .replace('\\', "\\\\")
        .replace('_', "\\_")
        .replace('%', "\\%");
    let pattern = literal(dialect, &format!("{escaped}%"))?;
    let group = literal(dialect, group.as_str())?;
    Ok(match engine {
        Engine::MariaDb => format!(
            "SELECT User AS v FROM mysql.roles_mapping WHERE Role = {group} \
             AND User LIKE {pattern} ORDER BY 1"
        ),
        Engine::MySql => format!(
            "SELECT TO_USER AS v FROM mysql.role_edges WHERE FROM_USER = {group} \
             AND TO_USER LIKE {pattern} ORDER BY 1"
        ),
        _ => format!(
            "SELECT r.rolname AS v FROM pg_roles r \
             JOIN pg_auth_members m ON m.member = r.oid \
             JOIN pg_roles g ON g.oid = m.roleid \
             WHERE g.rolname = {group} AND r.rolname LIKE {pattern} ORDER BY 1"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role_name(name: &str) -> RoleName {
        RoleName::parse(name).unwrap()
    }

    #[test]
    fn postgres_makes_a_member_of_the_group_that_expires() {
        let made = create_user(
            Engine::Postgres,
            &role_name("bylease_sage_1a2b"),
            "pw",
            &role_name("sage_rw"),
            0,
        )
        .unwrap();
        assert_eq!(made.len(), 1);
        assert!(
            made[0].starts_with(
                "CREATE ROLE \"bylease_sage_1a2b\" LOGIN PASSWORD 'SCRAM-SHA-256$4096:"
            ),
            "{}",
            made[0]
        );
        assert!(made[0].ends_with(" IN ROLE \"sage_rw\" VALID UNTIL '1970-01-01T00:00:00.000Z'"));
    }

    #[test]
    fn cockroach_grants_the_group_and_cancels_sessions() {
        let name = role_name("bylease_x");
        let made = create_user(Engine::Cockroach, &name, "pw", &role_name("grp"), 0).unwrap();
        assert!(made[0].starts_with("CREATE USER \"bylease_x\" WITH LOGIN PASSWORD 'SCRAM"));
        assert_eq!(made[1], "GRANT \"grp\" TO \"bylease_x\"");
        assert_eq!(
            end_sessions(Engine::Cockroach, &name).unwrap(),
            "CANCEL SESSIONS (SELECT session_id FROM [SHOW CLUSTER SESSIONS] WHERE \
             user_name = 'bylease_x')"
        );
    }

    #[test]
    fn revocation_steps_quote_names() {
        let name = role_name("bylease_x");
        assert_eq!(
            no_login(Engine::Postgres, &name).unwrap(),
            "ALTER ROLE \"bylease_x\" WITH NOLOGIN"
        );
        assert_eq!(
            release_owned(Engine::Postgres, &name, &role_name("g")).unwrap(),
            [
                "REASSIGN OWNED BY \"bylease_x\" TO \"g\"",
                "DROP OWNED BY \"bylease_x\""
            ]
        );
        assert_eq!(
            managed_roles(Engine::Postgres, "by_lease", &role_name("g")).unwrap(),
            "SELECT r.rolname AS v FROM pg_roles r JOIN pg_auth_members m ON m.member = r.oid \
             JOIN pg_roles g ON g.oid = m.roleid WHERE g.rolname = 'g' AND r.rolname LIKE \
             E'by\\\\_lease%' ORDER BY 1"
        );
    }

    #[test]
    fn mariadb_and_mysql_grant_the_group_their_own_way() {
        let (name, grp) = (role_name("bylease_x"), role_name("grp"));
        let maria = create_user(Engine::MariaDb, &name, "pw", &grp, 0).unwrap();
        assert_eq!(
            maria,
            [
                "CREATE USER 'bylease_x'@'%' IDENTIFIED BY 'pw'",
                "GRANT `grp` TO 'bylease_x'@'%'",
                "SET DEFAULT ROLE `grp` FOR 'bylease_x'@'%'"
            ]
        );
        let mysql = create_user(Engine::MySql, &name, "pw", &grp, 0).unwrap();
        assert_eq!(mysql[2], "SET DEFAULT ROLE 'grp'@'%' TO 'bylease_x'@'%'");
        assert_eq!(
            no_login(Engine::MySql, &name).unwrap(),
            "ALTER USER 'bylease_x'@'%' ACCOUNT LOCK"
        );
        assert_eq!(valid_until(Engine::MariaDb, &name, 0).unwrap(), None);
        assert!(
            release_owned(Engine::MariaDb, &name, &grp)
                .unwrap()
                .is_empty()
        );
        assert_eq!(kill("42").unwrap(), "KILL CONNECTION 42");
        assert!(kill("42; DROP").is_err());
        assert!(
            managed_roles(Engine::MariaDb, "bylease_", &grp)
                .unwrap()
                .contains("mysql.roles_mapping")
        );
        assert_eq!(
            Engine::of(Dialect::Mysql, Some("10.11.19-MariaDB-0+deb12u1")),
            Engine::MariaDb
        );
    }
}
