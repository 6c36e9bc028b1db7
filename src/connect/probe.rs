//! `block test`: connect to a block's database within a time limit, run a trivial query,
//! report the server version and round-trip latency, and check the block's optional
//! `requires` (server version range, PostgreSQL extensions).

use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::Text;
use serde::Serialize;
use serde_json::Value;

use super::classify;
use super::info::ConnectionInfo;
use crate::db::{AnyConnection, Backend, Connect};
use crate::error::{ConnectFailure, Error, Result};

/// What `block test` found.
#[derive(Clone, Debug, Serialize)]
pub struct TestReport {
    pub name: String,
    pub driver: String,
    pub backend: Backend,
    /// The URL with the password masked.
    pub url: String,
    pub server_version: String,
    pub connect_ms: f64,
    /// Median round trip of `SELECT 1` over five runs.
    pub latency_ms: f64,
    pub requirements: Vec<RequirementCheck>,
}

impl TestReport {
    pub fn requirements_met(&self) -> bool {
        self.requirements.iter().all(|r| r.ok)
    }
}

/// One `requires` entry and whether the server meets it.
#[derive(Clone, Debug, Serialize)]
pub struct RequirementCheck {
    pub requirement: String,
    pub ok: bool,
    pub found: String,
}

#[derive(QueryableByName)]
struct TextRow {
    #[diesel(sql_type = Text)]
    value: String,
}

/// Connects within `timeout`, or fails with a classified error whose message never
/// contains the password.
pub fn connect(info: &ConnectionInfo, timeout: Duration) -> Result<AnyConnection> {
    let backend = info.driver()?.backend();
    backend.ensure_compiled()?;
    if backend == Backend::Sqlite {
        sqlite_file_exists(info)?;
    }
    let mut url = info.connection_url()?;
    if backend == Backend::Postgres && !info.query.contains_key("connect_timeout") {
        // libpq's own limit (whole seconds, at least 2) keeps a dead host from lingering.
        let secs = timeout.as_secs().max(2);
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&format!("connect_timeout={secs}"));
    }
    let password = info.password.clone().unwrap_or_default();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(AnyConnection::connect(backend, &url));
    });
    match rx.recv_timeout(timeout) {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(err)) => {
            let kind = classify::connection_error(&err);
            Err(Error::Connect {
                kind,
                message: failure_message(kind, info, &err.to_string(), &password),
            })
        }
        Err(_) => Err(Error::Connect {
            kind: ConnectFailure::Timeout,
            message: format!(
                "{}: no answer within {}",
                describe(ConnectFailure::Timeout, info),
                humantime::format_duration(timeout)
            ),
        }),
    }
}

/// Testing never creates anything: SQLite would create a missing file (and leave an
/// empty database behind a typo), so a missing file or directory is reported instead.
fn sqlite_file_exists(info: &ConnectionInfo) -> Result<()> {
    let path = std::path::Path::new(&info.database);
    if info.database.is_empty() || info.database == ":memory:" || path.is_file() {
        return Ok(());
    }
    let missing = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) if !dir.is_dir() => format!("its directory {} does not exist", dir.display()),
        _ => "the file does not exist".to_owned(),
    };
    Err(Error::Connect {
        kind: ConnectFailure::DatabaseNotFound,
        message: format!(
            "SQLite database {}: {missing}; `block test` never creates it (check \
             connection_info.database)",
            path.display()
        ),
    })
}

/// What `block test` and a flow's `pool.get()` say when a connection fails: where it
/// went and why, on one line, without the password.
pub(crate) fn failure_message(
    kind: ConnectFailure,
    info: &ConnectionInfo,
    driver_message: &str,
    password: &str,
) -> String {
    format!(
        "{}: {}",
        describe(kind, info),
        scrub_secret(&distinct_lines(driver_message), password)
    )
}

/// A driver message on one line, each distinct line once (libpq repeats itself when
/// it retries without TLS).
fn distinct_lines(message: &str) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for line in message.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if !seen.contains(&line) {
            seen.push(line);
        }
    }
    // Join as sentences: "Connection refused. Is the server running ...?"
    let mut text = String::new();
    for line in seen {
        if !text.is_empty() {
            text.push_str(if text.ends_with(['.', '?', '!', ':', ';']) {
                " "
            } else {
                ". "
            });
        }
        text.push_str(line);
    }
    text
}

/// Removes a password (raw and percent-encoded) from a driver message.
pub fn scrub_secret(message: &str, password: &str) -> String {
    if password.is_empty() {
        return message.to_owned();
    }
    let encoded =
        percent_encoding::utf8_percent_encode(password, percent_encoding::NON_ALPHANUMERIC)
            .to_string();
    message
        .replace(password, crate::document::MASK)
        .replace(&encoded, crate::document::MASK)
}

fn describe(kind: ConnectFailure, info: &ConnectionInfo) -> String {
    let sqlite = info.driver().is_ok_and(|d| d.backend() == Backend::Sqlite);
    let host = match (info.socket(), info.tcp_host()) {
        _ if sqlite => format!("SQLite database {}", info.database),
        (Some(socket), _) => format!("socket {socket}"),
        (None, Some(host)) => format!("{host}:{}", info.effective_port().unwrap_or_default()),
        (None, None) => format!("localhost:{}", info.effective_port().unwrap_or_default()),
    };
    let user = info.username.as_deref().unwrap_or("(default user)");
    match kind {
        ConnectFailure::HostUnreachable => format!("cannot reach {host}"),
        ConnectFailure::AuthenticationFailed => {
            format!("authentication failed for user {user:?} at {host}")
        }
        ConnectFailure::DatabaseNotFound => {
            format!("database {:?} does not exist at {host}", info.database)
        }
        ConnectFailure::Tls => format!("TLS negotiation with {host} failed"),
        ConnectFailure::Timeout => format!("connecting to {host} timed out"),
        ConnectFailure::Other => format!("cannot connect to {host}"),
    }
}

