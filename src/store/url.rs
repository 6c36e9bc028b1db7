//! Store URLs: which backend a URL selects, decided by its scheme.

use std::fmt;
use std::path::PathBuf;

use crate::error::{Error, Result};

use crate::db::Backend;

/// A parsed store location. `Display` never shows a password.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// An SQLite file (`sqlite:///abs/path`, `sqlite://rel/path`, or a bare path).
    Sqlite(PathBuf),
    /// A PostgreSQL (or CockroachDB) URL, `postgres://` or `postgresql://`.
    Postgres(url::Url),
}

impl StoreUrl {
    pub fn parse(raw: &str) -> Result<Self> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(Error::InvalidDatabaseUrl(
                "the database URL is empty".into(),
            ));
        }
        let Some((scheme, rest)) = raw
            .split_once("://")
            .or_else(|| raw.split_once(':').filter(|(s, _)| *s == "sqlite"))
        else {
            return Ok(StoreUrl::Sqlite(PathBuf::from(raw)));
        };
        match scheme {
            "sqlite" => {
                let path = rest.split('?').next().unwrap_or_default();
                if path.is_empty() || path == ":memory:" {
                    return Err(Error::InvalidDatabaseUrl(
                        "an SQLite store needs a file path, e.g. sqlite:///var/lib/blockyard/blockyard.db".into(),
                    ));
                }
                Ok(StoreUrl::Sqlite(PathBuf::from(path)))
            }
            "postgres" | "postgresql" => {
                let url = url::Url::parse(raw).map_err(|err| {
                    Error::InvalidDatabaseUrl(format!("not a valid PostgreSQL URL ({err})"))
                })?;
                Ok(StoreUrl::Postgres(url))
            }
            other => Err(Error::InvalidDatabaseUrl(format!(
                "unsupported store scheme {other:?}; use sqlite:// or postgres://"
            ))),
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            StoreUrl::Sqlite(_) => Backend::Sqlite,
            StoreUrl::Postgres(_) => Backend::Postgres,
        }
    }

    /// The string handed to the driver (contains the password, if any: never print it).
    pub(crate) fn connection_string(&self) -> String {
        match self {
            StoreUrl::Sqlite(path) => path.to_string_lossy().into_owned(),
            StoreUrl::Postgres(url) => with_liveness(url).into(),
        }
    }
}

/// libpq's own bounds on a store that went away, unless the URL sets them: a connect
/// that gets no answer gives up, and a connection whose peer stopped acknowledging
/// (a partition, a failover) is found dead and replaced instead of waited on.
const LIVENESS: &[(&str, &str)] = &[
    ("connect_timeout", "5"),
    ("keepalives", "1"),
    ("keepalives_idle", "10"),
    ("keepalives_interval", "5"),
    ("keepalives_count", "3"),
    ("tcp_user_timeout", "15000"),
];

fn with_liveness(url: &url::Url) -> url::Url {
    let given: Vec<String> = url.query_pairs().map(|(k, _)| k.into_owned()).collect();
    let mut url = url.clone();
    for (key, value) in LIVENESS {
        if !given.iter().any(|k| k == key) {
            url.query_pairs_mut().append_pair(key, value);
        }
    }
    url
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreUrl::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            StoreUrl::Postgres(url) => {
                let mut shown = url.clone();
                if shown.password().is_some() {
                    let _ = shown.set_password(Some("********"));
                }
                f.write_str(shown.as_str())
            }
        }
    }
}

impl fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreUrl({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_selects_backend() {
        assert_eq!(
            StoreUrl::parse("/tmp/a.db").unwrap(),
            StoreUrl::Sqlite("/tmp/a.db".into())
        );
        assert_eq!(
            StoreUrl::parse("sqlite:///tmp/a.db").unwrap().backend(),
            Backend::Sqlite
        );
        assert_eq!(
            StoreUrl::parse("sqlite:/tmp/a.db").unwrap(),
            StoreUrl::Sqlite("/tmp/a.db".into())
        );
        assert_eq!(
            StoreUrl::parse("postgres://u@h/db").unwrap().backend(),
            Backend::Postgres
        );
        assert_eq!(
            StoreUrl::parse("postgresql://u@h/db").unwrap().backend(),
            Backend::Postgres
        );
        assert_eq!(
            StoreUrl::parse("mysql://u@h/db").unwrap_err().code(),
            "INVALID_DATABASE_URL"
        );
    }

    #[test]
    fn display_masks_password() {
        let url = StoreUrl::parse("postgres://u:PLANTED@h/db").unwrap();
        assert!(!url.to_string().contains("PLANTED"));
        assert!(!format!("{url:?}").contains("PLANTED"));
    }
}
