//! Connection details of a block (`connection_info` as components or as one URL) and the
//! URLs built from them with the `url` crate. Any character in a user name or password
//! round-trips; the password is masked in every `Display` and `Debug`.

use std::collections::BTreeMap;
use std::fmt;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde_json::{Map, Value};

use super::driver::Driver;
use crate::db::Backend;
use crate::document::MASK;
use crate::error::{Error, Result};

/// Everything outside RFC 3986's unreserved characters is percent-encoded, so `@ : / %
/// # ? +`, spaces and non-ASCII text survive every URL parser on the way (libpq decodes
/// only `%XX`, never `+`).
const STRICT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Connection components, as in Prefect's `ConnectionComponents`.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    pub driver: String,
    pub database: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub query: BTreeMap<String, String>,
}

impl fmt::Debug for ConnectionInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionInfo")
            .field("driver", &self.driver)
            .field("database", &self.database)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| MASK))
            .field("host", &self.host)
            .field("port", &self.port)
            .field("query", &self.query)
            .finish()
    }
}

fn decode(what: &str, text: &str) -> Result<String> {
    percent_decode_str(text)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| Error::InvalidInput(format!("the URL's {what} is not valid UTF-8")))
}

fn invalid(path: &str, message: impl fmt::Display) -> Error {
    Error::InvalidBlockData(format!("{path}: {message}"))
}

impl ConnectionInfo {
    /// Parses a SQLAlchemy-style URL (`postgresql+psycopg2://user:p%40ss@host:5432/db?...`,
    /// `sqlite:////abs/path.db`). `path` names the field in error messages; they never
    /// quote the URL, which may hold a password.
    pub fn from_url(path: &str, raw: &str) -> Result<ConnectionInfo> {
        let url = url::Url::parse(raw.trim())
            .map_err(|err| invalid(path, crate::document::url_error(raw, &err)))?;
        let driver = url.scheme().to_owned();
        let is_sqlite = driver.starts_with("sqlite");
        let mut query = BTreeMap::new();
        for pair in url
            .query()
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
        {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            query.insert(decode("query", key)?, decode("query", value)?);
        }
        if is_sqlite {
            // sqlite:///relative.db, sqlite:////absolute.db, sqlite:// (memory)
            let rest = raw
                .trim()
                .split_once("://")
                .map(|(_, r)| r)
                .unwrap_or_default();
            let rest = rest.split('?').next().unwrap_or_default();
            let database = match rest.strip_prefix('/') {
                Some("") | None => ":memory:".to_owned(),
                Some(p) => decode("path", p)?,
            };
            return Ok(ConnectionInfo {
                driver,
                database,
                username: None,
                password: None,
                host: None,
                port: None,
                query,
            });
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_owned());
        let socket = query.get("host").or(query.get("unix_socket"));
        if host.is_none() && socket.is_none() {
            return Err(invalid(path, "the URL has no host"));
        }
        let database = decode("database", url.path().trim_start_matches('/'))?;
        if database.is_empty() {
            return Err(invalid(path, "the URL names no database (add /dbname)"));
        }
        Ok(ConnectionInfo {
            driver,
            database,
            username: Some(decode("user name", url.username())?).filter(|u| !u.is_empty()),
            password: url.password().map(|p| decode("password", p)).transpose()?,
            host,
            port: url.port(),
            query,
        }
        .password_from_query())
    }

    /// A password given as a query option (`?password=`, which libpq and SQLAlchemy
    /// accept) becomes the password, so it is masked, scrubbed and passed like one. If
    /// both are given, the query's wins, as it does in libpq.
    fn password_from_query(mut self) -> Self {
        for key in crate::document::LOGIN_PASSWORD_KEYS {
            if let Some(password) = self.query.remove(*key) {
                self.password = Some(password);
            }
        }
        self
    }

    /// Reads `connection_info` from a full block document (secrets merged).
    pub fn from_document(name: &str, doc: &Value) -> Result<ConnectionInfo> {
        let not_connection = |reason: &str| Error::NotAConnection {
            name: name.to_owned(),
            reason: reason.to_owned(),
        };
        match doc.get("connection_info") {
            Some(Value::String(url)) => Self::from_url("connection_info", url),
            Some(Value::Object(c)) => {
                let text = |key: &str| c.get(key).and_then(Value::as_str).map(str::to_owned);
                let query = match c.get("query") {
                    Some(Value::Object(q)) => q
                        .iter()
                        .map(|(k, v)| {
                            let v = v
                                .as_str()
                                .map(str::to_owned)
                                .unwrap_or_else(|| v.to_string());
                            (k.clone(), v)
                        })
                        .collect(),
                    _ => BTreeMap::new(),
                };
                let port = match c.get("port") {
                    None | Some(Value::Null) => None,
                    Some(v) => Some(
                        v.as_u64()
                            .and_then(|p| u16::try_from(p).ok())
                            .filter(|p| *p > 0)
                            .ok_or_else(|| invalid("connection_info.port", "not a port number"))?,
                    ),
                };
                Ok(ConnectionInfo {
                    driver: text("driver").ok_or_else(|| not_connection("it has no driver"))?,
                    database: text("database").unwrap_or_default(),
                    username: text("username").filter(|u| !u.is_empty()),
                    password: text("password"),
                    host: text("host").filter(|h| !h.is_empty()),
                    port,
                    query,
                }
                .password_from_query())
            }
            _ => Err(not_connection("it has no connection_info")),
        }
    }

