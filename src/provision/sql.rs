//! The SQL of the database side, per dialect (PostgreSQL, CockroachDB, MySQL/MariaDB):
//! statements built from names and passwords quoted by each driver's own rules
//! (libpq's `PQescapeIdentifier`/`PQescapeLiteral`, MySQL's `mysql_real_escape_string`),
//! never formatted in raw. Pure text, so every statement is checked exactly by unit
//! tests (the only check CockroachDB's get here: no CockroachDB server can be installed).

use super::names::{DatabaseName, RoleName};
use crate::connect::Driver;
use crate::db::Backend;
use crate::error::{Error, ProvisionCode, Result};

/// Which SQL an admin block speaks: from its driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    Postgres,
    Cockroach,
    Mysql,
}

impl Dialect {
    /// The dialect of a driver (`cockroachdb+psycopg2` is CockroachDB, any other
    /// PostgreSQL driver PostgreSQL); SQLite has no roles or databases to create.
    pub fn of(driver: &Driver) -> Result<Dialect> {
        match driver.backend() {
            Backend::Postgres if driver.to_string().starts_with("cockroachdb") => {
                Ok(Dialect::Cockroach)
            }
            Backend::Postgres => Ok(Dialect::Postgres),
            Backend::Mysql => Ok(Dialect::Mysql),
            Backend::Sqlite => Err(Error::InvalidInput(format!(
                "driver {driver} is SQLite, which has no roles or databases to create; an \
                 admin block is a PostgreSQL, CockroachDB or MySQL connection"
            ))),
        }
    }

    fn postgres_like(self) -> bool {
        matches!(self, Dialect::Postgres | Dialect::Cockroach)
    }
}

fn no_nul(text: &str) -> Result<&str> {
    match text.contains('\0') {
        true => Err(Error::InvalidInput(
            "a NUL character cannot be sent in SQL".into(),
        )),
        false => Ok(text),
    }
}

/// An identifier quoted as the driver quotes it: `"name"` (PostgreSQL, CockroachDB) or
/// `` `name` `` (MySQL), with the quote character doubled inside.
pub fn ident(dialect: Dialect, name: &str) -> Result<String> {
    let q = match dialect {
        Dialect::Mysql => '`',
        _ => '"',
    };
    let doubled = no_nul(name)?.replace(q, &format!("{q}{q}"));
    Ok(format!("{q}{doubled}{q}"))
}

/// A string literal quoted as the driver quotes it. PostgreSQL (libpq's
/// `PQescapeLiteral`): `'...'` with `'` doubled, and `E'...'` with `\` doubled when the
/// text holds a backslash. MySQL (`mysql_real_escape_string`): `'...'` with `\`, `'`,
/// `"`, NUL, newline, carriage return and Ctrl-Z escaped by a backslash.
pub fn literal(dialect: Dialect, text: &str) -> Result<String> {
    let text = no_nul(text)?;
    Ok(match dialect {
        Dialect::Mysql => {
            let mut out = String::with_capacity(text.len() + 2);
            out.push('\'');
            for c in text.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\'' => out.push_str("\\'"),
                    '"' => out.push_str("\\\""),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\u{1a}' => out.push_str("\\Z"),
                    c => out.push(c),
                }
            }
            out.push('\'');
            out
        }
        _ => {
            let body = text.replace('\'', "''");
            match text.contains('\\') {
                true => format!("E'{}'", body.replace('\\', "\\\\")),
                false => format!("'{body}'"),
            }
        }
    })
}

/// A MySQL account: `'name'@'%'` (from any host).
fn account(name: &RoleName) -> Result<String> {
    Ok(format!("{}@'%'", literal(Dialect::Mysql, name.as_str())?))
}

/// Whoever the statements are about, quoted for the dialect.
pub(super) fn role(dialect: Dialect, name: &RoleName) -> Result<String> {
    match dialect {
        Dialect::Mysql => account(name),
        _ => ident(dialect, name.as_str()),
    }
}

/// A password as a role statement carries it: on PostgreSQL and CockroachDB a
/// SCRAM-SHA-256 verifier computed here (as `psql \password` does), so the password
/// itself never reaches the server, or its log when a statement fails; MySQL and
/// MariaDB take it as a literal. A password with non-ASCII characters (which SCRAM
/// would first normalise with SASLprep) goes as a literal too; generated ones never do.
pub(super) fn password_value(dialect: Dialect, password: &str) -> Result<String> {
    match dialect {
        Dialect::Postgres | Dialect::Cockroach if password.is_ascii() => {
            literal(dialect, &scram_verifier(password, &random_salt()))
        }
        _ => literal(dialect, password),
    }
}

