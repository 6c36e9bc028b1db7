//! Connection details of a block (`connection_info` as components or as one URL) and the
//! URLs built from them with the `url` crate. Any character in a user name or password
//! round-trips; the password is masked in every `Display` and `Debug`.

use std::collections::BTreeMap;
use std::fmt;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Map, Value};

use super::driver::Driver;
use crate::db::Backend;
use crate::document::MASK;
use crate::dsn::Dsn;
use crate::error::{Error, Result};

/// Everything outside RFC 3986's unreserved characters is percent-encoded, so `@ : / %
/// # ? +`, spaces and non-ASCII text survive every URL parser on the way (libpq decodes
/// only `%XX`, never `+`).
const STRICT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A SQLite path keeps its `/`.
const PATH: &AsciiSet = &STRICT.remove(b'/');

/// What a host name may not hold as is: what ends a host for libpq or SQLAlchemy (`/ ?
/// :`, and `,` between libpq's hosts), `%` (libpq decodes it), a leading `[` (an IPv6
/// literal's), and controls; an `@` too when no user name comes before the host. Other
/// text (an international name, a space, `#`) stays as written, as both read it so.
fn encode_host(host: &str, after_user: bool) -> String {
    host.chars()
        .enumerate()
        .map(|(i, c)| {
            match c.is_ascii_control()
                || "/?:,%".contains(c)
                || (c == '@' && !after_user)
                || (c == '[' && i == 0)
            {
                true => format!("%{:02X}", c as u32),
                false => c.to_string(),
            }
        })
        .collect()
}

/// Whether `host` is written in brackets in a URL, as an IPv6 address is: it holds a
/// `:` and nothing that ends brackets or a URL's parts (a bracket, `@`, `/`, `?`), so
/// libpq and SQLAlchemy read it back from brackets. Any other host holding a `:` is
/// percent-encoded for libpq.
fn in_brackets(host: &str) -> bool {
    host.contains(':') && !host.contains(['[', ']', '@', '/', '?'])
}

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

fn invalid(path: &str, message: impl fmt::Display) -> Error {
    Error::InvalidBlockData(format!("{path}: {message}"))
}

/// As SQLAlchemy's SQLite dialect ("Invalid SQLite URL"): a SQLite URL names a file and
/// no server. An empty part is no part, as there.
fn sqlite_names_no_server(
    server: (
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    ),
    query: &[(String, String)],
) -> std::result::Result<(), String> {
    let (user, password, host, port) = server;
    let keys = crate::document::LOGIN_PASSWORD_KEYS;
    match [user, password, host, port]
        .iter()
        .flatten()
        .any(|p| !p.is_empty())
        || query.iter().any(|(k, _)| keys.contains(&k.as_str()))
    {
        true => Err(
            "a SQLite URL names a file, never a host, user, password or port: \
             sqlite:///relative.db or sqlite:////absolute/path.db"
                .to_owned(),
        ),
        false => Ok(()),
    }
}

impl ConnectionInfo {
    /// Reads a connection URL as its own client does (see [`crate::dsn`]): a
    /// PostgreSQL-family URL as libpq (its query's `dbname`, `user`, `host`, `port` and
    /// `password` override the URL's parts, as in libpq), any other as SQLAlchemy's
    /// `make_url`. `path` names the field in error messages; they never quote the URL,
    /// which may hold a password.
    pub fn from_url(path: &str, raw: &str) -> Result<ConnectionInfo> {
        let bad = |why: String| invalid(path, url_hint(raw, why));
        let dsn = Dsn::parse(raw.trim()).map_err(bad)?;
        dsn.check().map_err(bad)?;
        let driver = dsn.scheme().to_owned();
        let mut database = dsn.database().map_err(bad)?.unwrap_or_default();
        let sqlite = Driver::parse(&driver).is_ok_and(|d| d.backend() == Backend::Sqlite);
        if sqlite && database.is_empty() {
            database = ":memory:".to_owned();
        }
        let query = dsn.query().map_err(bad)?;
        let mut server = (
            dsn.user().map_err(bad)?,
            dsn.password().map_err(bad)?,
            dsn.host().map_err(bad)?,
            dsn.port().map_err(bad)?,
        );
        if sqlite {
            sqlite_names_no_server(std::mem::take(&mut server), &query).map_err(bad)?;
        }
        let (username, password, host, port) = server;
        let info = ConnectionInfo {
            driver,
            database,
            username,
            password,
            host,
            port: None,
            query: query.into_iter().collect(),
        };
        info.resolve(path, port).map_err(|err| match err {
            Error::InvalidBlockData(why) => Error::InvalidBlockData(url_hint(raw, why)),
            other => other,
        })
    }

