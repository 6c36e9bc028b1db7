//! Environment variables for a block's connection: `dotenv` and `shell` (optionally
//! prefixed, `SESAME_DATABASE_HOST`...), `libpq` (`PG*`) and `mysql` (`MYSQL_*`), as
//! used by `block env` and `exec`.

use std::fmt::Write as _;

use super::info::ConnectionInfo;
use crate::db::Backend;
use crate::error::{Error, Result};

/// The variable sets `block env` and `exec` know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnvFormat {
    /// NAME=value lines with double-quoted values, read by dotenv loaders.
    Dotenv,
    /// `export NAME='value'` lines, safe to `eval` in sh, bash and zsh.
    Shell,
    /// PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE (+ PGSSLMODE, PGAPPNAME...).
    Libpq,
    /// MYSQL_HOST, MYSQL_TCP_PORT, MYSQL_UNIX_PORT, MYSQL_PWD, MYSQL_USER, MYSQL_DATABASE.
    Mysql,
}

/// The variables for a connection. `prefix` applies to `dotenv` and `shell`
/// (`{prefix}_HOST`, default `DATABASE`); libpq and mysql names are fixed.
pub fn variables(
    info: &ConnectionInfo,
    format: EnvFormat,
    prefix: Option<&str>,
) -> Result<Vec<(String, String)>> {
    // Printing variables needs no driver: a block Blockyard cannot connect to (mssql,
    // oracle) still exports its parts, without a URL.
    let backend = info.driver().ok().map(|d| d.backend());
    let mut vars = Vars::default();
    match (format, prefix) {
        (EnvFormat::Dotenv | EnvFormat::Shell, _) => {
            generic(&mut vars, info, backend, prefix.unwrap_or("DATABASE"))?
        }
        (EnvFormat::Libpq | EnvFormat::Mysql, Some(_)) => {
            return Err(Error::InvalidInput(
                "--prefix applies to the dotenv and shell formats; libpq and mysql variable \
                 names are fixed"
                    .into(),
            ));
        }
        (EnvFormat::Libpq, None) if backend == Some(Backend::Postgres) => libpq(&mut vars, info),
        (EnvFormat::Mysql, None) if backend == Some(Backend::Mysql) => mysql(&mut vars, info),
        (EnvFormat::Libpq, None) => return Err(wrong_backend("libpq", info)),
        (EnvFormat::Mysql, None) => return Err(wrong_backend("mysql", info)),
    }
    Ok(vars.0)
}

/// Variables in order; a value that is not there is not set.
#[derive(Default)]
struct Vars(Vec<(String, String)>);

impl Vars {
    fn put(&mut self, name: &str, value: Option<impl Into<String>>) {
        if let Some(value) = value {
            self.0.push((name.to_owned(), value.into()));
        }
    }
}

/// `{prefix}_DRIVER`, `_HOST`, `_PORT`, `_NAME`, `_USER`, `_PASSWORD`, `_URL`.
fn generic(
    vars: &mut Vars,
    info: &ConnectionInfo,
    backend: Option<Backend>,
    prefix: &str,
) -> Result<()> {
    check_prefix(prefix)?;
    let name = |suffix: &str| format!("{prefix}_{suffix}");
    vars.put(&name("DRIVER"), Some(&info.driver));
    vars.put(&name("HOST"), info.socket().or(info.tcp_host()));
    if backend != Some(Backend::Sqlite) {
        vars.put(&name("PORT"), info.effective_port().map(|p| p.to_string()));
    }
    vars.put(&name("NAME"), Some(&info.database));
    vars.put(&name("USER"), info.username.as_ref());
    vars.put(&name("PASSWORD"), info.password.as_ref());
    if backend.is_some() {
        vars.put(&name("URL"), Some(info.display_url(true)?));
    }
    Ok(())
}

/// What libpq reads: the block's libpq keywords ([`ConnectionInfo::libpq_params`], the
/// same a pool is given) as their `PG*` variables; `PGPORT` is the driver's default when
/// the block names none. A keyword libpq has no variable for (`keepalives`,
/// `sslpassword`, ...) cannot be passed this way and is left out.
fn libpq(vars: &mut Vars, info: &ConnectionInfo) {
    let params = info.libpq_params();
    if !params.iter().any(|(k, _)| k == "port") {
        vars.put("PGPORT", info.effective_port().map(|p| p.to_string()));
    }
    for (keyword, value) in params {
        if let Some(var) = super::libpq::variable(&keyword) {
            vars.put(var, Some(value));
        }
    }
}

/// What the mysql client reads: `MYSQL_HOST`...
fn mysql(vars: &mut Vars, info: &ConnectionInfo) {
    vars.put("MYSQL_HOST", info.tcp_host());
    vars.put(
        "MYSQL_TCP_PORT",
        info.effective_port().map(|p| p.to_string()),
    );
    vars.put("MYSQL_UNIX_PORT", info.socket());
    vars.put("MYSQL_USER", info.username.as_ref());
    vars.put("MYSQL_PWD", info.password.as_ref());
    vars.put("MYSQL_DATABASE", Some(&info.database));
}

