//! `block test`, `block url`, `block env` and `exec`: using a block's connection from
//! the command line.

use std::ffi::OsString;
use std::time::Duration;

use clap::Args;
use serde_json::{Map, Value, json};

use super::output::{Printer, details};
use crate::connect::{
    self, ConnectionInfo, EnvFormat, HttpService, HttpTestReport, TestReport, env,
};
use crate::error::{Error, Result};
use crate::name::BlockName;
use crate::registry::Registry;

/// `--format`'s values, with the help each shows (clap stays out of `connect/`).
impl clap::ValueEnum for EnvFormat {
    fn value_variants<'a>() -> &'a [Self] {
        &[
            EnvFormat::Dotenv,
            EnvFormat::Shell,
            EnvFormat::Libpq,
            EnvFormat::Mysql,
        ]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        use clap::builder::PossibleValue;
        Some(match self {
            EnvFormat::Dotenv => PossibleValue::new("dotenv")
                .help("NAME=value lines with double-quoted values, read by dotenv loaders"),
            EnvFormat::Shell => PossibleValue::new("shell")
                .help("`export NAME='value'` lines, safe to `eval` in sh, bash and zsh"),
            EnvFormat::Libpq => PossibleValue::new("libpq")
                .help("PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE (+ PGSSLMODE, PGAPPNAME...)"),
            EnvFormat::Mysql => PossibleValue::new("mysql").help(
                "MYSQL_HOST, MYSQL_TCP_PORT, MYSQL_UNIX_PORT, MYSQL_PWD, MYSQL_USER, MYSQL_DATABASE",
            ),
        })
    }
}

/// What a block connects to: a database, or an HTTP service (a type with `http`).
pub(super) enum Target {
    Database(ConnectionInfo, Value),
    Http(HttpService),
}

fn target_of(registry: &Registry, name: &str) -> Result<Target> {
    target_of_block(registry, &registry.read_block(name)?)
}

/// What a block read with its secrets connects to.
pub(super) fn target_of_block(registry: &Registry, block: &crate::block::Block) -> Result<Target> {
    let name = block.name.as_str();
    let doc = block.document_or_masked();
    match registry.block_type(&block.block_type)?.def.http {
        Some(spec) => Ok(Target::Http(HttpService::from_document(&spec, &doc)?)),
        None => Ok(Target::Database(
            ConnectionInfo::from_document(name, &doc)?,
            doc,
        )),
    }
}

pub fn test(registry: &Registry, name: &str, timeout: Duration, out: &Printer) -> Result<()> {
    let doc = match target_of(registry, name)? {
        Target::Http(service) => {
            let report = service.test(name, timeout)?;
            out.emit(&report, || describe_http_test(&report));
            return Ok(());
        }
        Target::Database(_, doc) => doc,
    };
    let report = connect::test(name, &doc, timeout)?;
    out.emit(&report, || describe_test(&report));
    match report.requirements_met() {
        true => Ok(()),
        false => {
            let failed: Vec<String> = report
                .requirements
                .iter()
                .filter(|r| !r.ok)
                .map(|r| format!("{}: {}", r.requirement, r.found))
                .collect();
            Err(Error::RequirementNotMet(format!(
                "block {name:?} connects, but its database does not meet: {}",
                failed.join("; ")
            )))
        }
    }
}

fn describe_http_test(report: &HttpTestReport) -> String {
    details(&[
        ("block", report.name.clone()),
        ("url", report.url.clone()),
        ("status", report.status.to_string()),
        (
            "server",
            report.server.clone().unwrap_or_else(|| "-".into()),
        ),
        ("round trip", format!("{:.1} ms", report.latency_ms)),
    ])
}

fn describe_test(report: &TestReport) -> String {
    use super::terminal::{Stream::Stdout, Tone::*, paint};
    let mut rows = vec![
        ("block", report.name.clone()),
        (
            "driver",
            format!("{} ({})", report.driver, report.backend.as_str()),
        ),
        ("url", report.url.clone()),
        ("server", report.server_version.clone()),
        ("connect", format!("{:.1} ms", report.connect_ms)),
        (
            "round trip",
            format!("{:.2} ms (median of 5 SELECTs)", report.latency_ms),
        ),
    ];
    for r in &report.requirements {
        let verdict = match r.ok {
            true => paint(Stdout, Good, "ok"),
            false => paint(Stdout, Bad, "NOT MET"),
        };
        rows.push((
            "requires",
            format!("{}: {verdict} ({})", r.requirement, r.found),
        ));
    }
    details(&rows)
}