/// PostgreSQL's stored form of a SCRAM-SHA-256 password (RFC 5802, RFC 7677):
/// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`.
pub fn scram_verifier(password: &str, salt: &[u8]) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use hmac::{Hmac, Mac};
    use sha2::{Digest, Sha256};
    const ITERATIONS: u32 = 4096;
    let mut salted = zeroize::Zeroizing::new([0u8; 32]);
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, ITERATIONS, salted.as_mut());
    let key = |label: &[u8]| {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(salted.as_ref())
            .expect("HMAC takes any key length");
        mac.update(label);
        mac.finalize().into_bytes()
    };
    let stored_key = Sha256::digest(key(b"Client Key"));
    format!(
        "SCRAM-SHA-256${ITERATIONS}:{}${}:{}",
        STANDARD.encode(salt),
        STANDARD.encode(stored_key),
        STANDARD.encode(key(b"Server Key"))
    )
}

fn random_salt() -> [u8; 16] {
    use chacha20poly1305::aead::{OsRng, rand_core::RngCore};
    let mut salt = [0u8; 16];
    OsRng.fill_bytes(&mut salt);
    salt
}

/// Creates a login role with a password.
pub fn create_role(dialect: Dialect, name: &RoleName, password: &str) -> Result<String> {
    let (who, pw) = (role(dialect, name)?, password_value(dialect, password)?);
    Ok(match dialect {
        Dialect::Postgres => format!("CREATE ROLE {who} LOGIN PASSWORD {pw}"),
        Dialect::Cockroach => format!("CREATE USER {who} WITH LOGIN PASSWORD {pw}"),
        Dialect::Mysql => format!("CREATE USER {who} IDENTIFIED BY {pw}"),
    })
}

/// Sets a role's password.
pub fn set_password(dialect: Dialect, name: &RoleName, password: &str) -> Result<String> {
    let (who, pw) = (role(dialect, name)?, password_value(dialect, password)?);
    Ok(match dialect {
        Dialect::Postgres => format!("ALTER ROLE {who} WITH PASSWORD {pw}"),
        Dialect::Cockroach => format!("ALTER USER {who} WITH PASSWORD {pw}"),
        Dialect::Mysql => format!("ALTER USER {who} IDENTIFIED BY {pw}"),
    })
}

/// Drops a role if it exists.
pub fn drop_role(dialect: Dialect, name: &RoleName) -> Result<String> {
    let who = role(dialect, name)?;
    Ok(match dialect {
        Dialect::Postgres => format!("DROP ROLE IF EXISTS {who}"),
        Dialect::Cockroach | Dialect::Mysql => format!("DROP USER IF EXISTS {who}"),
    })
}

/// Creates a database owned by (or, in MySQL, fully granted to) `owner`, copied from
/// `template` where the dialect has templates.
pub fn create_database(
    dialect: Dialect,
    name: &DatabaseName,
    owner: &RoleName,
    template: Option<&str>,
) -> Result<Vec<String>> {
    let db = ident(dialect, name.as_str())?;
    let who = role(dialect, owner)?;
    Ok(match dialect {
        Dialect::Postgres => {
            let mut sql = format!("CREATE DATABASE {db} OWNER {who}");
            if let Some(t) = template {
                sql.push_str(&format!(" TEMPLATE {}", ident(dialect, t)?));
            }
            vec![sql]
        }
        Dialect::Cockroach => {
            if template.is_some_and(|t| t != "template0") {
                return Err(Error::provision(
                    ProvisionCode::TemplateNotFound,
                    "CockroachDB has no template databases (only template0); create the \
                     database without --template and apply a schema with `db apply`",
                ));
            }
            vec![
                format!("CREATE DATABASE {db}"),
                format!("ALTER DATABASE {db} OWNER TO {who}"),
                format!("GRANT ALL ON DATABASE {db} TO {who} WITH GRANT OPTION"),
            ]
        }
        Dialect::Mysql => {
            if template.is_some() {
                return Err(Error::provision(
                    ProvisionCode::TemplateNotFound,
                    "MySQL has no template databases; create the database without \
                     --template and apply a schema with `db apply`",
                ));
            }
            vec![
                format!("CREATE DATABASE {db}"),
                format!("GRANT ALL PRIVILEGES ON {db}.* TO {who}"),
            ]
        }
    })
}

/// Drops a database if it exists (CockroachDB drops its tables with it).
pub fn drop_database(dialect: Dialect, name: &DatabaseName) -> Result<String> {
    let db = ident(dialect, name.as_str())?;
    Ok(match dialect {
        Dialect::Cockroach => format!("DROP DATABASE IF EXISTS {db} CASCADE"),
        _ => format!("DROP DATABASE IF EXISTS {db}"),
    })
}