/// A variable prefix: letters, digits and underscores, not starting with a digit.
pub fn check_prefix(prefix: &str) -> Result<()> {
    if prefix.is_empty()
        || !prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
        || prefix.starts_with(|c: char| c.is_ascii_digit())
    {
        return Err(Error::InvalidInput(format!(
            "--prefix {prefix:?}: use letters, digits and underscores, e.g. SESAME_DATABASE"
        )));
    }
    Ok(())
}

/// The default prefix of an HTTP service block's variables: its name in capitals,
/// other characters as `_` (`es-logs` → `ES_LOGS_URL`).
pub fn prefix_from_name(name: &str) -> String {
    let prefix: String = name
        .chars()
        .map(|c| match c.is_ascii_alphanumeric() {
            true => c.to_ascii_uppercase(),
            false => '_',
        })
        .collect();
    match prefix.starts_with(|c: char| c.is_ascii_digit()) {
        true => format!("SERVICE_{prefix}"),
        false => prefix,
    }
}

fn wrong_backend(format: &str, info: &ConnectionInfo) -> Error {
    Error::InvalidInput(format!(
        "the {format} format is for {format} databases; this block's driver is {}",
        info.driver
    ))
}

/// The native variable set of a backend, used by `exec` by default.
pub fn native_format(backend: Backend) -> EnvFormat {
    match backend {
        Backend::Postgres => EnvFormat::Libpq,
        Backend::Mysql => EnvFormat::Mysql,
        Backend::Sqlite => EnvFormat::Dotenv,
    }
}

/// Renders variables as text in `format`. Nothing in a value is ever evaluated by what
/// reads it: `shell` is `export NAME='...'`; `libpq` and `mysql` are `NAME='...'` lines
/// for `set -a; . FILE` (sh, bash, dash); `dotenv` is read alike by python-dotenv,
/// dotenvy and a shell (see [`dotenv_quote`]).
pub fn render(vars: &[(String, String)], format: EnvFormat) -> Result<String> {
    let mut out = String::new();
    for (name, value) in vars {
        let _ = match format {
            EnvFormat::Shell => writeln!(out, "export {name}={}", shell_quote(value)),
            EnvFormat::Libpq | EnvFormat::Mysql => writeln!(out, "{name}={}", shell_quote(value)),
            EnvFormat::Dotenv => writeln!(out, "{name}={}", dotenv_quote(name, value)?),
        };
    }
    Ok(out)
}

/// Single quotes, with each `'` written as `'\''`: nothing inside is expanded.
pub fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// A dotenv value that python-dotenv, dotenvy and a shell sourcing the file all read as
/// exactly `value`, with nothing run or expanded:
/// - no `'` or `\`: single quotes, literal for all three;
/// - otherwise, no `$` or `` ` ``: double quotes with `\` and `"` escaped, the only
///   escapes all three undo alike.
///
/// Refused (naming `--format shell`): a value holding `${`, which python-dotenv expands
/// inside any quotes and cannot escape, and one holding `'` or `\` together with `$` or
/// `` ` ``, which a shell needs escaped in double quotes where python-dotenv keeps the
/// backslash.
pub fn dotenv_quote(name: &str, value: &str) -> Result<String> {
    let refuse = |why: &str| {
        Err(Error::InvalidInput(format!(
            "{name} holds {why}, which no dotenv line keeps literal for python-dotenv, \
             dotenvy and a shell alike; use --format shell (or -o json)"
        )))
    };
    if value.contains("${") {
        return refuse("${ (python-dotenv expands it inside any quotes)");
    }
    if !value.contains(['\'', '\\']) {
        return Ok(format!("'{value}'"));
    }
    if value.contains(['$', '`']) {
        return refuse("a ' or \\ together with a $ or `");
    }
    let escaped = value.replace('\\', r"\\").replace('"', "\\\"");
    Ok(format!("\"{escaped}\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting_survives_quotes() {
        assert_eq!(shell_quote("it's $HOME"), r"'it'\''s $HOME'");
    }

    #[test]
    fn dotenv_round_trips_through_dotenvy_and_sh() {
        for value in [
            "p@ss \"q\" $x # $(touch pwned) z\nline2",
            "p@ss \"q\" $x # `touch pwned` $(id) z\nline2",
            "it's a \\ \"quoted\" # value\n",
            "$HOME `id` $(id) $nope {x}",
        ] {
            round_trip(value);
        }
        for refused in ["`x` 'y'", "p \"s`\" \\", "a${HOME}b", "it's $5"] {
            let refused = [("A".to_owned(), refused.to_owned())];
            assert!(render(&refused, EnvFormat::Dotenv).is_err());
            assert!(render(&refused, EnvFormat::Shell).is_ok());
        }
    }

    fn round_trip(value: &str) {
        let text = render(&[("A_PASSWORD".into(), value.into())], EnvFormat::Dotenv).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        std::fs::write(&path, text).unwrap();
        let back: Vec<(String, String)> = dotenvy::from_path_iter(&path)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(back, vec![("A_PASSWORD".to_owned(), value.to_owned())]);
        // A shell sourcing it runs nothing and reads the same value.
        let script = format!(". {}; printf %s \"$A_PASSWORD\"", path.display());
        let out = std::process::Command::new("sh")
            .args(["-c", &script])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(!dir.path().join("pwned").exists());
        assert_eq!(String::from_utf8_lossy(&out.stdout), value);
    }
}
