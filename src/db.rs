//! One diesel connection type for every database Blockyard talks to — its own store and
//! the databases blocks describe — with the backend chosen from the URL scheme or the
//! block's driver, never by trial and error.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::R2D2Connection;
use diesel::{ConnectionError, ConnectionResult};

/// The database engines Blockyard can connect to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Postgres,
    Mysql,
    Sqlite,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Postgres => "postgres",
            Backend::Mysql => "mysql",
            Backend::Sqlite => "sqlite",
        }
    }
}

/// A connection to any supported backend. The store uses it (SQLite or PostgreSQL) and
/// so does [`crate::Registry::any_pool`] for blocks.
#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    Postgresql(diesel::PgConnection),
    Mysql(diesel::MysqlConnection),
    Sqlite(diesel::SqliteConnection),
}

impl AnyConnection {
    pub fn backend(&self) -> Backend {
        match self {
            AnyConnection::Postgresql(_) => Backend::Postgres,
            AnyConnection::Mysql(_) => Backend::Mysql,
            AnyConnection::Sqlite(_) => Backend::Sqlite,
        }
    }
}

/// A diesel connection type that can be opened for a given backend: the concrete
/// connections for their own backend, [`AnyConnection`] for all of them.
pub trait Connect: R2D2Connection + Sized + Send + 'static {
    /// Whether this type can connect to `backend`.
    fn supports(backend: Backend) -> bool;
    /// Opens a connection; `target` is a URL (or an SQLite path) and may hold a password.
    fn connect(backend: Backend, target: &str) -> ConnectionResult<Self>;
}

fn mismatch(backend: Backend) -> ConnectionError {
    ConnectionError::BadConnection(format!(
        "this connection type cannot connect to {}",
        backend.as_str()
    ))
}

/// SQLite settings for every connection: wait for a busy writer instead of failing.
fn open_sqlite(target: &str) -> ConnectionResult<diesel::SqliteConnection> {
    let mut conn = diesel::SqliteConnection::establish(target)?;
    conn.batch_execute("PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;")
        .map_err(ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}

impl Connect for diesel::PgConnection {
    fn supports(backend: Backend) -> bool {
        backend == Backend::Postgres
    }
    fn connect(backend: Backend, target: &str) -> ConnectionResult<Self> {
        match backend {
            Backend::Postgres => diesel::PgConnection::establish(target),
            other => Err(mismatch(other)),
        }
    }
}

impl Connect for diesel::MysqlConnection {
    fn supports(backend: Backend) -> bool {
        backend == Backend::Mysql
    }
    fn connect(backend: Backend, target: &str) -> ConnectionResult<Self> {
        match backend {
            Backend::Mysql => diesel::MysqlConnection::establish(target),
            other => Err(mismatch(other)),
        }
    }
}

impl Connect for diesel::SqliteConnection {
    fn supports(backend: Backend) -> bool {
        backend == Backend::Sqlite
    }
    fn connect(backend: Backend, target: &str) -> ConnectionResult<Self> {
        match backend {
            Backend::Sqlite => open_sqlite(target),
            other => Err(mismatch(other)),
        }
    }
}

impl Connect for AnyConnection {
    fn supports(_: Backend) -> bool {
        true
    }
    fn connect(backend: Backend, target: &str) -> ConnectionResult<Self> {
        Ok(match backend {
            Backend::Postgres => {
                AnyConnection::Postgresql(diesel::PgConnection::establish(target)?)
            }
            Backend::Mysql => AnyConnection::Mysql(diesel::MysqlConnection::establish(target)?),
            Backend::Sqlite => AnyConnection::Sqlite(open_sqlite(target)?),
        })
    }
}