/// Enables an extension in the current database (PostgreSQL and CockroachDB).
pub fn create_extension(dialect: Dialect, extension: &str) -> Result<String> {
    match dialect.postgres_like() {
        true => Ok(format!(
            "CREATE EXTENSION IF NOT EXISTS {}",
            ident(dialect, extension)?
        )),
        false => Err(Error::InvalidInput(
            "MySQL has no extensions; --extension is for PostgreSQL".into(),
        )),
    }
}

/// What a second role may do in a database.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Grant {
    /// Read every table, now and later.
    Read,
    /// Read and change rows (no DDL).
    Write,
    /// Everything, as the owner.
    All,
}

impl Grant {
    /// `read`, `write` or `all`.
    pub fn parse(text: &str) -> Result<Grant> {
        match text {
            "read" => Ok(Grant::Read),
            "write" => Ok(Grant::Write),
            "all" => Ok(Grant::All),
            _ => Err(Error::InvalidInput(format!(
                "grant {text:?} is not read, write or all"
            ))),
        }
    }

    fn table_privileges(self) -> &'static str {
        match self {
            Grant::Read => "SELECT",
            Grant::Write => "SELECT, INSERT, UPDATE, DELETE",
            Grant::All => "ALL PRIVILEGES",
        }
    }
}

/// Grants `grant` on `database` to `grantee`. For PostgreSQL the statements run inside
/// that database; `owner` is whose future tables the default privileges cover.
pub fn grant(
    dialect: Dialect,
    grant: Grant,
    database: &DatabaseName,
    grantee: &RoleName,
    owner: &str,
) -> Result<Vec<String>> {
    let db = ident(dialect, database.as_str())?;
    let who = role(dialect, grantee)?;
    let privileges = grant.table_privileges();
    Ok(match dialect {
        Dialect::Mysql => vec![format!("GRANT {privileges} ON {db}.* TO {who}")],
        Dialect::Postgres => {
            let owner = ident(dialect, owner)?;
            let mut sql = vec![
                format!("GRANT CONNECT ON DATABASE {db} TO {who}"),
                format!("GRANT USAGE ON SCHEMA public TO {who}"),
                format!("GRANT {privileges} ON ALL TABLES IN SCHEMA public TO {who}"),
                format!(
                    "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public \
                     GRANT {privileges} ON TABLES TO {who}"
                ),
            ];
            if grant != Grant::Read {
                sql.push(format!(
                    "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {who}"
                ));
                sql.push(format!(
                    "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public \
                     GRANT USAGE, SELECT ON SEQUENCES TO {who}"
                ));
            }
            if grant == Grant::All {
                sql.push(format!("GRANT ALL PRIVILEGES ON DATABASE {db} TO {who}"));
            }
            sql
        }
        Dialect::Cockroach => vec![
            format!("GRANT CONNECT ON DATABASE {db} TO {who}"),
            format!("GRANT {privileges} ON TABLE {db}.public.* TO {who}"),
            format!(
                "ALTER DEFAULT PRIVILEGES FOR ALL ROLES IN SCHEMA public \
                 GRANT {privileges} ON TABLES TO {who}"
            ),
        ],
    })
}

/// `SELECT ... AS v`: whether a database exists.
pub fn database_exists(dialect: Dialect, name: &str) -> Result<String> {
    let name = literal(dialect, name)?;
    Ok(match dialect {
        Dialect::Mysql => format!(
            "SELECT EXISTS (SELECT 1 FROM information_schema.schemata WHERE schema_name = {name}) AS v"
        ),
        _ => format!("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = {name}) AS v"),
    })
}

/// `SELECT ... AS v`: whether a role exists.
pub fn role_exists(dialect: Dialect, name: &RoleName) -> Result<String> {
    let name = literal(dialect, name.as_str())?;
    Ok(match dialect {
        Dialect::Mysql => {
            format!("SELECT EXISTS (SELECT 1 FROM mysql.user WHERE User = {name}) AS v")
        }
        _ => format!("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {name}) AS v"),
    })
}

/// `SELECT ... AS v`: how many other sessions are connected to a database (PostgreSQL
/// cannot copy a template while anyone is).
pub fn sessions_on(dialect: Dialect, name: &str) -> Result<String> {
    Ok(format!(
        "SELECT count(*) AS v FROM pg_stat_activity WHERE datname = {} AND pid <> pg_backend_pid()",
        literal(dialect, name)?
    ))
}

