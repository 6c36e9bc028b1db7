//! The database side of blocks: an admin connection (from an admin block) that creates
//! and drops roles and databases, grants, enables extensions, sets passwords, applies
//! schema files and lists databases. Failures carry seed 003's codes, told apart by
//! SQLSTATE or by the server's catalogs, never by the English of a message; messages
//! never hold a password.

pub mod lease_sql;
pub mod names;
pub mod schema;
pub mod sql;

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::sql_types::{BigInt, Bool, Nullable, Text};
use diesel::{QueryableByName, RunQueryDsl};

pub use names::{DatabaseName, RoleName, generate_password};
pub use sql::{Dialect, Grant};

use crate::connect::ConnectionInfo;
use crate::connect::probe::scrub_secret;
use crate::db::AnyConnection;
use crate::error::{Error, ProvisionCode, Result};

/// How long opening an admin connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A database as `db ls` shows it.
#[derive(Clone, Debug, serde::Serialize, QueryableByName)]
pub struct DatabaseInfo {
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub owner: Option<String>,
    /// Bytes; absent where the server does not say (CockroachDB) or the admin may not
    /// connect to the database.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub size: Option<i64>,
}

/// What `db create` (and `db user create`) did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Provisioned {
    pub database: String,
    pub role: String,
    /// The block that now points at it (its data masked).
    pub block: String,
    /// False when everything asked for was already there (a re-run).
    pub changed: bool,
    /// What was done, in order.
    pub steps: Vec<String>,
    /// The block's URL with its password masked (`postgresql://app:********@host/app`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_string: Option<String>,
}

/// `db apply`: how many statements ran, and the block's `requires` its database still
/// lacks after them.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SchemaApplied {
    pub statements: usize,
    pub unmet: Vec<String>,
}

/// `db ls`: a database and the blocks that point at it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DatabaseListing {
    #[serde(flatten)]
    pub database: DatabaseInfo,
    pub blocks: Vec<String>,
}

#[derive(QueryableByName)]
struct Flag {
    #[diesel(sql_type = Bool)]
    v: bool,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    v: i64,
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    v: String,
}

/// A connection made with a block's credentials (an admin block's, to provision; the
/// block's own, to apply a schema). Every message it produces is scrubbed of that
/// password and of any password it was asked to set or hide.
pub struct Session {
    conn: AnyConnection,
    info: ConnectionInfo,
    pub dialect: Dialect,
    secrets: Vec<zeroize::Zeroizing<String>>,
    /// How many of `secrets` are the session's own (the rest were hidden for one task).
    own_secrets: usize,
}

impl Session {
    /// Connects with `info` (an admin block's connection).
    pub fn open(info: &ConnectionInfo) -> Result<Session> {
        let dialect = Dialect::of(&info.driver()?)?;
        let conn = crate::connect::probe::connect(info, CONNECT_TIMEOUT)?;
        let secrets: Vec<_> = info
            .password
            .clone()
            .map(zeroize::Zeroizing::new)
            .into_iter()
            .collect();
        Ok(Session {
            conn,
            info: info.clone(),
            dialect,
            own_secrets: secrets.len(),
            secrets,
        })
    }

    /// The server leases are made on (MySQL or MariaDB told apart by its version).
    pub fn engine(&mut self) -> Result<lease_sql::Engine> {
        let version = match self.dialect {
            Dialect::Mysql => self.text("SELECT VERSION() AS v")?,
            _ => None,
        };
        Ok(lease_sql::Engine::of(self.dialect, version.as_deref()))
    }

    /// Forgets the secrets hidden for a finished task (a session kept for the next).
    pub fn forget_hidden(&mut self) {
        self.secrets.truncate(self.own_secrets);
    }

    /// Whether the connection still answers.
    pub fn alive(&mut self) -> bool {
        self.conn.batch_execute("SELECT 1").is_ok()
    }

    /// The same server and credentials, connected to `database` (PostgreSQL grants and
    /// extensions are made inside the database they are for).
    pub fn open_database(&self, database: &str) -> Result<Session> {
        let mut info = self.info.clone();
        info.database = database.to_owned();
        let mut admin = Session::open(&info)?;
        admin.secrets = self.secrets.clone();
        admin.own_secrets = self.own_secrets;
        Ok(admin)
    }