    /// What the query says of the connection itself, as its client reads it: a
    /// password given as a query option (`?password=`) becomes the password (masked,
    /// scrubbed and passed like one); for libpq's drivers `dbname`, `user`, `host` and
    /// `port` replace the URL's parts. `port` is the URL's own; several ports
    /// (`5432,5433`, one per host) stay in the query as libpq's `port`.
    fn resolve(mut self, path: &str, mut port: Option<String>) -> Result<Self> {
        for key in crate::document::LOGIN_PASSWORD_KEYS {
            if let Some(password) = self.query.remove(*key) {
                self.password = Some(password);
            }
        }
        if self.reads_as_libpq() {
            if let Some(database) = self.query.remove("dbname") {
                self.database = database;
            }
            if let Some(user) = self.query.remove("user") {
                self.username = Some(user).filter(|u| !u.is_empty());
            }
            if let Some(host) = self.query.remove("host") {
                self.host = Some(host).filter(|h| !h.is_empty());
            }
            port = self.query.remove("port").or(port);
        }
        self.port = None;
        let Some(port) = port.filter(|p| !p.chars().all(|c| c == ',')) else {
            return Ok(self);
        };
        let number = |p: &str| p.parse::<u16>().ok().filter(|p| *p > 0);
        if port.contains(',') {
            if port
                .split(',')
                .any(|p| !p.is_empty() && number(p).is_none())
            {
                return Err(invalid(path, "a port is not a number from 1 to 65535"));
            }
            // As libpq, which refuses to connect otherwise: one port, or one per host.
            let (ports, hosts) = (
                port.split(',').count(),
                self.host.as_deref().map_or(1, |h| h.split(',').count()),
            );
            if ports != hosts {
                return Err(invalid(
                    path,
                    format!("{ports} ports for {hosts} hosts: give one port, or one per host"),
                ));
            }
            self.query.insert("port".into(), port);
        } else {
            self.port = Some(
                number(&port)
                    .ok_or_else(|| invalid(path, "the port is not a number from 1 to 65535"))?,
            );
        }
        Ok(self)
    }