/// `SELECT ... AS v`: whether the connected role may create roles and databases.
pub fn may_provision(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Postgres => {
            "SELECT (rolsuper OR (rolcreatedb AND rolcreaterole)) AS v FROM pg_roles \
             WHERE rolname = current_user"
        }
        Dialect::Cockroach => {
            "SELECT (pg_has_role(current_user, 'admin', 'MEMBER') \
             OR (rolcreatedb AND rolcreaterole)) AS v FROM pg_roles WHERE rolname = current_user"
        }
        Dialect::Mysql => {
            "SELECT (SELECT count(*) FROM information_schema.user_privileges \
             WHERE grantee = CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''', \
             SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''') \
             AND privilege_type IN ('CREATE', 'CREATE USER')) = 2 AS v"
        }
    }
}

/// `SELECT ... AS v`: the owner of a database (PostgreSQL, CockroachDB).
pub fn database_owner(dialect: Dialect, name: &DatabaseName) -> Result<String> {
    Ok(format!(
        "SELECT pg_get_userbyid(datdba) AS v FROM pg_database WHERE datname = {}",
        literal(dialect, name.as_str())?
    ))
}

/// Databases with owner and size in bytes (`name`, `owner`, `size`), the server's own
/// left out.
pub fn list_databases(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Postgres => {
            // By oid: a database dropped while this runs is NULL to has_database_privilege
            // rather than an error (by name it is "does not exist").
            "SELECT d.datname AS name, pg_get_userbyid(d.datdba) AS owner, \
             CASE WHEN has_database_privilege(d.oid, 'CONNECT') \
             THEN pg_database_size(d.oid) END AS size \
             FROM pg_database d WHERE NOT d.datistemplate ORDER BY d.datname"
        }
        Dialect::Cockroach => {
            "SELECT datname AS name, pg_get_userbyid(datdba) AS owner, \
             CAST(NULL AS INT8) AS size FROM pg_database ORDER BY datname"
        }
        Dialect::Mysql => {
            "SELECT s.schema_name AS name, CAST(NULL AS CHAR) AS owner, \
             CAST(COALESCE(SUM(t.data_length + t.index_length), 0) AS SIGNED) AS size \
             FROM information_schema.schemata s \
             LEFT JOIN information_schema.tables t ON t.table_schema = s.schema_name \
             WHERE s.schema_name NOT IN ('mysql', 'information_schema', \
             'performance_schema', 'sys') \
             GROUP BY s.schema_name ORDER BY s.schema_name"
        }
    }
}

/// A PostgreSQL statement run inside a `DO` block that re-raises any error with its
/// SQLSTATE first (`sqlstate 42710: ...`), so failures are told apart by code, never
/// by their English text. (`CREATE DATABASE` and `DROP DATABASE` cannot run there.)
pub fn with_sqlstate(statement: &str) -> Result<String> {
    Ok(format!(
        "DO $blockyard$ BEGIN EXECUTE {}; EXCEPTION WHEN OTHERS THEN \
         RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = 'sqlstate ' || SQLSTATE || ': ' || SQLERRM; \
         END $blockyard$",
        literal(Dialect::Postgres, statement)?
    ))
}