    /// Components as stored in a block (`connection_info`).
    pub fn to_components(&self) -> Value {
        let mut info = Map::new();
        info.insert("driver".into(), self.driver.clone().into());
        info.insert("database".into(), self.database.clone().into());
        let mut put = |key: &str, value: &Option<String>| {
            if let Some(v) = value {
                info.insert(key.into(), Value::String(v.clone()));
            }
        };
        put("username", &self.username);
        put("password", &self.password);
        put("host", &self.host);
        if let Some(port) = self.port {
            info.insert("port".into(), port.into());
        }
        if !self.query.is_empty() {
            let q = self
                .query
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())));
            info.insert("query".into(), Value::Object(q.collect()));
        }
        Value::Object(info)
    }

    pub fn driver(&self) -> Result<Driver> {
        Driver::parse(&self.driver)
    }

    /// A Unix-socket directory (PostgreSQL) or socket file (MySQL), if the block names one
    /// as its host (`/var/run/postgresql`) or in its query (`host=`, `unix_socket=`).
    pub fn socket(&self) -> Option<&str> {
        self.host
            .as_deref()
            .filter(|h| h.starts_with('/'))
            .or(self
                .query
                .get("host")
                .map(String::as_str)
                .filter(|h| h.starts_with('/')))
            .or(self.query.get("unix_socket").map(String::as_str))
    }

    /// The TCP host, if the block connects over TCP.
    pub fn tcp_host(&self) -> Option<&str> {
        self.host.as_deref().filter(|h| !h.starts_with('/'))
    }

    /// The port to use: the block's, or the driver's default.
    pub fn effective_port(&self) -> Option<u16> {
        self.port
            .or_else(|| Driver::parse(&self.driver).ok()?.default_port())
    }

    /// The URL to hand to diesel (password included) — never print it.
    /// For SQLite it is the file's path, which is what the driver opens.
    pub fn connection_url(&self) -> Result<String> {
        if self.driver()?.backend() == Backend::Sqlite {
            return Ok(self.database.clone());
        }
        self.build_url(true)
    }

    /// The URL with the password masked (or shown, if `reveal`), as `block url` prints
    /// it and `block env` exports it (`sqlite:////abs/path` for SQLite, as in SQLAlchemy).
    pub fn display_url(&self, reveal: bool) -> Result<String> {
        self.build_url(reveal)
    }

    fn build_url(&self, reveal: bool) -> Result<String> {
        let driver = self.driver()?;
        if driver.backend() == Backend::Sqlite {
            return Ok(match self.database.as_str() {
                ":memory:" | "" => "sqlite://".to_owned(),
                path => format!("sqlite:///{path}"),
            });
        }
        let host = self.tcp_host().unwrap_or("localhost");
        let host = match host.contains(':') {
            true => format!("[{host}]"),
            false => host.to_owned(),
        };
        let mut url =
            url::Url::parse(&format!("{}://{host}", driver.url_scheme())).map_err(|err| {
                invalid(
                    "connection_info.host",
                    format_args!("not a valid host ({err})"),
                )
            })?;
        let cannot = |what: &'static str| {
            move |_| {
                invalid(
                    "connection_info",
                    format_args!("cannot put the {what} in a URL"),
                )
            }
        };
        if let Some(user) = &self.username {
            let encoded = utf8_percent_encode(user, STRICT).to_string();
            url.set_username(&encoded).map_err(cannot("user name"))?;
        }
        if let Some(password) = &self.password {
            let shown = match reveal {
                true => utf8_percent_encode(password, STRICT).to_string(),
                false => MASK.to_owned(),
            };
            url.set_password(Some(&shown)).map_err(cannot("password"))?;
        }
        if (self.tcp_host().is_some() || self.socket().is_none())
            && let Some(port) = self.effective_port()
        {
            url.set_port(Some(port)).map_err(cannot("port"))?;
        }
        url.set_path(&format!("/{}", utf8_percent_encode(&self.database, STRICT)));
        let query = self.url_query(driver.backend());
        if !query.is_empty() {
            url.set_query(Some(&query));
        }
        Ok(url.into())
    }

    /// The URL's query: the connection options, with the socket as the driver expects
    /// it (`host=` for libpq, `unix_socket=` for MySQL), every part percent-encoded.
    fn url_query(&self, backend: Backend) -> String {
        let socket_key = match backend {
            Backend::Mysql => "unix_socket",
            _ => "host",
        };
        let options = self
            .query
            .iter()
            .filter(|(k, _)| !(k.as_str() == "host" || k.as_str() == "unix_socket"))
            .map(|(k, v)| (k.as_str(), v.as_str()));
        let socket = self.socket().map(|path| (socket_key, path));
        let parts: Vec<String> = options
            .chain(socket)
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    utf8_percent_encode(k, STRICT),
                    utf8_percent_encode(v, STRICT)
                )
            })
            .collect();
        parts.join("&")
    }
}