    /// Whether libpq reads this block's connection (PostgreSQL, CockroachDB, Redshift).
    fn reads_as_libpq(&self) -> bool {
        self.driver()
            .is_ok_and(|d| d.backend() == Backend::Postgres)
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
                ConnectionInfo {
                    driver: text("driver").ok_or_else(|| not_connection("it has no driver"))?,
                    database: text("database").unwrap_or_default(),
                    username: text("username").filter(|u| !u.is_empty()),
                    password: text("password"),
                    host: text("host").filter(|h| !h.is_empty()),
                    port,
                    query,
                }
                .resolve("connection_info", port.map(|p| p.to_string()))
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

    /// A Unix-socket directory (PostgreSQL: a host starting with `/`) or socket file
    /// (MySQL's `unix_socket` option; to libpq it means nothing), if the block connects through one.
    pub fn socket(&self) -> Option<&str> {
        let mysql = self.driver().is_ok_and(|d| d.backend() == Backend::Mysql);
        self.host.as_deref().filter(|h| h.starts_with('/')).or(self
            .query
            .get("unix_socket")
            .filter(|_| mysql)
            .map(String::as_str))
    }

    /// The TCP host (or hosts, `h1,h2`), if the block connects over TCP.
    pub fn tcp_host(&self) -> Option<&str> {
        self.host.as_deref().filter(|h| !h.starts_with('/'))
    }

    /// The port to use: the block's, or the driver's default.
    pub fn effective_port(&self) -> Option<u16> {
        self.port
            .or_else(|| Driver::parse(&self.driver).ok()?.default_port())
    }

    /// The port a client must be told: the block's own, or the dialect's default where
    /// it is not the client's (CockroachDB's 26257, Redshift's 5439).
    fn stated_port(&self) -> Option<u16> {
        let driver = Driver::parse(&self.driver).ok();
        let client_default = match driver.as_ref().map(Driver::backend) {
            Some(Backend::Mysql) => Some(3306),
            _ => Some(5432),
        };
        self.port.or(driver
            .and_then(|d| d.default_port())
            .filter(|p| Some(*p) != client_default))
    }

    /// The keywords and values libpq is given for this block: `host`, `port`, `user`,
    /// `password`, `dbname`, then every query option libpq knows. A driver's own
    /// options are left out (SQLAlchemy hands them to the driver, never to libpq),
    /// except asyncpg's and JDBC's `ssl`, which becomes libpq's `sslmode`.
    pub fn libpq_params(&self) -> Vec<(String, String)> {
        let mut params = Vec::new();
        let mut put = |key: &str, value: Option<String>| {
            if let Some(value) = value {
                params.push((key.to_owned(), value));
            }
        };
        put("host", self.host.clone());
        // One port for several hosts is that port for each, as libpq reads it: written
        // out per host, so a URL and its printed form give the same keywords.
        let hosts = self.host.as_deref().map_or(1, |h| h.split(',').count());
        let stated = self
            .stated_port()
            .map(|p| vec![p.to_string(); hosts].join(","));
        put("port", stated.or_else(|| self.query.get("port").cloned()));
        put("user", self.username.clone());
        put("password", self.password.clone().filter(|p| !p.is_empty()));
        put(
            "dbname",
            Some(self.database.clone()).filter(|d| !d.is_empty()),
        );
        for (key, value) in &self.query {
            if key != "port" && super::libpq::is_option(key) {
                put(key, Some(value.clone()));
            }
        }
        if !self.query.contains_key("sslmode") {
            put(
                "sslmode",
                self.query.get("ssl").and_then(|v| ssl_as_sslmode(v)),
            );
        }
        params
    }

    /// What a driver opens — never print it: libpq's keywords as a URI's query for
    /// PostgreSQL (every value percent-encoded, so any host list, socket or zone id
    /// reaches libpq as is), a URL for MySQL, the file's path for SQLite.
    pub fn connection_url(&self) -> Result<String> {
        match self.driver()?.backend() {
            Backend::Sqlite if self.query.is_empty() => Ok(self.database.clone()),
            Backend::Sqlite => Ok(format!(
                "file:{}?{}",
                utf8_percent_encode(&self.database, PATH),
                self.encoded_query(None)
            )),
            Backend::Postgres => {
                let params: Vec<String> = self
                    .libpq_params()
                    .iter()
                    .map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, STRICT)))
                    .collect();
                Ok(format!("postgresql://?{}", params.join("&")))
            }
            Backend::Mysql => self.build_url("mysql", true, true),
        }
    }

    /// The URL as SQLAlchemy reads it, driver included (`postgresql+psycopg2://`), with
    /// the password masked (or shown, if `reveal`): what `block url` prints and `block
    /// env` exports. libpq reads it alike, once the `+driver` is taken off.
    pub fn display_url(&self, reveal: bool) -> Result<String> {
        self.build_url(&self.driver, reveal, false)
    }

    /// The URL psql and pg_dump read: `postgresql://` with no `+driver`, and only the
    /// options libpq knows (asyncpg's `ssl` as `sslmode`).
    pub fn libpq_url(&self, reveal: bool) -> Result<String> {
        if !self.reads_as_libpq() {
            return Err(Error::InvalidInput(format!(
                "--libpq is for PostgreSQL blocks; this block's driver is {}",
                self.driver
            )));
        }
        let own = ["host", "port", "user", "password", "dbname"];
        let mut plain = self.clone();
        plain.query = self
            .libpq_params()
            .into_iter()
            .filter(|(k, _)| !own.contains(&k.as_str()))
            .chain(
                self.query
                    .get("port")
                    .map(|p| ("port".to_owned(), p.clone())),
            )
            .collect();
        plain.build_url("postgresql", reveal, false)
    }

    /// The URL with `scheme`; with `default_host`, `localhost` where the block names no
    /// host (diesel's MySQL needs one).
    fn build_url(&self, scheme: &str, reveal: bool, default_host: bool) -> Result<String> {
        // A driver Blockyard cannot connect with (mssql, oracle) is still printed.
        let backend = self.driver().ok().map(|d| d.backend());
        let mut url = format!("{scheme}://");
        if backend == Some(Backend::Sqlite) {
            if !matches!(self.database.as_str(), ":memory:" | "") {
                url.push('/');
                url.push_str(&utf8_percent_encode(&self.database, PATH).to_string());
            }
        } else {
            // make_url reads a host as written: one holding `@` needs credentials with
            // a password (empty if none) before it, or the host's `@` would end them.
            let at_in_host = backend != Some(Backend::Postgres)
                && self.host.as_deref().is_some_and(|h| h.contains('@'));
            if self.username.is_some() || self.password.is_some() || at_in_host {
                let user = self.username.as_deref().unwrap_or_default();
                url.push_str(&utf8_percent_encode(user, STRICT).to_string());
                if self.password.is_some() || at_in_host {
                    url.push(':');
                }
                if let Some(password) = &self.password {
                    url.push_str(&match reveal {
                        true => utf8_percent_encode(password, STRICT).to_string(),
                        false => MASK.to_owned(),
                    });
                }
                url.push('@');
            }
            url.push_str(&self.netloc(backend, default_host));
            url.push('/');
            url.push_str(&utf8_percent_encode(&self.database, STRICT).to_string());
        }
        let query = self.encoded_query(backend);
        if !query.is_empty() {
            url.push('?');
            url.push_str(&query);
        }
        Ok(url)
    }

    /// `host:port`, several as libpq writes them (`h1:5432,h2:5433`), an IPv6 address in
    /// brackets; empty for a socket (which goes in the query). With `default_host`, an
    /// absent host is `localhost` (diesel's MySQL needs one).
    fn netloc(&self, backend: Option<Backend>, default_host: bool) -> String {
        let hosts = match self.tcp_host() {
            Some(hosts) => hosts,
            None if default_host => "localhost",
            None => return self.port.map(|p| format!(":{p}")).unwrap_or_default(),
        };
        if backend != Some(Backend::Postgres) {
            // make_url reads the host as written: one host, never decoded.
            let host = match hosts.contains(':') {
                true => format!("[{hosts}]"),
                false => hosts.to_owned(),
            };
            return match self.stated_port() {
                Some(port) => format!("{host}:{port}"),
                None => host,
            };
        }
        let ports: Vec<String> = match (self.stated_port(), self.query.get("port")) {
            (Some(port), _) => vec![port.to_string(); hosts.split(',').count()],
            (None, Some(ports)) if backend == Some(Backend::Postgres) => {
                ports.split(',').map(str::to_owned).collect()
            }
            _ => Vec::new(),
        };
        let netlocs: Vec<String> = hosts
            .split(',')
            .enumerate()
            .map(|(i, host)| {
                let host = match in_brackets(host) {
                    true => format!("[{}]", host.replace('%', "%25")),
                    false => encode_host(host, self.username.is_some() || self.password.is_some()),
                };
                match ports.get(i).filter(|p| !p.is_empty()) {
                    Some(port) => format!("{host}:{port}"),
                    None => host,
                }
            })
            .collect();
        netlocs.join(",")
    }

    /// The query, every part percent-encoded: the block's options and, where the block
    /// connects through one, its socket (`host=` for libpq). Several ports are written
    /// in the hosts, not here.
    fn encoded_query(&self, backend: Option<Backend>) -> String {
        let socket = match backend {
            Some(Backend::Postgres) => self.socket().map(|path| ("host", path)),
            _ => None,
        };
        let several_ports = backend == Some(Backend::Postgres) && self.tcp_host().is_some();
        self.query
            .iter()
            .filter(|(k, _)| !(several_ports && k.as_str() == "port"))
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(socket)
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    utf8_percent_encode(k, STRICT),
                    utf8_percent_encode(v, STRICT)
                )
            })
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// asyncpg's (and JDBC's) `ssl` option as libpq's `sslmode`, where it says one.
fn ssl_as_sslmode(value: &str) -> Option<String> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" => Some("require".into()),
        "false" | "0" => Some("disable".into()),
        mode @ ("disable" | "allow" | "prefer" | "require" | "verify-ca" | "verify-full") => {
            Some(mode.to_owned())
        }
        _ => None,
    }
}