pub fn url(
    registry: &Registry,
    name: &str,
    show_secrets: bool,
    libpq: bool,
    out: &Printer,
) -> Result<()> {
    let url = match target_of(registry, name)? {
        Target::Database(info, _) if libpq => info.libpq_url(show_secrets)?,
        Target::Database(info, _) => info.display_url(show_secrets)?,
        Target::Http(service) => service.display_url(show_secrets),
    };
    out.emit(&json!({"name": name, "url": url}), || url.clone());
    Ok(())
}

/// The variables `block env` prints and `exec` sets. For an HTTP service block they are
/// `<PREFIX>_URL` and `<PREFIX>_API_KEY` (prefix: the block's name in capitals), in the
/// dotenv or shell format.
pub(super) fn variables(
    target: &Target,
    name: &str,
    format: Option<EnvFormat>,
    prefix: Option<&str>,
) -> Result<(Vec<(String, String)>, EnvFormat)> {
    match target {
        Target::Database(info, _) => {
            let format = match format {
                Some(format) => format,
                None => info
                    .driver()
                    .map_or(EnvFormat::Dotenv, |d| env::native_format(d.backend())),
            };
            Ok((env::variables(info, format, prefix)?, format))
        }
        Target::Http(service) => {
            let format = format.unwrap_or(EnvFormat::Dotenv);
            if !matches!(format, EnvFormat::Dotenv | EnvFormat::Shell) {
                return Err(Error::InvalidInput(format!(
                    "block {name:?} is an HTTP service: use --format dotenv or shell"
                )));
            }
            let prefix = prefix.map_or_else(|| env::prefix_from_name(name), str::to_owned);
            env::check_prefix(&prefix)?;
            Ok((service.variables(&prefix), format))
        }
    }
}

pub fn env(
    registry: &Registry,
    name: &str,
    format: Option<EnvFormat>,
    prefix: Option<&str>,
    lease: bool,
    out: &Printer,
) -> Result<()> {
    let format = Some(format.unwrap_or(EnvFormat::Dotenv));
    let (target, lease_id) = match lease {
        false => (target_of(registry, name)?, None),
        true => {
            let issued = registry.issue_lease(name, None)?;
            let info = issued.connection.clone();
            (
                Target::Database(info, Value::Null),
                Some(issued.lease.lease_id.clone()),
            )
        }
    };
    let (mut vars, format) = variables(&target, name, format, prefix)?;
    if let Some(id) = lease_id {
        vars.push(("BLOCKYARD_LEASE_ID".into(), id));
    }
    let object: Map<String, Value> = vars
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let text = match out.for_people() {
        true => env::render(&vars, format)?,
        false => String::new(),
    };
    out.emit(&object, || text);
    Ok(())
}

/// `blockyard exec NAME -- PROGRAM ARGS...`
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The block whose connection to pass on.
    pub name: BlockName,
    /// Variables to set; default: libpq for PostgreSQL, mysql for MySQL, dotenv for SQLite.
    #[arg(long, value_enum)]
    pub format: Option<EnvFormat>,
    /// Also set PREFIX_HOST, PREFIX_PORT, PREFIX_NAME, PREFIX_USER, PREFIX_PASSWORD,
    /// PREFIX_URL (the dotenv set).
    #[arg(long, value_name = "PREFIX")]
    pub prefix: Option<String>,
    /// Run as a user leased for this command alone (the block declares `lease.admin`
    /// and `lease.role`), revoked when the program exits, also on SIGINT, SIGTERM or
    /// SIGHUP (which are passed on to it); a crash leaves it to expire and to the
    /// reconciler.
    #[arg(long)]
    pub lease: bool,
    /// The program and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "PROGRAM")]
    pub command: Vec<OsString>,
}

/// Runs the program with the block's variables in its environment (never on its
/// command line) and passes its exit code through.
pub fn exec(registry: &Registry, args: ExecArgs) -> Result<()> {
    if args.lease {
        return exec_leased(registry, args);
    }
    let target = target_of(registry, &args.name)?;
    let (vars, info) = match &target {
        // --prefix names an HTTP service's variables...
        Target::Http(_) => {
            let prefix = args.prefix.as_deref();
            (variables(&target, &args.name, args.format, prefix)?.0, None)
        }
        // ... and adds the prefixed dotenv set to a database's native variables.
        Target::Database(info, _) => {
            let mut vars = variables(&target, &args.name, args.format, None)?.0;
            if let Some(prefix) = &args.prefix {
                vars.extend(env::variables(info, EnvFormat::Dotenv, Some(prefix))?);
            }
            (vars, Some(info))
        }
    };
    let (program, rest) = args
        .command
        .split_first()
        .ok_or_else(|| Error::InvalidInput("no program given after --".into()))?;
    run_replacing(client_command(program, rest, info, vars), program)
}

