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

    /// Whether this build can connect to the backend: each one is a cargo feature
    /// (`sqlite`, `postgres`, `mysql`).
    pub fn is_compiled(self) -> bool {
        match self {
            Backend::Postgres => cfg!(feature = "postgres"),
            Backend::Mysql => cfg!(feature = "mysql"),
            Backend::Sqlite => cfg!(feature = "sqlite"),
        }
    }

    /// `Ok` when this build can connect to the backend, else the one-line
    /// `UNSUPPORTED_DRIVER` error that says how to rebuild.
    pub fn ensure_compiled(self) -> crate::error::Result<()> {
        if self.is_compiled() {
            return Ok(());
        }
        Err(crate::error::Error::UnsupportedDriver(not_compiled(self)))
    }
}

fn not_compiled(backend: Backend) -> String {
    let (name, needs) = match backend {
        Backend::Postgres => (
            "PostgreSQL",
            "bundles libpq; needs a C compiler and libssl-dev",
        ),
        Backend::Mysql => ("MySQL", "needs libmariadb-dev"),
        Backend::Sqlite => ("SQLite", "bundles SQLite; needs a C compiler"),
    };
    format!(
        "this build has no {name} support; rebuild with --features {} ({needs})",
        backend.as_str()
    )
}

/// A connection to any supported backend. The store uses it (SQLite or PostgreSQL) and
/// so does [`crate::Registry::any_pool`] for blocks.
#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    #[cfg(feature = "postgres")]
    Postgresql(diesel::PgConnection),
    #[cfg(feature = "mysql")]
    Mysql(diesel::MysqlConnection),
    #[cfg(feature = "sqlite")]
    Sqlite(diesel::SqliteConnection),
}

#[cfg(not(feature = "sqlite"))]
compile_error!("Blockyard needs the `sqlite` feature: SQLite is its default, embedded store");

impl AnyConnection {
    pub fn backend(&self) -> Backend {
        match self {
            #[cfg(feature = "postgres")]
            AnyConnection::Postgresql(_) => Backend::Postgres,
            #[cfg(feature = "mysql")]
            AnyConnection::Mysql(_) => Backend::Mysql,
            #[cfg(feature = "sqlite")]
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

fn not_compiled_error(backend: Backend) -> ConnectionError {
    ConnectionError::BadConnection(not_compiled(backend))
}

fn mismatch(backend: Backend) -> ConnectionError {
    ConnectionError::BadConnection(format!(
        "this connection type cannot connect to {}",
        backend.as_str()
    ))
}

/// SQLite settings for every connection: wait for a busy writer instead of failing.
#[cfg(feature = "sqlite")]
fn open_sqlite(target: &str) -> ConnectionResult<diesel::SqliteConnection> {
    let mut conn = diesel::SqliteConnection::establish(target)?;
    conn.batch_execute("PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;")
        .map_err(ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}

#[cfg(feature = "postgres")]
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

#[cfg(feature = "mysql")]
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

#[cfg(feature = "sqlite")]
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
        let _ = target;
        Ok(match backend {
            #[cfg(feature = "postgres")]
            Backend::Postgres => {
                AnyConnection::Postgresql(diesel::PgConnection::establish(target)?)
            }
            #[cfg(feature = "mysql")]
            Backend::Mysql => AnyConnection::Mysql(diesel::MysqlConnection::establish(target)?),
            #[cfg(feature = "sqlite")]
            Backend::Sqlite => AnyConnection::Sqlite(open_sqlite(target)?),
            #[allow(unreachable_patterns)]
            other => return Err(not_compiled_error(other)),
        })
    }
}