    /// The admin block's connection details (for a new block on the same server).
    pub fn info(&self) -> &ConnectionInfo {
        &self.info
    }

    /// Keeps `secret` out of every message from here on.
    pub fn hide(&mut self, secret: &str) {
        self.secrets
            .push(zeroize::Zeroizing::new(secret.to_owned()));
    }

    fn scrub(&self, message: &str) -> String {
        self.secrets
            .iter()
            .fold(message.to_owned(), |m, s| scrub_secret(&m, s))
    }

    /// Runs one statement; a failure names `step`. On PostgreSQL, a statement that may
    /// run in a `DO` block does, so its SQLSTATE picks the code.
    pub fn run(&mut self, step: &str, statement: &str) -> Result<()> {
        let wrapped = self.dialect == Dialect::Postgres
            && !statement.starts_with("CREATE DATABASE")
            && !statement.starts_with("DROP DATABASE");
        let sql = match wrapped {
            true => sql::with_sqlstate(statement)?,
            false => statement.to_owned(),
        };
        self.conn
            .batch_execute(&sql)
            .map_err(|err| self.failure(step, &err.to_string()))
    }

    /// Runs SQL text as it is (a schema file), in one batch.
    pub fn run_batch(&mut self, sql: &str) -> std::result::Result<(), String> {
        self.conn
            .batch_execute(sql)
            .map_err(|err| self.scrub(&err.to_string()))
    }

    /// The error for a failed `step`: the code its SQLSTATE maps to, if the message
    /// carries one (see [`sql::with_sqlstate`]); `PROVISION_FAILED` otherwise.
    fn failure(&self, step: &str, message: &str) -> Error {
        let message = self.scrub(message.trim());
        let (code, text) = match message.strip_prefix("sqlstate ") {
            Some(rest) if rest.len() > 7 && rest.as_bytes()[5] == b':' => (
                sql::code_for_sqlstate(&rest[..5]).unwrap_or(ProvisionCode::StepFailed),
                rest[7..].to_owned(),
            ),
            _ => (ProvisionCode::StepFailed, message.clone()),
        };
        Error::provision(code, format!("{step}: {text}"))
    }

    pub fn flag(&mut self, sql: &str) -> Result<bool> {
        let rows: Vec<Flag> = diesel::sql_query(sql)
            .load(&mut self.conn)
            .map_err(|err| self.failure("reading the catalog", &err.to_string()))?;
        Ok(rows.first().is_some_and(|r| r.v))
    }

    pub fn count(&mut self, sql: &str) -> Result<i64> {
        let rows: Vec<Count> = diesel::sql_query(sql)
            .load(&mut self.conn)
            .map_err(|err| self.failure("reading the catalog", &err.to_string()))?;
        Ok(rows.first().map_or(0, |r| r.v))
    }

    /// Every name a `SELECT ... AS v` returns.
    pub fn names(&mut self, sql: &str) -> Result<Vec<String>> {
        let rows: Vec<Name> = diesel::sql_query(sql)
            .load(&mut self.conn)
            .map_err(|err| self.failure("reading the catalog", &err.to_string()))?;
        Ok(rows.into_iter().map(|r| r.v).collect())
    }

    pub fn text(&mut self, sql: &str) -> Result<Option<String>> {
        let rows: Vec<Name> = diesel::sql_query(sql)
            .load(&mut self.conn)
            .map_err(|err| self.failure("reading the catalog", &err.to_string()))?;
        Ok(rows.into_iter().next().map(|r| r.v))
    }

    pub fn database_exists(&mut self, name: &str) -> Result<bool> {
        let sql = sql::database_exists(self.dialect, name)?;
        self.flag(&sql)
    }

    pub fn role_exists(&mut self, name: &RoleName) -> Result<bool> {
        let sql = sql::role_exists(self.dialect, name)?;
        self.flag(&sql)
    }

    /// Refuses (`INSUFFICIENT_PERMISSIONS`) when the admin role may not create roles
    /// and databases.
    pub fn check_may_provision(&mut self) -> Result<()> {
        match self.flag(sql::may_provision(self.dialect))? {
            true => Ok(()),
            false => Err(Error::provision(
                ProvisionCode::InsufficientPermissions,
                format!(
                    "role {:?} may not create roles and databases; grant it CREATEDB and \
                     CREATEROLE (PostgreSQL), the admin role (CockroachDB), or CREATE, \
                     CREATE USER and GRANT OPTION (MySQL)",
                    self.info.username.as_deref().unwrap_or("(default)")
                ),
            )),
        }
    }