/// The program with the client arguments it needs (ahead of the user's, after any
/// MySQL option-file flags) and the variables in its environment.
fn client_command(
    program: &OsString,
    rest: &[OsString],
    info: Option<&ConnectionInfo>,
    vars: Vec<(String, String)>,
) -> std::process::Command {
    let client_args = info.map_or_else(Vec::new, |info| client_arguments(program, rest, info));
    // The MySQL clients want option-file flags (--defaults-file, --no-defaults) first.
    let (leading, rest) = rest.split_at(
        rest.iter()
            .take_while(|a| {
                let a = a.to_string_lossy();
                a.starts_with("--defaults") || a == "--no-defaults"
            })
            .count(),
    );
    let mut command = std::process::Command::new(program);
    command
        .args(leading)
        .args(client_args)
        .args(rest)
        .envs(vars);
    command
}

/// `exec --lease`: the program runs as a user leased for it, revoked when it exits.
fn exec_leased(registry: &Registry, args: ExecArgs) -> Result<()> {
    let (program, rest) = args
        .command
        .split_first()
        .ok_or_else(|| Error::InvalidInput("no program given after --".into()))?;
    let issued = registry.issue_lease(&args.name, None)?;
    let info = issued.connection.clone();
    let target = Target::Database(info.clone(), Value::Null);
    let mut vars = variables(&target, &args.name, args.format, None)?.0;
    if let Some(prefix) = &args.prefix {
        vars.extend(env::variables(&info, EnvFormat::Dotenv, Some(prefix))?);
    }
    let status = crate::supervise::run_forwarding(client_command(program, rest, Some(&info), vars));
    let revoked = registry.revoke_lease(&issued.lease.lease_id);
    if let Err(err) = &revoked {
        eprintln!(
            "blockyard: lease {} was not revoked ({}); it expires at {} and the reconciler \
             retries: {err}",
            issued.lease.lease_id,
            err.code(),
            issued.lease.expires_at
        );
    }
    let code = status.map_err(|source| Error::Exec {
        program: program.to_string_lossy().into_owned(),
        source,
    })?;
    std::process::exit(code)
}

/// Arguments the common clients need ahead of the user's own, because they do not read
/// them from the environment: the MySQL clients ignore MYSQL_USER (and `mysql`
/// MYSQL_DATABASE), and `sqlite3` takes the database file as an argument. The password
/// never goes here; it stays in MYSQL_PWD / PGPASSWORD. psql and pg_dump need nothing:
/// libpq reads every PG* variable.
fn client_arguments(program: &OsString, rest: &[OsString], info: &ConnectionInfo) -> Vec<OsString> {
    let name = std::path::Path::new(program)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut args = Vec::new();
    let user = info.username.as_deref();
    match name.as_str() {
        "mysql" | "mariadb" => {
            args.extend(user.map(|u| format!("--user={u}")));
            args.push(format!("--database={}", info.database));
        }
        "mysqldump" | "mariadb-dump" | "mysqladmin" | "mariadb-admin" | "mysqlshow"
        | "mariadb-show" | "mysqlcheck" | "mariadb-check" | "mysqlimport" | "mariadb-import" => {
            args.extend(user.map(|u| format!("--user={u}")));
        }
        "sqlite3" if !rest.iter().any(|a| a.to_string_lossy() == info.database) => {
            args.push(info.database.clone());
        }
        _ => {}
    }
    args.into_iter().map(OsString::from).collect()
}

#[cfg(unix)]
fn run_replacing(mut command: std::process::Command, program: &OsString) -> Result<()> {
    use std::os::unix::process::CommandExt;
    // exec replaces this process: exit code and signals are the program's own.
    let source = command.exec();
    Err(Error::Exec {
        program: program.to_string_lossy().into_owned(),
        source,
    })
}

#[cfg(not(unix))]
fn run_replacing(mut command: std::process::Command, program: &OsString) -> Result<()> {
    let status = command.status().map_err(|source| Error::Exec {
        program: program.to_string_lossy().into_owned(),
        source,
    })?;
    std::process::exit(status.code().unwrap_or(1));
}