/// The code for a server's SQLSTATE (PostgreSQL's and CockroachDB's; MySQL's are
/// mapped from the same classes).
pub fn code_for_sqlstate(sqlstate: &str) -> Option<ProvisionCode> {
    Some(match sqlstate {
        "42P04" => ProvisionCode::DatabaseAlreadyExists,
        "42710" => ProvisionCode::RoleAlreadyExists,
        "3D000" => ProvisionCode::DatabaseNotFound,
        "42501" => ProvisionCode::InsufficientPermissions,
        "53100" => ProvisionCode::DiskSpaceFull,
        "55006" => ProvisionCode::TemplateNotFound,
        "42704" => ProvisionCode::NotFound,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role_name(s: &str) -> RoleName {
        RoleName::parse(s).unwrap()
    }

    fn db(s: &str) -> DatabaseName {
        DatabaseName::parse(s).unwrap()
    }

    #[test]
    fn quoting_follows_each_driver() {
        assert_eq!(ident(Dialect::Postgres, "a\"b").unwrap(), "\"a\"\"b\"");
        assert_eq!(ident(Dialect::Mysql, "a`b").unwrap(), "`a``b`");
        assert_eq!(literal(Dialect::Postgres, "it's").unwrap(), "'it''s'");
        assert_eq!(literal(Dialect::Postgres, "a\\'b").unwrap(), "E'a\\\\''b'");
        assert_eq!(
            literal(Dialect::Mysql, "a'b\\c\n").unwrap(),
            "'a\\'b\\\\c\\n'"
        );
        assert!(literal(Dialect::Postgres, "a\0b").is_err());
        assert!(ident(Dialect::Mysql, "a\0b").is_err());
    }

    #[test]
    fn scram_verifier_matches_an_independent_computation() {
        // Python's hashlib.pbkdf2_hmac and hmac on RFC 7677's password and salt.
        use base64::Engine;
        let salt = base64::engine::general_purpose::STANDARD
            .decode("W22ZaJ0SNY7soEsUEjb6gQ==")
            .unwrap();
        assert_eq!(
            scram_verifier("pencil", &salt),
            "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
        );
    }

    #[test]
    fn cockroachdb_statements_exactly() {
        let c = Dialect::Cockroach;
        let created = create_role(c, &role_name("databot"), "p'w").unwrap();
        assert!(
            created.starts_with("CREATE USER \"databot\" WITH LOGIN PASSWORD 'SCRAM-SHA-256$4096:"),
            "{created}"
        );
        assert!(!created.contains("p''w"), "the password itself was sent");
        assert_eq!(
            create_database(c, &db("sage"), &role_name("databot"), None).unwrap(),
            vec![
                "CREATE DATABASE \"sage\"",
                "ALTER DATABASE \"sage\" OWNER TO \"databot\"",
                "GRANT ALL ON DATABASE \"sage\" TO \"databot\" WITH GRANT OPTION",
            ]
        );
        assert_eq!(
            create_database(c, &db("sage"), &role_name("databot"), Some("app"))
                .unwrap_err()
                .code(),
            "TEMPLATE_NOT_FOUND"
        );
        let altered = set_password(c, &role_name("databot"), "x").unwrap();
        assert!(
            altered.starts_with("ALTER USER \"databot\" WITH PASSWORD 'SCRAM-SHA-256$"),
            "{altered}"
        );
        assert_eq!(
            drop_database(c, &db("sage")).unwrap(),
            "DROP DATABASE IF EXISTS \"sage\" CASCADE"
        );
        assert_eq!(
            drop_role(c, &role_name("databot")).unwrap(),
            "DROP USER IF EXISTS \"databot\""
        );
        assert_eq!(
            grant(
                c,
                Grant::Read,
                &db("sage"),
                &role_name("reporter"),
                "databot"
            )
            .unwrap(),
            vec![
                "GRANT CONNECT ON DATABASE \"sage\" TO \"reporter\"",
                "GRANT SELECT ON TABLE \"sage\".public.* TO \"reporter\"",
                "ALTER DEFAULT PRIVILEGES FOR ALL ROLES IN SCHEMA public GRANT SELECT ON TABLES TO \"reporter\"",
            ]
        );
    }

    #[test]
    fn postgres_and_mysql_statements() {
        let (p, m) = (Dialect::Postgres, Dialect::Mysql);
        assert_eq!(
            create_database(p, &db("sage"), &role_name("databot"), Some("app_template")).unwrap(),
            vec!["CREATE DATABASE \"sage\" OWNER \"databot\" TEMPLATE \"app_template\""]
        );
        assert_eq!(
            create_role(m, &role_name("databot"), "pw").unwrap(),
            "CREATE USER 'databot'@'%' IDENTIFIED BY 'pw'"
        );
        assert_eq!(
            create_database(m, &db("sage"), &role_name("databot"), None).unwrap(),
            vec![
                "CREATE DATABASE `sage`",
                "GRANT ALL PRIVILEGES ON `sage`.* TO 'databot'@'%'"
            ]
        );
        assert_eq!(
            grant(m, Grant::Write, &db("sage"), &role_name("etl"), "databot").unwrap(),
            vec!["GRANT SELECT, INSERT, UPDATE, DELETE ON `sage`.* TO 'etl'@'%'"]
        );
        assert!(create_extension(m, "pgcrypto").is_err());
        assert_eq!(
            create_extension(p, "uuid-ossp").unwrap(),
            "CREATE EXTENSION IF NOT EXISTS \"uuid-ossp\""
        );
    }

    #[test]
    fn sqlstates_map_to_the_seed_codes() {
        let code = |s| code_for_sqlstate(s).map(|c| c.as_str());
        assert_eq!(code("42P04"), Some("DATABASE_ALREADY_EXISTS"));
        assert_eq!(code("42501"), Some("INSUFFICIENT_PERMISSIONS"));
        assert_eq!(code("53100"), Some("DISK_SPACE_FULL"));
        assert_eq!(code("55006"), Some("TEMPLATE_NOT_FOUND"));
        assert_eq!(code("XX000"), None);
    }
}