    /// The statement that makes the admin role a member of `role` where it must be one
    /// to give `role` a database and later drop both: PostgreSQL, when the admin is not
    /// a superuser (the managed-database case: CREATEDB and CREATEROLE only).
    pub fn membership_for(&mut self, role: &RoleName) -> Result<Option<String>> {
        if self.dialect != Dialect::Postgres
            || self.flag("SELECT rolsuper AS v FROM pg_roles WHERE rolname = current_user")?
        {
            return Ok(None);
        }
        Ok(Some(format!(
            "GRANT {} TO CURRENT_USER",
            sql::ident(self.dialect, role.as_str())?
        )))
    }

    /// Refuses a template that does not exist or has other sessions connected (which
    /// PostgreSQL cannot copy), both as `TEMPLATE_NOT_FOUND`.
    pub fn check_template(&mut self, template: &str) -> Result<()> {
        if self.dialect != Dialect::Postgres {
            return Ok(());
        }
        if !self.database_exists(template)? {
            return Err(Error::provision(
                ProvisionCode::TemplateNotFound,
                format!("template database {template:?} does not exist"),
            ));
        }
        let sessions = self.count(&sql::sessions_on(self.dialect, template)?)?;
        if sessions > 0 {
            return Err(Error::provision(
                ProvisionCode::TemplateNotFound,
                format!(
                    "template database {template:?} cannot be copied: {sessions} other \
                     session(s) are connected to it; disconnect them and retry"
                ),
            ));
        }
        Ok(())
    }

    /// Every database with its owner and size. Another session may drop a database
    /// between reading the catalog and sizing it; the listing is then read again.
    pub fn databases(&mut self) -> Result<Vec<DatabaseInfo>> {
        let mut tries = 0;
        loop {
            let listed = diesel::sql_query(sql::list_databases(self.dialect)).load(&mut self.conn);
            match listed {
                Ok(rows) => return Ok(rows),
                Err(err) if tries < 3 && err.to_string().contains("does not exist") => tries += 1,
                Err(err) => return Err(self.failure("listing databases", &err.to_string())),
            }
        }
    }

    /// The owner of a database (PostgreSQL, CockroachDB).
    pub fn database_owner(&mut self, name: &DatabaseName) -> Result<Option<String>> {
        let sql = sql::database_owner(self.dialect, name)?;
        self.text(&sql)
    }
}

/// Whether a login with `password` works where `info` points (a block's connection).
pub fn verify_login(info: &ConnectionInfo, password: &str) -> Result<()> {
    let mut info = info.clone();
    info.password = Some(password.to_owned());
    crate::connect::probe::connect(&info, CONNECT_TIMEOUT).map(drop)
}

/// Admin sessions kept between tasks (leases are issued and revoked often), by admin
/// block, its version (a changed block opens new ones) and database; at most a few
/// each, checked before reuse when they sat idle.
#[derive(Default)]
pub struct SessionCache {
    idle:
        std::sync::Mutex<std::collections::HashMap<SessionKey, Vec<(std::time::Instant, Session)>>>,
}

/// Which sessions may stand in for each other: admin block, its version, database.
pub type SessionKey = (String, i64, String);

impl std::fmt::Debug for SessionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        write!(
            f,
            "SessionCache({} kept)",
            idle.values().map(Vec::len).sum::<usize>()
        )
    }
}

/// Sessions kept per key.
const KEPT_SESSIONS: usize = 4;
/// A session idle longer than this is checked before it is used again.
const TRUSTED_IDLE: Duration = Duration::from_secs(5);

impl SessionCache {
    /// A kept session for `key` that still answers.
    pub fn take(&self, key: &SessionKey) -> Option<Session> {
        loop {
            let (since, mut session) = {
                let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
                idle.get_mut(key)?.pop()?
            };
            if since.elapsed() < TRUSTED_IDLE || session.alive() {
                return Some(session);
            }
        }
    }

    /// Keeps a session that finished its task well.
    pub fn give(&self, key: SessionKey, mut session: Session) {
        session.forget_hidden();
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let kept = idle.entry(key).or_default();
        if kept.len() < KEPT_SESSIONS {
            kept.push((std::time::Instant::now(), session));
        }
    }
}