impl fmt::Display for ConnectionInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.display_url(false) {
            Ok(url) => f.write_str(&url),
            Err(_) => write!(f, "{} database {:?}", self.driver, self.database),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pg(password: &str) -> ConnectionInfo {
        ConnectionInfo {
            driver: "cockroachdb+psycopg2".into(),
            database: "sage".into(),
            username: Some("databot".into()),
            password: Some(password.into()),
            host: Some("localhost".into()),
            port: None,
            query: BTreeMap::new(),
        }
    }

    #[test]
    fn masked_url_uses_the_driver_default_port() {
        let info = pg("hunter2");
        assert_eq!(
            info.display_url(false).unwrap(),
            "postgresql://databot:********@localhost:26257/sage"
        );
        assert!(!format!("{info:?}{info}").contains("hunter2"));
    }

    #[test]
    fn awkward_passwords_round_trip() {
        for password in [
            "p@ss:w/rd%#?+ x",
            "ünïcødé пароль",
            "%41",
            "a+b",
            "&host=evil",
        ] {
            let mut info = pg(password);
            info.username = Some("user@corp:x".into());
            let url = info.connection_url().unwrap();
            let back = ConnectionInfo::from_url("u", &url).unwrap();
            assert_eq!(back.password.as_deref(), Some(password), "{url}");
            assert_eq!(back.username.as_deref(), Some("user@corp:x"));
            assert_eq!(back.database, "sage");
            assert!(back.query.is_empty(), "{url}");
        }
    }

    #[test]
    fn ipv6_sockets_queries_and_pooler_users() {
        let mut info = pg("x");
        info.host = Some("::1".into());
        info.query.insert("sslmode".into(), "require".into());
        info.query
            .insert("application_name".into(), "data bot".into());
        let url = info.display_url(false).unwrap();
        assert_eq!(
            url,
            "postgresql://databot:********@[::1]:26257/sage?application_name=data%20bot&sslmode=require"
        );
        info.host = Some("/var/run/postgresql".into());
        let url = info.display_url(false).unwrap();
        assert!(
            url.ends_with(
                "/sage?application_name=data%20bot&sslmode=require&host=%2Fvar%2Frun%2Fpostgresql"
            ),
            "{url}"
        );
        let back = ConnectionInfo::from_url("u", &url).unwrap();
        assert_eq!(back.socket(), Some("/var/run/postgresql"));

        let supabase = ConnectionInfo::from_url(
            "u",
            "postgresql://postgres.mpodkwxxymffedxjmsqv:pw@aws-0-eu-central-1.pooler.supabase.com:6543/postgres",
        )
        .unwrap();
        assert_eq!(
            supabase.username.as_deref(),
            Some("postgres.mpodkwxxymffedxjmsqv")
        );
        assert_eq!(supabase.port, Some(6543));
        assert!(
            supabase
                .display_url(false)
                .unwrap()
                .contains("postgres.mpodkwxxymffedxjmsqv:********@")
        );
    }

    #[test]
    fn sqlite_paths() {
        let abs = ConnectionInfo::from_url("u", "sqlite:////tmp/x.db").unwrap();
        assert_eq!(abs.database, "/tmp/x.db");
        assert_eq!(abs.connection_url().unwrap(), "/tmp/x.db");
        assert_eq!(abs.display_url(false).unwrap(), "sqlite:////tmp/x.db");
        let rel = ConnectionInfo::from_url("u", "sqlite+aiosqlite:///data/x.db").unwrap();
        assert_eq!(rel.database, "data/x.db");
    }

    #[test]
    fn bad_urls_never_quote_the_password() {
        let err =
            ConnectionInfo::from_url("connection_info", "postgresql://u:SECRET@/").unwrap_err();
        assert!(!err.to_string().contains("SECRET"));
    }
}