/// A parse error with the usual cause named: a password holding `/ @ : # ?` written as
/// is cuts the URL in the wrong place. Never quotes the URL.
fn url_hint(raw: &str, why: String) -> String {
    match raw.contains('@') {
        true => format!(
            "{why}; if the password holds / @ : # ? or %, percent-encode them (%2F %40 %3A \
             %23 %3F %25), or leave the password out of the URL and give it with \
             --password-stdin"
        ),
        false => why,
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
            "cockroachdb+psycopg2://databot:********@localhost:26257/sage"
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
            "cockroachdb+psycopg2://databot:********@[::1]:26257/sage?application_name=data%20bot&sslmode=require"
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

    /// The url fuzz target's crashes (`fuzz/corpus/url/regress-*`), checked on every
    /// test run: a URL as printed reads back as the same connection.
    #[test]
    fn printed_urls_read_back_as_the_fuzzer_found() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/url");
        let mut checked = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if !path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("regress-")
            {
                continue;
            }
            let Ok(text) = String::from_utf8(std::fs::read(&path).unwrap()) else {
                continue;
            };
            checked += 1;
            let Ok(info) = ConnectionInfo::from_url("fuzz", &text) else {
                continue;
            };
            let Ok(url) = info.display_url(true) else {
                continue;
            };
            let back = ConnectionInfo::from_url("again", &url)
                .unwrap_or_else(|err| panic!("{path:?}: {url:?} does not read back: {err}"));
            assert_eq!(back.display_url(true).ok(), Some(url.clone()), "{path:?}");
            assert_eq!(
                back.libpq_params(),
                info.libpq_params(),
                "{path:?}: {url:?}"
            );
        }
        assert!(checked >= 4, "only {checked} regression inputs");
    }

    #[test]
    fn sqlite_paths() {
        let abs = ConnectionInfo::from_url("u", "sqlite:////tmp/x.db").unwrap();
        assert_eq!(abs.database, "/tmp/x.db");
        assert_eq!(abs.connection_url().unwrap(), "/tmp/x.db");
        assert_eq!(abs.display_url(false).unwrap(), "sqlite:////tmp/x.db");
        let rel = ConnectionInfo::from_url("u", "sqlite+aiosqlite:///data/x.db").unwrap();
        assert_eq!(rel.database, "data/x.db");
        // A host, user, password or port would be dropped when printed: refused, as
        // SQLAlchemy's SQLite dialect refuses them.
        for url in [
            "sqlite://host/x.db",
            "sqlite://u:p@/x.db",
            "sqlite://:5/x.db",
            "sqlite:///x.db?password=p",
        ] {
            let err = ConnectionInfo::from_url("u", url).unwrap_err().to_string();
            assert!(err.contains("a SQLite URL names a file"), "{url}: {err}");
        }
        let empty = ConnectionInfo::from_url("u", "sqlite://:@/x.db").unwrap();
        assert_eq!(empty.display_url(true).unwrap(), "sqlite:///x.db");
    }

    #[test]
    fn bad_urls_never_quote_the_password() {
        let err = ConnectionInfo::from_url("connection_info", "postgresql://u:SECRET@h:99999/d")
            .unwrap_err();
        assert!(!err.to_string().contains("SECRET"));
    }
}