fn text_query(conn: &mut AnyConnection, sql: &str) -> Result<Vec<String>> {
    Ok(diesel::sql_query(sql)
        .load::<TextRow>(conn)?
        .into_iter()
        .map(|r| r.value)
        .collect())
}

/// Tests a block's connection and checks its `requires`.
pub fn test(name: &str, doc: &Value, timeout: Duration) -> Result<TestReport> {
    let info = ConnectionInfo::from_document(name, doc)?;
    let driver = info.driver()?;
    let started = Instant::now();
    let mut conn = connect(&info, timeout)?;
    let connect_ms = started.elapsed().as_secs_f64() * 1e3;
    let version_sql = match driver.backend() {
        Backend::Postgres => "SELECT current_setting('server_version') AS value",
        Backend::Mysql => "SELECT VERSION() AS value",
        Backend::Sqlite => "SELECT sqlite_version() AS value",
    };
    let server_version = text_query(&mut conn, version_sql)?
        .pop()
        .unwrap_or_default();
    let mut samples = Vec::with_capacity(5);
    for _ in 0..5 {
        let t = Instant::now();
        text_query(&mut conn, "SELECT '1' AS value")?;
        samples.push(t.elapsed().as_secs_f64() * 1e3);
    }
    samples.sort_by(f64::total_cmp);
    let mut report = TestReport {
        name: name.to_owned(),
        driver: driver.to_string(),
        backend: driver.backend(),
        url: info.display_url(false)?,
        server_version,
        connect_ms,
        latency_ms: samples[samples.len() / 2],
        requirements: Vec::new(),
    };
    if let Some(requires) = doc.get("requires").filter(|r| !r.is_null()) {
        check_requirements(&mut conn, &mut report, requires)?;
    }
    Ok(report)
}

fn check_requirements(
    conn: &mut AnyConnection,
    report: &mut TestReport,
    requires: &Value,
) -> Result<()> {
    if let Some(range) = requires.get("server_version").and_then(Value::as_str) {
        let ok = version_matches(&report.server_version, range)?;
        report.requirements.push(RequirementCheck {
            requirement: format!("server_version {range}"),
            ok,
            found: report.server_version.clone(),
        });
    }
    let wanted: Vec<&str> = requires
        .get("extensions")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if wanted.is_empty() {
        return Ok(());
    }
    let installed = match report.backend {
        Backend::Postgres => text_query(conn, "SELECT extname::text AS value FROM pg_extension")?,
        _ => Vec::new(),
    };
    for ext in wanted {
        let ok = installed.iter().any(|e| e == ext);
        report.requirements.push(RequirementCheck {
            requirement: format!("extension {ext}"),
            ok,
            found: match (ok, report.backend) {
                (true, _) => "installed".into(),
                (false, Backend::Postgres) => {
                    format!("not installed; CREATE EXTENSION {ext} adds it")
                }
                (false, _) => "extensions are a PostgreSQL feature".into(),
            },
        });
    }
    Ok(())
}

/// Leading numeric components of a version string: `"15.4 (Debian 15.4-1)"` → [15, 4].
fn numeric_version(text: &str) -> Vec<u64> {
    let start = text
        .find(|c: char| c.is_ascii_digit())
        .unwrap_or(text.len());
    text[start..]
        .split(|c: char| !c.is_ascii_digit() && c != '.')
        .next()
        .unwrap_or_default()
        .split('.')
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Checks a version against comparators such as `">=13"`, `">=13, <17"`, `"=15.4"`.
pub fn version_matches(version: &str, range: &str) -> Result<bool> {
    let have = numeric_version(version);
    let mut ok = true;
    for part in range.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (op, rest) = [">=", "<=", "==", ">", "<", "=", "^", "~"]
            .iter()
            .find_map(|op| part.strip_prefix(op).map(|rest| (*op, rest)))
            .unwrap_or(("=", part));
        let rest = rest.trim();
        let want = numeric_version(rest);
        let well_formed = !rest.is_empty()
            && rest
                .split('.')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        if want.is_empty() || !well_formed {
            return Err(Error::InvalidBlockData(format!(
                "requires.server_version: {range:?} is not a version range such as \">=13\""
            )));
        }
        let n = want.len();
        let prefix: Vec<u64> = (0..n).map(|i| have.get(i).copied().unwrap_or(0)).collect();
        let ord = prefix.cmp(&want);
        ok &= match op {
            ">=" => ord.is_ge(),
            "<=" => ord.is_le(),
            ">" => ord.is_gt(),
            "<" => ord.is_lt(),
            "^" | "~" => ord.is_ge() && have.first() == want.first(),
            _ => ord.is_eq(),
        };
    }
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_ranges() {
        assert!(version_matches("15.20 (Debian 15.20-0+deb12u1)", ">=13").unwrap());
        assert!(!version_matches("12.9", ">=13").unwrap());
        assert!(version_matches("10.11.19-MariaDB-0+deb12u1", ">=10.6, <11").unwrap());
        assert!(!version_matches("11.2.2-MariaDB", ">=10.6, <11").unwrap());
        assert!(version_matches("15.4", "=15").unwrap());
        assert!(version_matches("3.46.0", "^3").unwrap());
        assert!(version_matches("15", "abc").is_err());
        assert!(version_matches("15", "13+").is_err());
    }

    #[test]
    fn scrub_removes_raw_and_encoded_passwords() {
        let out = scrub_secret("bad uri p@ss and p%40ss", "p@ss");
        assert!(!out.contains("p@ss") && !out.contains("p%40ss"), "{out}");
    }
}
