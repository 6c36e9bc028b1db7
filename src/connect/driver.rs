//! SQLAlchemy driver strings (`cockroachdb+psycopg2`, `mysql+pymysql`, ...) and the
//! backend each one maps to.

use std::fmt;

use crate::db::Backend;
use crate::error::{Error, Result};

/// A driver string as stored in a block, resolved to a backend Blockyard can connect to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Driver {
    raw: String,
    backend: Backend,
    dialect: Dialect,
}

/// The database a driver string names (the part before `+`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Postgresql,
    Cockroachdb,
    Redshift,
    Mysql,
    Mariadb,
    Sqlite,
}

impl Driver {
    /// Parses a SQLAlchemy driver string. The DBAPI part after `+` (psycopg2, asyncpg,
    /// pymysql, aiosqlite, ...) does not change the wire protocol, so any is accepted,
    /// except ones that do (SQLCipher's encrypted SQLite).
    pub fn parse(raw: &str) -> Result<Driver> {
        let raw = raw.trim();
        let (dialect, dbapi) = match raw.split_once('+') {
            Some((d, api)) => (d, Some(api)),
            None => (raw, None),
        };
        let dialect = match dialect.to_ascii_lowercase().as_str() {
            "postgresql" | "postgres" | "psql" => Dialect::Postgresql,
            "cockroachdb" | "cockroach" => Dialect::Cockroachdb,
            "redshift" => Dialect::Redshift,
            "mysql" => Dialect::Mysql,
            "mariadb" => Dialect::Mariadb,
            "sqlite" => Dialect::Sqlite,
            _ => return Err(unsupported(raw)),
        };
        if dialect == Dialect::Sqlite && dbapi.is_some_and(|a| a.contains("sqlcipher")) {
            return Err(unsupported(raw));
        }
        let backend = match dialect {
            Dialect::Postgresql | Dialect::Cockroachdb | Dialect::Redshift => Backend::Postgres,
            Dialect::Mysql | Dialect::Mariadb => Backend::Mysql,
            Dialect::Sqlite => Backend::Sqlite,
        };
        Ok(Driver {
            raw: raw.to_owned(),
            backend,
            dialect,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The driver string as stored.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The port used when a block names none.
    pub fn default_port(&self) -> Option<u16> {
        match self.dialect {
            Dialect::Postgresql => Some(5432),
            Dialect::Cockroachdb => Some(26257),
            Dialect::Redshift => Some(5439),
            Dialect::Mysql | Dialect::Mariadb => Some(3306),
            Dialect::Sqlite => None,
        }
    }

    /// The URL scheme diesel and the command-line clients understand.
    pub fn url_scheme(&self) -> &'static str {
        match self.backend {
            Backend::Postgres => "postgresql",
            Backend::Mysql => "mysql",
            Backend::Sqlite => "sqlite",
        }
    }
}

impl fmt::Display for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

fn unsupported(raw: &str) -> Error {
    Error::UnsupportedDriver(format!(
        "Blockyard cannot connect with driver {raw:?}; supported: postgresql, cockroachdb, \
         redshift, mysql, mariadb and sqlite (with any DBAPI suffix such as +psycopg2). \
         The block is still stored and readable"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drivers_people_store_map_to_backends() {
        for (raw, backend, port) in [
            ("postgresql", Backend::Postgres, Some(5432)),
            ("postgresql+psycopg2", Backend::Postgres, Some(5432)),
            ("postgresql+asyncpg", Backend::Postgres, Some(5432)),
            ("postgresql+pg8000", Backend::Postgres, Some(5432)),
            ("postgres", Backend::Postgres, Some(5432)),
            ("cockroachdb", Backend::Postgres, Some(26257)),
            ("cockroachdb+psycopg2", Backend::Postgres, Some(26257)),
            ("mysql", Backend::Mysql, Some(3306)),
            ("mysql+pymysql", Backend::Mysql, Some(3306)),
            ("mysql+mysqldb", Backend::Mysql, Some(3306)),
            ("mariadb+mariadbconnector", Backend::Mysql, Some(3306)),
            ("sqlite", Backend::Sqlite, None),
            ("sqlite+aiosqlite", Backend::Sqlite, None),
        ] {
            let driver = Driver::parse(raw).unwrap();
            assert_eq!(driver.backend(), backend, "{raw}");
            assert_eq!(driver.default_port(), port, "{raw}");
        }
    }

    #[test]
    fn drivers_without_a_connection_are_unsupported() {
        for raw in ["mssql+pyodbc", "oracle+cx_oracle", "sqlite+pysqlcipher", ""] {
            assert_eq!(Driver::parse(raw).unwrap_err().code(), "UNSUPPORTED_DRIVER");
        }
    }
}
