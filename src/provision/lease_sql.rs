//! The SQL of leased users, per dialect: a login role *in* a group role that holds the
//! privileges, with no grants of its own, refused by the database itself after its
//! expiry (`VALID UNTIL`); and the steps that take one apart whatever it did meanwhile
//! (no more logins, its sessions ended, what it owns handed to the group role, gone).
//! Quoted by each driver's rules, as the rest of the database side.

use super::names::RoleName;
use super::sql::{Dialect, ident, literal, password_value, role};
use crate::error::{Error, Result};

/// The dialects leases are made in so far.
fn supported(dialect: Dialect) -> Result<()> {
    match dialect {
        Dialect::Postgres | Dialect::Cockroach => Ok(()),
        Dialect::Mysql => Err(Error::InvalidInput(
            "leases are made on PostgreSQL and CockroachDB; MySQL and MariaDB are not \
             supported yet"
                .into(),
        )),
    }
}

/// A time as the database reads `VALID UNTIL` (UTC, RFC 3339).
fn until(dialect: Dialect, at_millis: i64) -> Result<String> {
    literal(dialect, &crate::time::rfc3339(at_millis))
}

/// Creates a leased user: it logs in with `password` until `valid_until` (Unix ms) and
/// has its group role's privileges, nothing of its own.
pub fn create_user(
    dialect: Dialect,
    name: &RoleName,
    password: &str,
    group: &RoleName,
    valid_until: i64,
) -> Result<Vec<String>> {
    supported(dialect)?;
    let (who, grp) = (role(dialect, name)?, ident(dialect, group.as_str())?);
    let (pw, until) = (
        password_value(dialect, password)?,
        until(dialect, valid_until)?,
    );
    Ok(match dialect {
        Dialect::Cockroach => vec![
            format!("CREATE USER {who} WITH LOGIN PASSWORD {pw} VALID UNTIL {until}"),
            format!("GRANT {grp} TO {who}"),
        ],
        _ => vec![format!(
            "CREATE ROLE {who} LOGIN PASSWORD {pw} IN ROLE {grp} VALID UNTIL {until}"
        )],
    })
}

/// Moves a leased user's expiry (a renewal).
pub fn valid_until(dialect: Dialect, name: &RoleName, valid_until: i64) -> Result<String> {
    supported(dialect)?;
    let (who, until) = (role(dialect, name)?, until(dialect, valid_until)?);
    Ok(format!("ALTER ROLE {who} WITH VALID UNTIL {until}"))
}

/// No new logins (the first step of a revocation).
pub fn no_login(dialect: Dialect, name: &RoleName) -> Result<String> {
    supported(dialect)?;
    Ok(format!("ALTER ROLE {} WITH NOLOGIN", role(dialect, name)?))
}

/// Ends every session of the user.
pub fn end_sessions(dialect: Dialect, name: &RoleName) -> Result<String> {
    supported(dialect)?;
    let who = literal(dialect, name.as_str())?;
    Ok(match dialect {
        Dialect::Cockroach => format!(
            "CANCEL SESSIONS (SELECT session_id FROM [SHOW CLUSTER SESSIONS] \
             WHERE user_name = {who})"
        ),
        _ => format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = {who} \
             AND pid <> pg_backend_pid()"
        ),
    })
}

/// Hands what the user owns to the group role and drops its remaining privileges, in
/// the database the session is connected to.
pub fn release_owned(dialect: Dialect, name: &RoleName, group: &RoleName) -> Result<Vec<String>> {
    supported(dialect)?;
    let (who, grp) = (role(dialect, name)?, ident(dialect, group.as_str())?);
    Ok(vec![
        format!("REASSIGN OWNED BY {who} TO {grp}"),
        format!("DROP OWNED BY {who}"),
    ])
}

/// `SELECT ... AS v`: the members of `group` whose names start with `prefix` (the
/// leased users the server holds, whether the store knows them or not; the caller
/// also checks each name's form).
pub fn managed_roles(dialect: Dialect, prefix: &str, group: &RoleName) -> Result<String> {
    supported(dialect)?;
    let escaped = prefix
        .replace('\\', "\\\\")
        .replace('_', "\\_")
        .replace('%', "\\%");
    let pattern = literal(dialect, &format!("{escaped}%"))?;
    let group = literal(dialect, group.as_str())?;
    Ok(format!(
        "SELECT r.rolname AS v FROM pg_roles r \
         JOIN pg_auth_members m ON m.member = r.oid \
         JOIN pg_roles g ON g.oid = m.roleid \
         WHERE g.rolname = {group} AND r.rolname LIKE {pattern} ORDER BY 1"
    ))
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
            Dialect::Postgres,
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
        let made = create_user(Dialect::Cockroach, &name, "pw", &role_name("grp"), 0).unwrap();
        assert!(made[0].starts_with("CREATE USER \"bylease_x\" WITH LOGIN PASSWORD 'SCRAM"));
        assert_eq!(made[1], "GRANT \"grp\" TO \"bylease_x\"");
        assert_eq!(
            end_sessions(Dialect::Cockroach, &name).unwrap(),
            "CANCEL SESSIONS (SELECT session_id FROM [SHOW CLUSTER SESSIONS] WHERE \
             user_name = 'bylease_x')"
        );
    }

    #[test]
    fn revocation_steps_quote_names() {
        let name = role_name("bylease_x");
        assert_eq!(
            no_login(Dialect::Postgres, &name).unwrap(),
            "ALTER ROLE \"bylease_x\" WITH NOLOGIN"
        );
        assert_eq!(
            release_owned(Dialect::Postgres, &name, &role_name("g")).unwrap(),
            [
                "REASSIGN OWNED BY \"bylease_x\" TO \"g\"",
                "DROP OWNED BY \"bylease_x\""
            ]
        );
        assert_eq!(
            managed_roles(Dialect::Postgres, "by_lease", &role_name("g")).unwrap(),
            "SELECT r.rolname AS v FROM pg_roles r JOIN pg_auth_members m ON m.member = r.oid \
             JOIN pg_roles g ON g.oid = m.roleid WHERE g.rolname = 'g' AND r.rolname LIKE \
             E'by\\\\_lease%' ORDER BY 1"
        );
        assert!(no_login(Dialect::Mysql, &name).is_err());
    }
}
